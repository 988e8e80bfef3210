"""Staged rollouts: a release opened to the devices it targets stage after stage, each stage
gated on health, halting by itself when a gate fails.

A staged release (`firmware_release(..., rollout=spec)`) releases its version to its groups as
their `rolling_firmware` (and perhaps as the default), and makes the rollout the product's live
rollout. The precedence rule (firmware.targeting) gives a device the rollout's version only once
its stage is open; every other device keeps the target it would have without the release.

Which stage a device is in is fixed: the first stage naming one of its groups, else the first
share stage above its bucket (`rollout_bucket`, a hash of the device and the rollout's seed).

Counting is incremental, so no gate scans the fleet. The gateway's services call `offered`,
`updated` and `failed` as devices are offered the version and report, each adding one to its
stage's counters; `failed` halts the rollout at once when the stage's failure rate passes its
gate (one UPDATE of the stage, one of the rollout: two reports racing past the threshold halt it
once). The soak times, the timeout of offered devices that never report and scheduled starts are
checked by `tick`, a chain of tasks on the task queue (firmware.tasks).

The actions (pause, resume, advance, abort, rollback) each have their impact first
(`action_impact`), are one transaction, and record an audit event and a webhook.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Sum
from django.utils import timezone

from console import access, webhooks
from console.models import AuditEvent, Product
from devices.models import Device
from firmware.models import (
    BUCKETS,
    SEED_LIMIT,
    Firmware,
    FirmwareUpdate,
    Rollout,
    RolloutSample,
    RolloutStage,
    rollout_bucket,
    rollout_bucket_sql,
)
from groups.models import Group, GroupMembership

# How often a running rollout checks its soak time and the timeout of offered devices.
TICK = timedelta(minutes=1)
DEFAULTS = {"soak_minutes": 60, "max_failure_percent": Decimal("5"), "min_updated": 10, "timeout_minutes": 60}
PRESETS = {
    "all_at_once": ("All at once", ""),
    "canary": ("Canary 1% → 10% → 100%", "1%, 10%, 100%"),
    "phased": ("Phased 1% → 10% → 50% → 100%", "1%, 10%, 50%, 100%"),
}
MAX_MINUTES = 7 * 24 * 60
LIVE_MESSAGE = (
    "v{version} is rolling out to this product ({status}). Let it complete, or abort or roll it back, "
    "before releasing again."
)


# ---------------------------------------------------------------------------------------------
# The plan of a rollout


@dataclass(frozen=True)
class StageSpec:
    share: int | None  # cumulative, of BUCKETS; None for a stage of named groups
    groups: tuple = ()  # Group objects
    soak: timedelta = timedelta(minutes=DEFAULTS["soak_minutes"])
    max_failure_percent: Decimal = DEFAULTS["max_failure_percent"]
    min_updated: int = DEFAULTS["min_updated"]

    @property
    def label(self) -> str:
        if self.share is None:
            return ", ".join(group.name for group in self.groups)
        return f"{_percent(self.share)}%"


@dataclass(frozen=True)
class RolloutSpec:
    """A rollout as asked for, checked: its stages, the timeout of an offered device, its start."""

    stages: tuple[StageSpec, ...]
    timeout: timedelta = timedelta(minutes=DEFAULTS["timeout_minutes"])
    starts_at: datetime | None = None

    @property
    def summary(self) -> str:
        return " → ".join(stage.label for stage in self.stages)


def _percent(share: int) -> str:
    value = Decimal(share) * 100 / BUCKETS
    return f"{value.normalize():f}"


def _number(value, *, field_name: str, low, high, kind=int, what: str):
    if value is None or value == "":
        return None
    try:
        number = kind(str(value).strip())
    except (TypeError, ValueError, InvalidOperation):
        raise ValidationError({field_name: [f"Enter {what} as a number."]}) from None
    if not low <= number <= high:
        raise ValidationError({field_name: [f"Enter {what} between {low} and {high}."]})
    return number


def rollout_spec(*, product, stages, soak_minutes=None, max_failure_percent=None, min_updated=None,
                 timeout_minutes=None, starts_at=None, membership=None) -> RolloutSpec | None:
    """Check a rollout as the console form or the API states it; None for "all at once".

    `stages` is either text ("prerelease, 1%, 10%, 100%": group names and cumulative shares) or
    a list of dicts ({"percent": 10} or {"groups": ["prerelease"]}, each with optional
    soak_minutes, max_failure_percent, min_updated overriding the rollout-wide values)."""
    if stages is None or stages == "" or stages == []:
        return None
    defaults = {
        "soak_minutes": _number(soak_minutes, field_name="soak_minutes", low=0, high=MAX_MINUTES, what="the soak time in minutes"),
        "max_failure_percent": _number(max_failure_percent, field_name="max_failure_percent", low=0, high=100, kind=Decimal,
                                       what="the failure rate in percent"),
        "min_updated": _number(min_updated, field_name="min_updated", low=0, high=10_000_000, what="the number of devices"),
    }
    defaults = {key: DEFAULTS[key] if value is None else value for key, value in defaults.items()}
    if isinstance(stages, str):
        entries = []
        for token in (part.strip() for part in stages.split(",")):
            if not token:
                continue
            match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%?", token)
            entries.append({"percent": match.group(1)} if match else {"groups": [token]})
    elif isinstance(stages, list):
        entries = stages
    else:
        raise ValidationError({"stages": ["List the stages, for example “1%, 10%, 100%”."]})
    if not entries:
        raise ValidationError({"stages": ["List the stages, for example “1%, 10%, 100%”."]})
    if len(entries) > 20:
        raise ValidationError({"stages": ["A rollout has at most 20 stages."]})

    names = {name for entry in entries if isinstance(entry, dict) for name in entry.get("groups") or []}
    visible = Group.objects.filter(product=product)
    restricted = membership.restricted_group_ids() if membership is not None else None
    if restricted is not None:
        visible = visible.filter(id__in=restricted)
    groups = {group.name: group for group in visible.filter(name__in=names)}
    unknown = sorted(names - set(groups))
    if unknown:
        raise ValidationError({"stages": [f"Unknown group: {', '.join(unknown)}. Name groups of this product, or shares such as 10%."]})

    specs, last_share = [], 0
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ValidationError({"stages": [f"Stage {position}: give a percent or groups."]})
        overrides = {
            "soak_minutes": _number(entry.get("soak_minutes"), field_name="stages", low=0, high=MAX_MINUTES,
                                    what=f"stage {position}'s soak time in minutes"),
            "max_failure_percent": _number(entry.get("max_failure_percent"), field_name="stages", low=0, high=100,
                                           kind=Decimal, what=f"stage {position}'s failure rate in percent"),
            "min_updated": _number(entry.get("min_updated"), field_name="stages", low=0, high=10_000_000,
                                   what=f"stage {position}'s number of devices"),
        }
        values = {key: defaults[key] if value is None else value for key, value in overrides.items()}
        common = {"soak": timedelta(minutes=values["soak_minutes"]), "max_failure_percent": values["max_failure_percent"],
                  "min_updated": values["min_updated"]}
        if entry.get("groups"):
            if entry.get("percent") not in (None, ""):
                raise ValidationError({"stages": [f"Stage {position}: give a percent or groups, not both."]})
            if last_share:
                raise ValidationError({"stages": ["Stages of named groups come first, before the shares."]})
            specs.append(StageSpec(None, tuple(groups[name] for name in entry["groups"]), **common))
            continue
        percent = _number(entry.get("percent"), field_name="stages", low=Decimal("0.01"), high=100, kind=Decimal,
                          what=f"stage {position}'s share in percent")
        if percent is None:
            raise ValidationError({"stages": [f"Stage {position}: give a percent or groups."]})
        share = int(percent * BUCKETS / 100)
        if share <= last_share:
            raise ValidationError({"stages": ["Shares are cumulative: each stage opens more than the one before (1%, 10%, 100%)."]})
        specs.append(StageSpec(share, **common))
        last_share = share
    if last_share != BUCKETS:
        raise ValidationError({"stages": ["The last stage opens 100% of the devices: end the stages with 100%."]})

    timeout = _number(timeout_minutes, field_name="timeout_minutes", low=1, high=MAX_MINUTES, what="the timeout in minutes")
    start = starts_at or None
    if isinstance(start, str):
        from django.utils.dateparse import parse_datetime

        parsed = parse_datetime(start.strip())
        if parsed is None:
            raise ValidationError({"starts_at": ["Enter the start as a date and time, such as 2026-12-24T08:00Z."]})
        start = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
    if start is not None and start < timezone.now() - timedelta(minutes=1):
        raise ValidationError({"starts_at": ["The start is in the past: choose a later time, or leave it empty to start now."]})
    return RolloutSpec(
        tuple(specs), timedelta(minutes=timeout if timeout is not None else DEFAULTS["timeout_minutes"]), start
    )


def seed_for(firmware: Firmware) -> int:
    """The rollout's seed: fixed by the version, so the preview and the rollout place every device
    in the same stage."""
    return (firmware.pk * 40_503 + 12_345) % SEED_LIMIT


def stage_sql(specs, *, seed: int, device: str) -> tuple[str, list]:
    """SQL (and params) of the stage index of the device row aliased `device` (see `stage_of`)."""
    whens, params = [], []
    for index, spec in enumerate(specs):
        if spec.share is None:
            ids = [group.id for group in spec.groups]
            # Not correlated: the planner reads the canary groups' members once (a hashed subplan).
            whens.append(f"WHEN {device}.id IN (SELECT sm.device_id FROM groups_groupmembership sm"
                         f" WHERE sm.group_id IN ({', '.join(['%s'] * len(ids))})) THEN {index}")
            params += ids
        else:
            whens.append(f"WHEN {rollout_bucket_sql(f'{device}.id', str(int(seed)))} < %s THEN {index}")
            params.append(spec.share)
    return f"CASE {' '.join(whens)} END", params


def stage_of(specs, *, seed: int, device_pk: int, group_ids) -> int:
    """The stage of a device: the first naming one of its groups, else the first share above its
    bucket. `stage_sql` is the same in SQL; tests hold the two together."""
    bucket = rollout_bucket(device_pk, seed)
    for index, spec in enumerate(specs):
        if spec.share is None:
            if any(group.id in group_ids for group in spec.groups):
                return index
        elif bucket < spec.share:
            return index
    return len(specs) - 1


def specs_of(rollout: Rollout) -> list[StageSpec]:
    stages = list(rollout.stages.prefetch_related("groups"))
    return [StageSpec(stage.share, tuple(stage.groups.all()), stage.soak, stage.max_failure_percent, stage.min_updated)
            for stage in stages]


# ---------------------------------------------------------------------------------------------
# Starting


def live_rollout(product) -> Rollout | None:
    return Rollout.objects.filter(product=product, status__in=Rollout.LIVE).select_related("firmware").first()


def refuse_while_live(product) -> None:
    """Any release waits for the live rollout to end: two at once would each change the other's
    "previous target"."""
    live = live_rollout(product)
    if live is not None:
        raise ValidationError(LIVE_MESSAGE.format(version=live.firmware.version, status=live.get_status_display().lower()))


def check_staged(plan) -> None:
    """A staged release only adds: the version goes to more groups or becomes the default."""
    if not plan.newly_releases:
        raise ValidationError({"stages": ["A staged release releases the version somewhere new: choose a group it is not released to yet, or the product default."]})
    if plan.groups_removed or (plan.default_before and not plan.default_after):
        raise ValidationError({"stages": ["A staged release cannot also unrelease: release all at once to unrelease, or unrelease first."]})


def start(*, plan, spec: RolloutSpec, impact, actor) -> Rollout:
    """Create the rollout of a checked, planned staged release, inside `firmware_release`'s
    transaction (which holds the product and the groups): the groups get the version as their
    rolling firmware, the stages their targeted counts, and the first stage opens now or at the
    scheduled start."""
    firmware, product = plan.firmware, plan.firmware.product
    added = plan.groups_added
    rollout = Rollout.objects.create(
        product=product, firmware=firmware, sets_default=plan.default_after and not plan.default_before,
        seed=seed_for(firmware), timeout=spec.timeout, starts_at=spec.starts_at, created_by=actor if getattr(actor, "pk", None) else None,
        previous={"groups": {str(group.id): _version_of(group.released_firmware_id) for group in added},
                  "default": _version_of(product.default_firmware_id)},
    )
    rollout.release_groups.set(added)
    for index, stage_spec in enumerate(spec.stages):
        stage = RolloutStage.objects.create(
            rollout=rollout, index=index, share=stage_spec.share, soak=stage_spec.soak,
            max_failure_percent=stage_spec.max_failure_percent, min_updated=stage_spec.min_updated,
            targeted=impact.by_stage.get(index, 0),
        )
        stage.groups.set(stage_spec.groups)
    Group.objects.filter(id__in=[group.id for group in added]).update(rolling_firmware=firmware)
    Product.objects.filter(pk=product.pk).update(live_rollout=rollout)
    product.live_rollout = rollout
    now = timezone.now()
    if spec.starts_at is not None and spec.starts_at > now:
        _schedule_tick(rollout, at=spec.starts_at)
        _event(rollout, "rollout.scheduled", actor, starts_at=spec.starts_at.isoformat(), stages=spec.summary,
               targeted=impact.total)
    else:
        _begin(rollout, now=now, actor=actor)
    return rollout


def _version_of(firmware_id):
    if firmware_id is None:
        return None
    return Firmware.objects.filter(pk=firmware_id).values_list("version", flat=True).first()


def _begin(rollout: Rollout, *, now, actor) -> None:
    rollout.status, rollout.started_at = Rollout.Status.RUNNING, now
    rollout.save(update_fields=["status", "started_at"])
    stages = list(rollout.stages.all())
    _event(rollout, "rollout.started", actor, stages=" → ".join(_stage_label(stage) for stage in stages),
           targeted=sum(stage.targeted for stage in stages))
    _open_stage(rollout, 0, now=now, actor=actor)


def _stage_label(stage: RolloutStage) -> str:
    if stage.share is None:
        return ", ".join(group.name for group in stage.groups.all())
    return f"{_percent(stage.share)}%"


def _open_stage(rollout: Rollout, index: int, *, now, actor) -> None:
    stage = rollout.stages.get(index=index)
    rollout.current_stage, rollout.stage_opened_at = index, now
    if stage.share is not None:
        rollout.open_share = stage.share
    rollout.save(update_fields=["current_stage", "stage_opened_at", "open_share"])
    RolloutStage.objects.filter(pk=stage.pk).update(opened_at=now)
    _event(rollout, "rollout.stage_opened", actor, stage=index + 1, stages=rollout.stages.count(),
           opens=_stage_label(stage), targeted=stage.targeted)
    _schedule_tick(rollout, at=min(now + stage.soak, now + TICK) if stage.soak else now)


def _schedule_tick(rollout: Rollout, *, at) -> None:
    """Replace the rollout's chain of checks by one at `at` (same transaction as the change)."""
    from firmware.tasks import rollout_tick

    Rollout.objects.filter(pk=rollout.pk).update(tick_generation=F("tick_generation") + 1)
    rollout.refresh_from_db(fields=["tick_generation"])
    rollout_tick.using(run_after=at).enqueue(rollout.pk, rollout.tick_generation)


def _event(rollout: Rollout, action: str, actor, **details) -> None:
    """The audit event, the webhook and a sample of the totals, for something that happened to a
    rollout."""
    details = {"rollout": rollout.pk, "version": rollout.firmware.version, **details}
    AuditEvent.record(product=rollout.product, actor=actor, action=action, obj=rollout.firmware, **details)
    webhooks.emit(product=rollout.product, event=action, data=details)
    _sample(rollout, now=timezone.now())


def _sample(rollout: Rollout, *, now) -> None:
    totals = rollout.stages.aggregate(offered=Sum("offered"), updated=Sum("updated"), failed=Sum("failed"))
    RolloutSample.objects.create(rollout=rollout, at=now, **{key: value or 0 for key, value in totals.items()})


# ---------------------------------------------------------------------------------------------
# What devices report (called by the gateway's services inside their transactions)


def offered(*, device: Device, update: FirmwareUpdate, rollout: Rollout) -> None:
    """The device is offered the rollout's version: it is in the rollout now (it keeps that target
    while the rollout lives, paused or halted), and its stage counts one more device offered the
    first time."""
    group_ids = set(GroupMembership.objects.filter(device=device).values_list("group_id", flat=True))
    stage = stage_of(specs_of(rollout), seed=rollout.seed, device_pk=device.pk, group_ids=group_ids)
    first = not FirmwareUpdate.objects.filter(rollout=rollout, device=device).exclude(pk=update.pk).exists()
    FirmwareUpdate.objects.filter(pk=update.pk).update(rollout=rollout, stage=stage)
    Device.objects.filter(pk=device.pk).update(rollout=rollout)
    if first:
        RolloutStage.objects.filter(rollout=rollout, index=stage).update(offered=F("offered") + 1)


def updated(*, rollout_id: int, stage: int) -> None:
    RolloutStage.objects.filter(rollout_id=rollout_id, index=stage).update(updated=F("updated") + 1)


def failed(*, rollout_id: int, stage: int, count: int = 1, timed_out: bool = False) -> None:
    """Count failures against the stage's gate, and halt the rollout at once if it fails: two
    UPDATEs, whatever the size of the fleet."""
    # Locks in one order everywhere: the rollout's row, then its stage's (the checks of `tick` hold
    # the rollout's while they count timeouts).
    Rollout.objects.select_for_update(no_key=True).filter(pk=rollout_id).values_list("id").first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE firmware_rolloutstage SET failed = failed + %s, timed_out = timed_out + %s"
            " WHERE rollout_id = %s AND \"index\" = %s"
            " RETURNING failed, offered, acknowledged_failed, acknowledged_offered, max_failure_percent, targeted,"
            " min_updated",
            [count, count if timed_out else 0, rollout_id, stage],
        )
        row = cursor.fetchone()
    if row is None:
        return
    failures, offers, acknowledged_failed, acknowledged_offered, limit, targeted, min_updated = row
    failures, offers = failures - acknowledged_failed, offers - acknowledged_offered
    rate = 100 * failures / offers if offers > 0 else 0.0
    if not gate_fails(failures=failures, offered=offers, targeted=targeted, limit=float(limit), min_updated=min_updated):
        return
    reason = (f"{failures} of {offers} devices in stage {stage + 1} failed, "
              f"{rate:.1f}% > {Decimal(limit).normalize():f}%")
    halted = Rollout.objects.filter(pk=rollout_id, status=Rollout.Status.RUNNING).update(
        status=Rollout.Status.HALTED, halted_reason=f"Halted: {reason}"
    )
    if halted:
        rollout = Rollout.objects.select_related("product", "firmware").get(pk=rollout_id)
        _event(rollout, "rollout.halted", None, stage=stage + 1, failed=failures, offered=offers,
               failure_rate=round(rate, 1), limit=float(limit), reason=reason)


# ---------------------------------------------------------------------------------------------
# Time: soak, timeouts, scheduled start (run by the task queue)


@transaction.atomic
def tick(rollout_id: int, generation: int, *, now=None) -> None:
    """One check of a rollout: start it when its time has come; count offered devices that never
    reported as failed; open the next stage, or complete, once the stage has soaked and its gate
    passes. Then the next check is queued while the rollout runs."""
    now = now or timezone.now()
    rollout = Rollout.objects.select_for_update().select_related("product", "firmware").filter(pk=rollout_id).first()
    if rollout is None or rollout.tick_generation != generation:
        return  # a stale link of a chain replaced since
    if rollout.status == Rollout.Status.SCHEDULED:
        if rollout.starts_at and rollout.starts_at > now:
            _schedule_tick(rollout, at=rollout.starts_at)
            return
        _begin(rollout, now=now, actor=None)
        return
    if rollout.status != Rollout.Status.RUNNING:
        return
    _time_out(rollout, now=now)
    _sample(rollout, now=now)
    rollout.refresh_from_db(fields=["status"])
    if rollout.status != Rollout.Status.RUNNING:
        return
    stage = rollout.stages.get(index=rollout.current_stage)
    soaked_at = (stage.opened_at or now) + stage.soak
    if now >= soaked_at and gate_passes(stage):
        _advance(rollout, now=now, actor=None)
    else:
        _schedule_tick(rollout, at=min(max(soaked_at, now + timedelta(seconds=5)), now + TICK))


def judged_after(limit: float, min_updated: int) -> int:
    """How many offered devices a stage's failure rate is judged over: at least its M, and enough
    that one failure alone is within the limit (20 devices for 5%); any failure, with a limit of 0."""
    return max(min_updated, math.ceil(100 / limit)) if limit > 0 else 1


def gate_fails(*, failures: int, offered: int, targeted: int, limit: float, min_updated: int) -> bool:
    """Whether failures so far fail the stage's gate: the rate passes the limit over enough devices
    (`judged_after`), or there are already more failures than the limit allows in the whole stage."""
    if failures <= 0:
        return False
    over = 100 * failures > limit * max(offered, 1)
    enough = offered >= min(judged_after(limit, min_updated), max(targeted, 1))
    beyond_repair = 100 * failures > limit * targeted
    return over and (enough or beyond_repair)


def gate_passes(stage: RolloutStage) -> bool:
    """Enough devices updated (all of the stage's, if it has fewer) and the failure rate within."""
    return stage.updated >= min(stage.min_updated, stage.targeted) and stage.failure_rate() <= float(stage.max_failure_percent)


def _time_out(rollout: Rollout, *, now) -> None:
    """Offered devices that have not reported the version within the timeout have failed."""
    # Updates a device is settling right now are skipped (SKIP LOCKED): the next check sees them.
    late = list(
        FirmwareUpdate.objects.select_for_update(skip_locked=True)
        .filter(rollout=rollout, status=FirmwareUpdate.Status.PENDING, created_at__lt=now - rollout.timeout)
        .values_list("id", "stage")
    )
    if not late:
        return
    counts: dict[int, int] = {}
    for _id, stage in late:
        counts[stage] = counts.get(stage, 0) + 1
    minutes = int(rollout.timeout.total_seconds() // 60)
    FirmwareUpdate.objects.filter(id__in=[update_id for update_id, _stage in late]).update(
        status=FirmwareUpdate.Status.FAILED, finished_at=now,
        reason=f"Timed out: v{rollout.firmware.version} not reported within {minutes} min.",
    )
    for stage, count in sorted(counts.items()):
        failed(rollout_id=rollout.pk, stage=stage, count=count, timed_out=True)


def _advance(rollout: Rollout, *, now, actor) -> None:
    if rollout.current_stage + 1 < rollout.stages.count():
        _open_stage(rollout, rollout.current_stage + 1, now=now, actor=actor)
    else:
        _complete(rollout, now=now, actor=actor)


def _complete(rollout: Rollout, *, now, actor) -> None:
    """The last stage passed: the release becomes the groups' and the default's own."""
    product = rollout.product
    Group.objects.filter(product=product, rolling_firmware=rollout.firmware).update(
        released_firmware=rollout.firmware, rolling_firmware=None
    )
    if rollout.sets_default:
        Product.objects.filter(pk=product.pk).update(default_firmware=rollout.firmware)
    _end(rollout, Rollout.Status.COMPLETED, now=now)
    _event(rollout, "rollout.completed", actor, updated=sum(rollout.stages.values_list("updated", flat=True)),
           failed=sum(rollout.stages.values_list("failed", flat=True)))


def _end(rollout: Rollout, status, *, now) -> None:
    if status != Rollout.Status.COMPLETED:
        # Offers still pending are over with the rollout: a later rollout counts its own.
        FirmwareUpdate.objects.filter(rollout=rollout, status=FirmwareUpdate.Status.PENDING).update(
            status=FirmwareUpdate.Status.FAILED, finished_at=now,
            reason=f"Superseded: the v{rollout.firmware.version} rollout was {status.label.lower()}.",
        )
    Group.objects.filter(product=rollout.product, rolling_firmware__isnull=False).update(rolling_firmware=None)
    Product.objects.filter(pk=rollout.product_id).update(live_rollout=None)
    rollout.status, rollout.ended_at = status, now
    rollout.save(update_fields=["status", "ended_at"])
    Rollout.objects.filter(pk=rollout.pk).update(tick_generation=F("tick_generation") + 1)


# ---------------------------------------------------------------------------------------------
# People's actions


ACTIONS = ("pause", "resume", "advance", "abort", "rollback")
ALLOWED = {
    "pause": (Rollout.Status.RUNNING, Rollout.Status.SCHEDULED),
    "resume": (Rollout.Status.PAUSED, Rollout.Status.HALTED),
    "advance": (Rollout.Status.RUNNING, Rollout.Status.PAUSED, Rollout.Status.SCHEDULED),
    "abort": Rollout.LIVE,
    "rollback": (*Rollout.LIVE, Rollout.Status.ABORTED, Rollout.Status.COMPLETED),
}


@dataclass
class ActionImpact:
    """What an action would do, in numbers, for the confirmation and the API."""

    action: str
    allowed: bool
    summary: str
    devices: int = 0
    by_version: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"action": self.action, "allowed": self.allowed, "summary": self.summary, "devices": self.devices,
                "by_version": [{"version": v, "total": n} for v, n in sorted(self.by_version.items(), key=lambda i: -(i[0] or 0))]}


def _rolled_back_versions(rollout: Rollout) -> dict:
    """Devices that updated in the rollout, by the version they ran before (one grouped query)."""
    rows = (FirmwareUpdate.objects.filter(rollout=rollout, status=FirmwareUpdate.Status.SUCCEEDED)
            .values_list("from_version").annotate(n=Count("device_id", distinct=True)).order_by())
    return dict(rows)


def action_impact(rollout: Rollout, action: str) -> ActionImpact:
    version = rollout.firmware.version
    stages = list(rollout.stages.all())
    allowed = rollout.status in ALLOWED[action]
    if not allowed:
        return ActionImpact(action, False, f"This rollout is {rollout.get_status_display().lower()}: it cannot be {_PAST[action]}.")
    updated_total = sum(stage.updated for stage in stages)
    offered_total = sum(stage.offered for stage in stages)
    if action == "pause":
        return ActionImpact(action, True, f"No more devices will be offered v{version}; the {offered_total:,} offered it already keep it as their target.", offered_total)
    if action == "resume":
        failures = sum(stage.failed - stage.acknowledged_failed for stage in stages)
        stage = stages[max(rollout.current_stage, 0)]
        return ActionImpact(action, True, f"Acknowledges {failures:,} failure{'s' if failures != 1 else ''} so far; offers of v{version} continue in stage {stage.number} ({stage.pending:,} devices waiting). The gate counts only failures from now on.", stage.pending)
    if action == "advance":
        index = rollout.current_stage + 1
        if index >= len(stages):
            return ActionImpact(action, True, f"This is the last stage: the rollout completes now, and v{version} becomes the release of its groups{' and the product default' if rollout.sets_default else ''}.", 0)
        stage = stages[index]
        return ActionImpact(action, True, f"Opens stage {stage.number} ({_stage_label(stage)}) now, without waiting for the soak time or the gate: {stage.targeted:,} more devices will be updated to v{version}.", stage.targeted)
    if action == "abort":
        back = max(offered_total - updated_total, 0)
        never = max(sum(stage.targeted for stage in stages) - offered_total, 0)
        return ActionImpact(action, True, f"{back:,} devices offered v{version} and not yet updated go back to their previous target, and {never:,} more will not be offered it; the {updated_total:,} that updated stay on v{version} until the next release.", back)
    versions = _rolled_back_versions(rollout)
    total = sum(versions.values())
    listed = ", ".join(f"{n:,} to v{v}" for v, n in sorted(versions.items(), key=lambda i: -(i[0] or 0)) if v is not None)
    tail = "" if rollout.status not in Rollout.LIVE else " Devices not yet updated go back to their previous target."
    restore = " The groups and the default get back the releases they had before." if rollout.status == Rollout.Status.COMPLETED else ""
    return ActionImpact(action, True, f"{total:,} devices that updated to v{version} will be targeted back to the version they ran before{(': ' + listed) if listed else ''}.{tail}{restore}", total, versions)


_PAST = {"pause": "paused", "resume": "resumed", "advance": "advanced", "abort": "aborted", "rollback": "rolled back"}


RESTRICTED_MESSAGE = (
    "This rollout releases v{version} beyond the groups you have access to{default}, so only a member "
    "with access to the whole product can act on it. Ask an Administrator."
)


def check_may_act(rollout: Rollout, membership) -> None:
    """A member restricted to groups acts only on rollouts within them, as with releases: none that
    sets the default, none releasing to a group outside their access."""
    restricted = membership.restricted_group_ids() if membership is not None else None
    if restricted is None:
        return
    outside = rollout.release_groups.exclude(id__in=restricted).exists()
    if rollout.sets_default or outside:
        raise PermissionDenied(RESTRICTED_MESSAGE.format(
            version=rollout.firmware.version, default=" (it sets the product default)" if rollout.sets_default else ""))


@transaction.atomic
def rollout_act(*, rollout: Rollout, action: str, actor, acknowledge: bool = False, membership=None) -> Rollout:
    """Carry out one of ACTIONS on the rollout, under its lock; refused (ValidationError) when its
    state does not allow it, (PermissionDenied) to a restricted member beyond their groups. Resume
    needs `acknowledge` after failures."""
    if action not in ACTIONS:
        raise ValidationError({"action": [f"Unknown action: choose one of {', '.join(ACTIONS)}."]})
    check_may_act(rollout, membership)
    # The product first, as releases lock it, then the rollout.
    Product.objects.select_for_update(no_key=True).get(pk=rollout.product_id)
    rollout = Rollout.objects.select_for_update().select_related("product", "firmware").get(pk=rollout.pk)
    if rollout.status not in ALLOWED[action]:
        raise ValidationError({"action": [action_impact(rollout, action).summary]})
    now = timezone.now()
    if action == "pause":
        rollout.status = Rollout.Status.PAUSED
        rollout.save(update_fields=["status"])
        Rollout.objects.filter(pk=rollout.pk).update(tick_generation=F("tick_generation") + 1)
        _event(rollout, "rollout.paused", actor)
    elif action == "resume":
        stages = rollout.stages.all()
        failures = sum(stage.failed - stage.acknowledged_failed for stage in stages)
        if failures and not acknowledge:
            raise ValidationError({"acknowledge": [f"Acknowledge the {failures:,} failures to resume: the gate then counts only new ones."]})
        rollout.stages.update(acknowledged_failed=F("failed"), acknowledged_offered=F("offered"))
        halted_reason = rollout.halted_reason
        rollout.status, rollout.halted_reason = (Rollout.Status.RUNNING if rollout.started_at else Rollout.Status.SCHEDULED), ""
        rollout.save(update_fields=["status", "halted_reason"])
        _event(rollout, "rollout.resumed", actor, acknowledged=failures, **({"halted_reason": halted_reason} if halted_reason else {}))
        _schedule_tick(rollout, at=now if rollout.status == Rollout.Status.RUNNING else rollout.starts_at)
    elif action == "advance":
        if rollout.status == Rollout.Status.SCHEDULED:
            _begin(rollout, now=now, actor=actor)
        else:
            if rollout.status == Rollout.Status.PAUSED:
                rollout.status = Rollout.Status.RUNNING
                rollout.save(update_fields=["status"])
            _event(rollout, "rollout.advanced", actor, stage=rollout.current_stage + 1)
            _advance(rollout, now=now, actor=actor)
    elif action == "abort":
        impact = action_impact(rollout, "abort")
        # Devices that updated stay on the version until the next release.
        Device.objects.filter(rollout=rollout, firmware_version=rollout.firmware.version).update(
            pinned_version=rollout.firmware.version
        )
        _end(rollout, Rollout.Status.ABORTED, now=now)
        _event(rollout, "rollout.aborted", actor, returned=impact.devices)
    else:
        impact = action_impact(rollout, "rollback")
        _roll_back(rollout)
        if rollout.status in Rollout.LIVE:
            _end(rollout, Rollout.Status.ROLLED_BACK, now=now)
        else:
            rollout.status = Rollout.Status.ROLLED_BACK
            rollout.save(update_fields=["status"])
        _event(rollout, "rollout.rolled_back", actor, devices=impact.devices,
               by_version={str(v): n for v, n in impact.by_version.items()})
    return rollout


def _roll_back(rollout: Rollout) -> None:
    """Devices that updated in the rollout get the version they ran before as their target (kept
    until the next release); a completed rollout's groups and default get their releases back."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE devices_device SET pinned_version = (
                SELECT fu.from_version FROM firmware_firmwareupdate fu
                WHERE fu.rollout_id = %s AND fu.device_id = devices_device.id AND fu.status = %s
                ORDER BY fu.id DESC LIMIT 1
            )
            WHERE id IN (
                SELECT fu.device_id FROM firmware_firmwareupdate fu
                WHERE fu.rollout_id = %s AND fu.status = %s AND fu.from_version IS NOT NULL
            ) AND product_id = %s
            """,
            [rollout.pk, FirmwareUpdate.Status.SUCCEEDED, rollout.pk, FirmwareUpdate.Status.SUCCEEDED, rollout.product_id],
        )
    if rollout.status != Rollout.Status.COMPLETED:
        return
    previous = rollout.previous or {}
    versions = dict(Firmware.objects.filter(product=rollout.product).values_list("version", "id"))
    for group_id, version in (previous.get("groups") or {}).items():
        Group.objects.filter(pk=int(group_id), released_firmware=rollout.firmware).update(released_firmware_id=versions.get(version))
    if rollout.sets_default:
        Product.objects.filter(pk=rollout.product_id, default_firmware=rollout.firmware).update(
            default_firmware_id=versions.get(previous.get("default"))
        )


# ---------------------------------------------------------------------------------------------
# For people reading about one device


def device_status(device: Device, *, rollout_open: bool, membership=None) -> str | None:
    """A sentence on the live rollout for the device page's "why", when the rollout releases to
    the device (a group of it, or the default): whether its stage is open, else when it opens.
    `rollout_open` is the device's `target_rollout_open` annotation (the rule's own answer)."""
    rollout = live_rollout(device.product_id)
    if rollout is None:
        return None
    group_ids = set(GroupMembership.objects.filter(device=device).values_list("group_id", flat=True))
    if not rollout.sets_default and not rollout.release_groups.filter(id__in=group_ids).exists():
        return None
    version = rollout.firmware.version
    stages = specs_of(rollout)
    index = stage_of(stages, seed=rollout.seed, device_pk=device.pk, group_ids=group_ids)
    stage = stages[index]
    if stage.share is None and membership is not None:
        # A member restricted to groups reads only their groups' names.
        names = sorted({access.shown_group_name(membership, group.name) for group in stage.groups})
        stage = StageSpec(None, tuple(Group(name=name) for name in names))
    where = f"stage {index + 1} ({stage.label})" if stage.share is None else f"stage {index + 1} of {len(stages)}"
    if rollout_open:
        return f"v{version} is rolling out; this device's {where} is open."
    if rollout.status == Rollout.Status.RUNNING or rollout.status == Rollout.Status.SCHEDULED:
        opens = f"at {stage.label}" if stage.share is not None else f"with {stage.label}"
        return f"v{version} is rolling out; this device's stage opens {opens} ({where})."
    return f"v{version}'s rollout is {rollout.get_status_display().lower()}; this device has not been offered it ({where})."
