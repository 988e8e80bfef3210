"""Running the task queue for real in tests: the tasks stored in the database, claimed and run by
the worker of `manage.py db_worker` (its `run_task`), every one that is due, including those the
tasks enqueue due at once. The worker's own loop also closes the database connection between
tasks, which would end a test's transaction, so the loop is this one."""

from django.db import transaction
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult


def run_due_tasks(*, limit: int = 1000) -> int:
    """Run every due task as the worker would; returns how many ran. Raises if one failed."""
    worker = Worker(queue_names=["default"], interval=0, batch=True, backend_name="default", startup_delay=False,
                    max_tasks=None, worker_id="tests", excluded_queue_names=[])
    ran = 0
    while ran < limit:
        with transaction.atomic():
            task_result = DBTaskResult.objects.ready().filter(backend_name="default").get_locked()
            if task_result is None:
                return ran
            task_result.claim(worker.worker_id)
        worker.run_task(task_result)
        task_result.refresh_from_db()
        if task_result.status == "FAILED":
            raise AssertionError(f"task {task_result.task_path} failed:\n{task_result.traceback}")
        ran += 1
    raise AssertionError(f"more than {limit} tasks ran: a task keeps enqueueing itself")


def waiting_tasks(name: str = "") -> list[DBTaskResult]:
    """Tasks enqueued and not yet run, those whose path ends with `name` if given."""
    return [task for task in DBTaskResult.objects.filter(status="READY") if task.task_path.endswith(name)]
