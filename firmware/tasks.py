"""Work the task queue does for firmware when nobody is looking (see firmware.services.rollouts)."""

from django_tasks import task


@task()
def rollout_tick(rollout_id: int, generation: int) -> None:
    """A rollout's next check: scheduled start, timeouts, soak and gate."""
    from firmware.services import rollouts

    rollouts.tick(rollout_id, generation)
