"""Console views of staged rollouts: the list, the progress page (polled while the rollout is
live) and the people's actions on it, each confirmed with its impact first. The rules live in
firmware.services.rollouts; these read counters, samples and one grouped query, never the fleet."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from console import access, htmx
from firmware.models import FirmwareUpdate, Rollout
from firmware.services import rollouts

EVENTS = ("rolloutChanged", "firmwareChanged")
# Samples drawn at most; a rollout of days keeps a few thousand.
CHART_POINTS = 300
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 220, 40
ACTION_LABELS = {"pause": "Pause", "resume": "Resume", "advance": "Advance now", "abort": "Abort", "rollback": "Roll back"}


def rollout_url(product, rollout) -> str:
    return reverse("firmware:rollout", kwargs={"product": product.slug, "rollout_id": rollout.pk})


def _rollout(membership, rollout_id: int) -> Rollout:
    return get_object_or_404(
        Rollout.objects.select_related("firmware", "product", "created_by"), product=membership.product, pk=rollout_id
    )


def _minutes(duration: timedelta) -> int:
    return int(duration.total_seconds() // 60)


def stage_label(membership, stage) -> str:
    if stage.share is None:
        return ", ".join(access.shown_group_name(membership, group.name) for group in stage.groups.all())
    return f"{rollouts._percent(stage.share)}%"


def progress(membership, rollout, stages) -> dict:
    """The rollout's totals and its current stage, from the stages' counters."""
    targeted = sum(stage.targeted for stage in stages)
    updated = sum(stage.updated for stage in stages)
    failed = sum(stage.failed for stage in stages)
    pending = max(targeted - updated - failed, 0)
    current = stages[rollout.current_stage] if 0 <= rollout.current_stage < len(stages) else None

    def percent(value):
        return 100 * value / targeted if targeted else 0

    return {
        "targeted": targeted, "updated": updated, "failed": failed, "pending": pending,
        "offered": sum(stage.offered for stage in stages), "timed_out": sum(stage.timed_out for stage in stages),
        "updated_percent": percent(updated), "failed_percent": percent(failed), "pending_percent": percent(pending),
        "stage_count": len(stages), "current": current,
        "current_label": stage_label(membership, current) if current is not None else None,
    }


def _chart(samples, *, top: int) -> dict | None:
    """Polylines of updated and failed over time, in the SVG's own coordinates."""
    if len(samples) < 2:
        return None
    if len(samples) > CHART_POINTS:
        step = len(samples) / CHART_POINTS
        samples = [samples[int(i * step)] for i in range(CHART_POINTS)] + [samples[-1]]
    first, last = samples[0].at, samples[-1].at
    span = max((last - first).total_seconds(), 1)
    top = max(top, max(s.updated for s in samples), max(s.failed for s in samples), 1)
    left, right, bottom = CHART_PAD + 12, CHART_WIDTH - 8, CHART_HEIGHT - 24
    height = bottom - 8

    def point(sample, value):
        x = left + (right - left) * (sample.at - first).total_seconds() / span
        y = bottom - height * value / top
        return f"{x:.1f},{y:.1f}"

    return {
        "width": CHART_WIDTH, "height": CHART_HEIGHT, "left": left, "right": right, "bottom": bottom, "top_y": bottom - height,
        "mid_y": bottom - height // 2, "top": top, "mid": top // 2 if top > 1 else None,
        "updated": " ".join(point(s, s.updated) for s in samples),
        "failed": " ".join(point(s, s.failed) for s in samples),
        "first": first, "last": last, "last_updated": samples[-1].updated, "last_failed": samples[-1].failed,
    }


def _may_act(membership, rollout) -> bool:
    if not membership.can_write:
        return False
    try:
        rollouts.check_may_act(rollout, membership)
    except PermissionDenied:
        return False
    return True


def _context(membership, **more) -> dict:
    return {"membership": membership, "product": membership.product, "nav": "firmware", **more}


@login_required
@require_GET
@htmx.vary_on_htmx
def rollout_list(request, product):
    membership = access.membership_for(request.user, product)
    items = list(
        Rollout.objects.filter(product=membership.product).select_related("firmware")
        .annotate(stage_count=Count("stages")).order_by("-created_at", "-id")
    )
    return render(request, "firmware/rollout_list.html", _context(membership, rollouts=items))


@login_required
@require_GET
@htmx.vary_on_htmx
def rollout_detail(request, product, rollout_id):
    """The progress page; the `rollout-live` region polls itself while the rollout is live."""
    membership = access.membership_for(request.user, product)
    rollout = _rollout(membership, rollout_id)
    stages = list(rollout.stages.prefetch_related("groups"))
    for stage in stages:
        stage.label = stage_label(membership, stage)
        stage.soak_minutes = _minutes(stage.soak)
        stage.max_failure = f"{stage.max_failure_percent.normalize():f}"
        stage.is_open = stage.opened_at is not None and rollout.current_stage >= stage.index
        stage.is_current = stage.index == rollout.current_stage
    summary = progress(membership, rollout, stages)
    samples = list(rollout.samples.only("rollout_id", "at", "updated", "failed").order_by("at", "id"))
    reasons = list(
        FirmwareUpdate.objects.filter(rollout=rollout, status=FirmwareUpdate.Status.FAILED)
        .values("reason").annotate(devices=Count("id")).order_by("-devices", "reason")[:5]
    )
    may_act = _may_act(membership, rollout)
    actions = [
        {"name": name, "label": ACTION_LABELS[name]}
        for name in rollouts.ACTIONS if rollout.status in rollouts.ALLOWED[name]
    ] if may_act else []
    devices_url = reverse("devices:list", kwargs={"product": membership.product.slug})
    context = _context(
        membership, rollout=rollout, stages=stages, summary=summary, chart=_chart(samples, top=summary["targeted"]),
        reasons=reasons, actions=actions, timeout_minutes=_minutes(rollout.timeout),
        failed_url=f"{devices_url}?rollout_failed={rollout.pk}", url=rollout_url(membership.product, rollout),
    )
    return render(request, htmx.partial(request, "firmware/rollout_detail.html", "rollout-live"), context)


def _done_message(rollout, action: str, impact) -> str:
    version = rollout.firmware.version
    if action == "pause":
        return f"Paused the v{version} rollout."
    if action == "resume":
        return f"Resumed the v{version} rollout."
    if action == "advance":
        if rollout.status == Rollout.Status.COMPLETED:
            return f"Completed the v{version} rollout."
        return f"Opened stage {rollout.current_stage + 1} of the v{version} rollout."
    if action == "abort":
        return f"Aborted the v{version} rollout: {impact.devices:,} devices go back to their previous target."
    return f"Rolled back the v{version} rollout: {impact.devices:,} devices go back to the version they ran before."


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def rollout_action(request, product, rollout_id, action):
    """Pause, resume, advance, abort or roll back: the impact first, then the action."""
    if action not in rollouts.ACTIONS:
        raise Http404("No such action")
    membership = access.membership_for(request.user, product, write=True)
    rollout = _rollout(membership, rollout_id)
    rollouts.check_may_act(rollout, membership)
    url = rollout_url(membership.product, rollout)
    errors, acknowledge_errors = [], []
    if request.method == "POST":
        impact = rollouts.action_impact(rollout, action)
        try:
            acted = rollouts.rollout_act(
                rollout=rollout, action=action, actor=request.user, membership=membership,
                acknowledge=request.POST.get("acknowledge") in {"on", "true", "1"},
            )
        except ValidationError as error:
            messages = getattr(error, "message_dict", {"action": error.messages})
            acknowledge_errors = messages.pop("acknowledge", [])
            errors = [message for values in messages.values() for message in values]
            rollout.refresh_from_db()
        else:
            return htmx.finished(request, message=_done_message(acted, action, impact), events=EVENTS, next=url)
    impact = rollouts.action_impact(rollout, action)
    # A refusal because of the state says what the impact says: once is enough.
    errors = [error for error in errors if error != impact.summary]
    stages = list(rollout.stages.all())
    failures = sum(stage.failed - stage.acknowledged_failed for stage in stages)
    context = _context(
        membership, rollout=rollout, action=action, label=ACTION_LABELS[action], impact=impact,
        failures=failures, errors=errors, acknowledge_errors=acknowledge_errors, url=url,
        action_url=reverse("firmware:rollout_action", kwargs={"product": membership.product.slug, "rollout_id": rollout.pk,
                                                               "action": action}),
    )
    return htmx.dialog(request, "firmware/rollout_action_dialog.html", context, name="rollout-action-dialog")


def device_rollout_sentence(membership, device) -> str | None:
    """The device page's sentence on the live rollout (no query when the product has none).
    `device` carries the rule's annotations (Device.objects.with_target())."""
    if not membership.product.live_rollout_id:
        return None
    return rollouts.device_status(device, rollout_open=bool(getattr(device, "target_rollout_open", False)), membership=membership)
