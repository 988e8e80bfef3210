"""A device's firmware: its lock and development flag, its handshake and update reports.

Firmware updates are created and settled at handshake time. A handshake that reports the pending
version settles it as succeeded; one whose target has moved elsewhere (a new release, a lock, a
development flag) settles it as failed with the reason "superseded"; otherwise a pending update
stays pending and is offered again. A device's update report of failure marks it failed, and its
next handshake creates a new pending update (a retry).
"""

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from console import access
from console.models import AuditEvent
from devices.models import Device
from firmware import handshake, targeting
from firmware.models import Firmware, FirmwareUpdate
from firmware.services import rollouts
from firmware.services.uploads import clean_version


def _target_of(device: Device, scenario: targeting.Scenario = targeting.CURRENT) -> dict:
    row = (
        Device.objects.filter(pk=device.pk)
        .with_target(scenario)
        .values("target_version", "target_rule", "target_group")
        .get()
    )
    return {"version": row["target_version"], "rule": row["target_rule"], "group": row["target_group"]}


def device_target_preview(*, device: Device, locked=targeting.UNCHANGED, development=targeting.UNCHANGED,
                          membership=None) -> dict:
    """The device's target now and after a lock/unlock or (un)marking development, in one query:
    `{"before": {version, rule, group, reason}, "after": {...}, "changed": bool, "impacted": bool}`.
    The reasons name groups as `membership` may read them."""
    scenario = targeting.Scenario(locked=locked, development=development)
    row = (
        Device.objects.filter(pk=device.pk)
        .with_target(prefix="current")
        .with_target(scenario, prefix="after")
        .values("firmware_version", *(f"{side}_{part}" for side in ("current", "after") for part in ("version", "rule", "group")))
        .get()
    )
    before, after = ({part: row[f"{side}_{part}"] for part in ("version", "rule", "group")} for side in ("current", "after"))
    for side in (before, after):
        shown = access.shown_group_name(membership, side["group"]) if membership is not None else side["group"]
        side["reason"] = targeting.explain(side["rule"], shown)
    impacted = targeting.is_impacted(
        running=row["firmware_version"], current_target=before["version"], after_target=after["version"]
    )
    return {"before": before, "after": after, "changed": before != after, "impacted": impacted}


def _clean_lock_version(device: Device, version) -> int | None:
    if version is None or version == "":
        return None
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise ValidationError({"desired_firmware_version": ["Choose a firmware version."]}) from None
    if not Firmware.objects.filter(product_id=device.product_id, version=version).exists():
        raise ValidationError(
            {"desired_firmware_version": [f"v{version} is not a firmware version of this product; upload it first."]}
        )
    return version


def _firmware_field_set(device: Device, field: str, value, *, actor, action, details) -> Device:
    """Set the lock or the development flag, auditing the device's target before and after;
    `details(previous)` adds what the audit event says about the change itself."""
    current = Device.objects.select_for_update().get(pk=device.pk)
    previous = getattr(current, field)
    setattr(device, field, value)
    if previous == value:
        return device
    before = _target_of(current)
    device.save(update_fields=[field, "updated_at"])
    AuditEvent.record(
        product=device.product, actor=actor, action=action, obj=device, device_ids=[device.device_id],
        **details(previous), target_before=before, target_after=_target_of(device),
    )
    return device


@transaction.atomic
def device_lock(*, device: Device, version: int | None, actor) -> Device:
    """Lock the device to a version of its product; None unlocks it."""
    version = _clean_lock_version(device, version)
    return _firmware_field_set(
        device, "desired_firmware_version", version, actor=actor,
        action="device.lock" if version is not None else "device.unlock",
        details=lambda previous: {"locked_before": previous, "locked_after": version},
    )


@transaction.atomic
def device_development_set(*, device: Device, development: bool, actor) -> Device:
    development = bool(development)
    device = _firmware_field_set(
        device, "development", development, actor=actor,
        action="device.development_mark" if development else "device.development_unmark",
        details=lambda previous: {"development": development},
    )
    if not development:
        # A version flashed by hand (devices.services.device_flash) only stands in development.
        Device.objects.filter(pk=device.pk, flash_version__isnull=False).update(flash_version=None)
        device.flash_version = None
    return device


@transaction.atomic
def device_handshake(*, device: Device, firmware_version: int | None) -> Firmware | None:
    """A device starts a session reporting the version it runs. Returns the firmware it should
    install, or None when it is on target (or has no target).

    The general path of the gateway's handshake (firmware.gateway), for a device it has
    authenticated: the common handshake, with nothing to settle or create, is done by one
    statement there, which makes the same decisions as this function (firmware.handshake)."""
    now = timezone.now()
    if firmware_version is not None:
        firmware_version = clean_version(firmware_version)
    # Precompiled statements: the UPDATE, which also takes the row lock (so concurrent
    # handshakes of one device queue up), the proof on the firmware, then the target, pending
    # update and offer.
    state = handshake.record(device=device, firmware_version=firmware_version, now=now)
    device.firmware_version, device.last_handshake_at, device.online = firmware_version, now, True
    target, pending_id, pending_to = state.target, state.pending_id, state.pending_to

    if pending_id is not None:
        if firmware_version == pending_to:
            settled = _finish(device, pending_id, FirmwareUpdate.Status.SUCCEEDED, "", action="firmware.update_succeeded",
                              from_version=None, to_version=pending_to, now=now)
            if settled.rollout_id is not None:
                rollouts.updated(rollout_id=settled.rollout_id, stage=settled.stage)
            pending_id = None
        elif pending_to != target:
            reason = f"Superseded: the target is now v{target}." if target else "Superseded: no longer targeted."
            _finish(device, pending_id, FirmwareUpdate.Status.FAILED, reason, action="firmware.update_superseded",
                    from_version=None, to_version=pending_to, now=now)
            pending_id = None

    offer = state.offer(firmware_version)
    if offer is None:
        return None
    if pending_id is None:
        update = FirmwareUpdate.objects.create(
            product_id=device.product_id, device=device, from_version=firmware_version, to_version=target
        )
        if state.rollout_open:
            live = rollouts.live_rollout(device.product_id)
            if live is not None and live.firmware.version == target:
                rollouts.offered(device=device, update=update, rollout=live)
        AuditEvent.record(
            product=device.product, actor=None, action="firmware.update_targeted", obj=device,
            device_ids=[device.device_id], from_version=firmware_version, to_version=target,
        )
    return offer


def _finish(device, update_id, status, reason, *, action, from_version, to_version, now) -> FirmwareUpdate:
    """Settle a pending update; returns it with its rollout and stage (in the same statement)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE firmware_firmwareupdate SET status = %s, reason = %s, finished_at = %s WHERE id = %s"
            " RETURNING rollout_id, stage",
            [status, reason[:255], connection.ops.adapt_datetimefield_value(now), update_id],
        )
        rollout_id, stage = cursor.fetchone()
    AuditEvent.record(
        product=device.product, actor=None, action=action, obj=device, device_ids=[device.device_id],
        to_version=to_version, **({"reason": reason} if reason else {}),
    )
    return FirmwareUpdate(pk=update_id, rollout_id=rollout_id, stage=stage)


@transaction.atomic
def device_update_failed(*, device: Device, version: int, reason: str = "") -> None:
    """The device reports that installing `version` failed: its pending update is marked failed.
    Its next handshake offers the update again."""
    version = clean_version(version)
    update = (
        FirmwareUpdate.objects.select_for_update()
        .filter(device=device, status=FirmwareUpdate.Status.PENDING, to_version=version)
        .first()
    )
    if update is None:
        raise ValidationError({"version": [f"This device has no pending update to v{version}."]})
    reason = (reason or "").strip()[:255] or "Reported failed by the device."
    _finish(device, update.pk, FirmwareUpdate.Status.FAILED, reason, action="firmware.update_failed",
            from_version=update.from_version, to_version=version, now=timezone.now())
    if update.rollout_id is not None and not FirmwareUpdate.objects.filter(
        rollout_id=update.rollout_id, device=device, status=FirmwareUpdate.Status.FAILED
    ).exclude(pk=update.pk).exists():
        # The device's first failure in the rollout counts against its stage's gate.
        rollouts.failed(rollout_id=update.rollout_id, stage=update.stage)
