"""Running the task queue for real in tests: the worker of `manage.py db_worker`, in batch mode
(every task that is due, including those the tasks enqueue due at once, then return)."""

from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult


def run_due_tasks() -> int:
    """Run every due task as the worker would; returns how many ran. Raises if one failed."""
    done = DBTaskResult.objects.exclude(status="READY")
    before = set(done.values_list("id", flat=True))
    Worker(queue_names=["default"], interval=0, batch=True, backend_name="default", startup_delay=False,
           max_tasks=None, worker_id="tests", excluded_queue_names=[]).run()
    ran = done.exclude(id__in=before)
    failed = ran.filter(status="FAILED").first()
    if failed is not None:
        raise AssertionError(f"task {failed.task_path} failed:\n{failed.traceback}")
    return ran.count()


def waiting_tasks(name: str = "") -> list[DBTaskResult]:
    """Tasks enqueued and not yet run, those whose path ends with `name` if given."""
    return [task for task in DBTaskResult.objects.filter(status="READY") if task.task_path.endswith(name)]
