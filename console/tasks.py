"""The console's background work (django-tasks; run by `manage.py db_worker`)."""

from django_tasks import task

from console import webhooks


@task()
def deliver_webhook(delivery_id: int) -> str:
    """One attempt at a webhook delivery; a failed attempt queues the next (console.webhooks)."""
    return webhooks.delivery_attempt(delivery_id)
