"""Firmware uploads, releases, device locks and handshakes.

The console views, the API and the admin all call these, so each rule lives here once. Every
write is one transaction and records an AuditEvent. Targets always come from the one rule in
`firmware.targeting` (through `Device.objects.with_target()`), never from a second copy.

Two decisions worth knowing:

* A version may be released (to a group or as product default) only once some device of the
  product has *reported running it*: a device's recorded `firmware_version` is that version now,
  or its firmware-update history shows it ran it (an update from it, or a successful update to
  it). Unreleasing never needs this.
* Firmware updates are created and settled at handshake time. A handshake that reports the
  pending version settles it as succeeded; one whose target has moved elsewhere (a new release,
  a lock, a development flag) settles it as failed with the reason "superseded"; otherwise a
  pending update stays pending and is offered again. A device's update report of failure marks
  it failed, and its next handshake creates a new pending update (a retry).
* An *intelligent* release is a flag on the firmware: the device cloud (and simulate_fleet)
  pushes it to online devices at once instead of waiting for their next handshake. Releasing
  creates no update rows; rollout progress counts devices by their current target (targeted),
  of those the ones running it (updated), whose last attempt failed (failed), and the rest
  (pending).
"""

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from console.models import AuditEvent, Product
from devices.models import Device
from firmware import handshake, targeting
from firmware.models import Firmware, FirmwareUpdate
from groups.models import Group

TITLE_MAX = 64
VERSION_MIN, VERSION_MAX = 1, 65535
UNPROVEN_MESSAGE = (
    "No device of this product has reported running v{version} yet. Try it on a development "
    "device first: flash it there, let the device report it, then release it."
)


class FirmwareTooLarge(ValidationError):
    """The binary exceeds settings.FIRMWARE_MAX_BYTES (the API answers 413)."""


# ---------------------------------------------------------------------------------------------
# Uploads


def _clean_version(version) -> int:
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise ValidationError({"version": ["Enter a whole number from 1 to 65535."]}) from None
    if not VERSION_MIN <= version <= VERSION_MAX:
        raise ValidationError({"version": [f"Use a version from 1 to 65535 (got {version})."]})
    return version


def _clean_title(title) -> str:
    title = title.strip() if isinstance(title, str) else ""
    if not title:
        raise ValidationError({"title": ["Give the firmware a title, for example “Battery fix”."]})
    if len(title) > TITLE_MAX:
        raise ValidationError({"title": [f"Use at most {TITLE_MAX} characters (this has {len(title)})."]})
    return title


def _max_bytes_text() -> str:
    limit = settings.FIRMWARE_MAX_BYTES
    return f"{limit / 1024 / 1024:g} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


def _digest(binary) -> tuple[int, str]:
    """Size and sha256 of an uploaded file, read in chunks."""
    sha = hashlib.sha256()
    size = 0
    if hasattr(binary, "seek"):
        binary.seek(0)
    for chunk in binary.chunks() if hasattr(binary, "chunks") else iter(lambda: binary.read(65536), b""):
        size += len(chunk)
        sha.update(chunk)
        if size > settings.FIRMWARE_MAX_BYTES:
            break
    if hasattr(binary, "seek"):
        binary.seek(0)
    return size, sha.hexdigest()


def _duplicate_version() -> ValidationError:
    return ValidationError({"version": ["Firmware version already exists"]})


@transaction.atomic
def firmware_upload(*, product, version: int, title: str, description: str = "", binary, actor) -> Firmware:
    version = _clean_version(version)
    title = _clean_title(title)
    description = (description or "").strip()
    declared = getattr(binary, "size", None) if binary is not None else None
    if binary is None or declared == 0:
        raise ValidationError({"binary": ["Choose a firmware binary (.bin); the file must not be empty."]})
    if declared is not None and declared > settings.FIRMWARE_MAX_BYTES:
        raise FirmwareTooLarge({"binary": [f"The binary is larger than the {_max_bytes_text()} limit."]})
    size, sha256 = _digest(binary)
    if size == 0:
        raise ValidationError({"binary": ["Choose a firmware binary (.bin); the file must not be empty."]})
    if size > settings.FIRMWARE_MAX_BYTES:
        raise FirmwareTooLarge({"binary": [f"The binary is larger than the {_max_bytes_text()} limit."]})
    if Firmware.objects.filter(product=product, version=version).exists():
        raise _duplicate_version()

    firmware = Firmware(
        product=product, version=version, title=title, description=description,
        size=size, sha256=sha256, uploaded_by=actor if getattr(actor, "pk", None) else None,
    )
    firmware.binary.save(getattr(binary, "name", None) or "firmware.bin", binary, save=False)
    stored = firmware.binary.name
    try:
        with transaction.atomic():
            firmware.save()
        AuditEvent.record(
            product=product, actor=actor, action="firmware.upload", obj=firmware,
            version=version, size=size, sha256=sha256,
        )
    except IntegrityError:
        # Lost a race with a concurrent upload of the same version.
        firmware.binary.storage.delete(stored)
        raise _duplicate_version() from None
    except BaseException:
        firmware.binary.storage.delete(stored)
        raise
    return firmware


@transaction.atomic
def firmware_edit(*, firmware: Firmware, title: str | None = None, description: str | None = None, actor) -> Firmware:
    changes = {}
    if title is not None and title.strip() != firmware.title:
        changes["title"] = _clean_title(title)
    if description is not None and description.strip() != firmware.description:
        changes["description"] = description.strip()
    if not changes:
        return firmware
    before = {field: getattr(firmware, field) for field in changes}
    for field, value in changes.items():
        setattr(firmware, field, value)
    firmware.save(update_fields=list(changes))
    AuditEvent.record(
        product=firmware.product, actor=actor, action="firmware.edit", obj=firmware, before=before, after=changes
    )
    return firmware


@transaction.atomic
def firmware_delete(*, firmware: Firmware, actor) -> None:
    current = Firmware.objects.select_for_update().filter(pk=firmware.pk).first()
    if current is None:
        raise ValidationError({"version": [f"v{firmware.version} no longer exists."]})
    if current.ever_released:
        raise ValidationError(
            {"version": [f"v{current.version} has been released, so it stays for the record and cannot be deleted."]}
        )
    locked = Device.objects.filter(product_id=current.product_id, desired_firmware_version=current.version).count()
    if locked:
        raise ValidationError(
            {"version": [f"{locked} device{'s are' if locked != 1 else ' is'} locked to v{current.version}; unlock them first."]}
        )
    storage, name = current.binary.storage, current.binary.name
    AuditEvent.record(
        product=current.product, actor=actor, action="firmware.delete", obj=current,
        version=current.version, sha256=current.sha256,
    )
    current.delete()
    if name:
        transaction.on_commit(lambda: storage.delete(name))


# ---------------------------------------------------------------------------------------------
# Releases


def _release_targets(firmware: Firmware, groups, product_default):
    """(groups before, groups after, default before, default after) for a release call."""
    before = list(Group.objects.filter(product_id=firmware.product_id, released_firmware=firmware).order_by("name"))
    if groups is None:
        after = before
    else:
        after = sorted({group.id: group for group in groups}.values(), key=lambda group: group.name)
        foreign = [group.name for group in after if group.product_id != firmware.product_id]
        if foreign:
            raise ValidationError({"groups": [f"Unknown group: {', '.join(foreign)}."]})
    default_before = firmware.product.default_firmware_id == firmware.id
    default_after = default_before if product_default is None else bool(product_default)
    return before, after, default_before, default_after


def _scenario(firmware, before, after, default_before, default_after) -> targeting.Scenario:
    releases = {group.id: firmware.version for group in after}
    releases.update({group.id: None for group in before if group.id not in releases})
    if default_after == default_before:
        default = targeting.UNCHANGED
    else:
        default = firmware.version if default_after else None
    return targeting.Scenario(releases=releases, default=default)


def release_groups_for(*, membership, firmware: Firmware, groups) -> list[Group]:
    """The complete group list a member's release means. A member restricted to groups names
    only theirs: the version stays released to the groups they cannot see."""
    groups = list(groups)
    restricted = membership.restricted_group_ids()
    if restricted is None:
        return groups
    kept = Group.objects.filter(product_id=firmware.product_id, released_firmware=firmware).exclude(id__in=restricted)
    return groups + list(kept)


def release_scenario(*, firmware: Firmware, groups=None, product_default: bool | None = None) -> targeting.Scenario:
    """The targeting scenario a `firmware_release` with the same arguments would produce."""
    return _scenario(firmware, *_release_targets(firmware, groups, product_default))


def _scenario_impact(firmware: Firmware, scenario: targeting.Scenario, devices) -> targeting.Impact:
    if devices is None:
        devices = Device.objects.filter(product_id=firmware.product_id)
    if scenario.default is targeting.UNCHANGED and not scenario.releases:
        return targeting.Impact()
    return targeting.impact(devices, scenario, product_id=firmware.product_id)


def release_impact(*, firmware: Firmware, groups=None, product_default: bool | None = None, devices=None) -> targeting.Impact:
    """Devices the release would target for an OTA update, in one SQL statement over the fleet.

    `devices` narrows the count (a restricted member passes the devices they may see).
    """
    return _scenario_impact(firmware, release_scenario(firmware=firmware, groups=groups, product_default=product_default), devices)


def ever_reported_running(firmware: Firmware) -> bool:
    """Whether any device of the product has reported running this version (now or before).

    One statement of three index-backed EXISTS, cheapest first; PostgreSQL stops at the first
    that holds, so a fleet of a million devices is never scanned.
    """
    product_id, version = firmware.product_id, firmware.version
    evidence = [
        Device.objects.filter(product_id=product_id, firmware_version=version),
        FirmwareUpdate.objects.filter(product_id=product_id, to_version=version, status=FirmwareUpdate.Status.SUCCEEDED),
        FirmwareUpdate.objects.filter(product_id=product_id, from_version=version),
    ]
    parts, params = [], []
    for queryset in evidence:
        sql, query_params = queryset.order_by().values("pk")[:1].query.sql_with_params()
        parts.append(f"EXISTS ({sql})")
        params.extend(query_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {' OR '.join(parts)}", params)
        return bool(cursor.fetchone()[0])


def release_check(*, firmware: Firmware, groups=None, product_default: bool | None = None) -> None:
    """Raise the ValidationError `firmware_release` would raise for these arguments, if any."""
    _refuse_unproven(firmware, *_release_targets(firmware, groups, product_default))


def _refuse_unproven(firmware, before, after, default_before, default_after) -> None:
    newly_released = {group.id for group in after} - {group.id for group in before} or (default_after and not default_before)
    if newly_released and not ever_reported_running(firmware):
        raise ValidationError({"version": [UNPROVEN_MESSAGE.format(version=firmware.version)]})


@transaction.atomic
def firmware_release(*, firmware: Firmware, groups=None, product_default: bool | None = None,
                     intelligent: bool | None = None, actor) -> Firmware:
    """Release (or unrelease) a version: `groups` is the complete list of groups it is released
    to afterwards (None leaves them), `product_default` True/False/None (unchanged)."""
    # One release at a time per product: the product row is the lock. NO KEY UPDATE, because
    # rows that merely point at the product (audit events, pending updates, written by batch
    # edits and handshakes meanwhile) must not wait for the release, nor deadlock with it.
    product = Product.objects.select_for_update(no_key=True).get(pk=firmware.product_id)
    firmware = Firmware.objects.select_for_update().filter(pk=firmware.pk).first()
    if firmware is None:
        raise ValidationError({"version": ["This firmware no longer exists."]})
    firmware.product = product
    if groups is not None:
        # Every group the release will write (those it keeps or gets, and those losing it) is
        # locked now, in one statement ordered by name as batch edits lock theirs: taking some
        # later, in the UPDATEs, could deadlock with a batch edit. It also keeps a concurrent
        # delete from taking a group away underneath the release.
        wanted = {group.id: group for group in groups}
        locked = Group.objects.select_for_update().filter(product=product).filter(
            Q(id__in=wanted) | Q(released_firmware=firmware)
        )
        found = [group for group in locked if group.id in wanted]
        missing = sorted(group.name for group_id, group in wanted.items() if group_id not in {g.id for g in found})
        if missing:
            raise ValidationError({"groups": [f"Unknown group: {', '.join(missing)}."]})
        groups = found
    before, after, default_before, default_after = targets = _release_targets(firmware, groups, product_default)
    _refuse_unproven(firmware, *targets)
    scenario = _scenario(firmware, *targets)
    impact = _scenario_impact(firmware, scenario, None)

    after_ids = [group.id for group in after]
    if groups is not None:
        Group.objects.filter(product=product, released_firmware=firmware).exclude(id__in=after_ids).update(
            released_firmware=None
        )
        Group.objects.filter(product=product, id__in=after_ids).update(released_firmware=firmware)
    if default_after != default_before:
        product.default_firmware = firmware if default_after else None
        product.save(update_fields=["default_firmware"])
    changed = []
    if intelligent is not None and bool(intelligent) != firmware.intelligent:
        firmware.intelligent = bool(intelligent)
        changed.append("intelligent")
    if (after or default_after) and not firmware.ever_released:
        firmware.ever_released = True
        changed.append("ever_released")
    if changed:
        firmware.save(update_fields=changed)

    AuditEvent.record(
        product=product, actor=actor, action="firmware.release", obj=firmware,
        version=firmware.version,
        groups_before=[group.name for group in before], groups_after=[group.name for group in after],
        product_default_before=default_before, product_default_after=default_after,
        intelligent=firmware.intelligent, impacted=impact.total, impact=impact.as_json(),
    )
    return firmware


# ---------------------------------------------------------------------------------------------
# Devices: lock, development flag, handshake


def _target_of(device: Device, scenario: targeting.Scenario = targeting.CURRENT) -> dict:
    row = (
        Device.objects.filter(pk=device.pk)
        .with_target(scenario)
        .values("target_version", "target_rule", "target_group")
        .get()
    )
    return {"version": row["target_version"], "rule": row["target_rule"], "group": row["target_group"]}


def device_target_preview(*, device: Device, locked=targeting.UNCHANGED, development=targeting.UNCHANGED) -> dict:
    """The device's target now and after a lock/unlock or (un)marking development, in one query:
    `{"before": {version, rule, group, reason}, "after": {...}, "impacted": bool}`."""
    scenario = targeting.Scenario(locked=locked, development=development)
    row = (
        Device.objects.filter(pk=device.pk)
        .with_target(prefix="old")
        .with_target(scenario, prefix="new")
        .values("firmware_version", "old_version", "old_rule", "old_group", "new_version", "new_rule", "new_group")
        .get()
    )
    before = {"version": row["old_version"], "rule": row["old_rule"], "group": row["old_group"]}
    after = {"version": row["new_version"], "rule": row["new_rule"], "group": row["new_group"]}
    for side in (before, after):
        side["reason"] = targeting.explain(side["rule"], side["group"])
    impacted = (
        after["version"] is not None
        and after["version"] != before["version"]
        and after["version"] != row["firmware_version"]
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


@transaction.atomic
def device_lock(*, device: Device, version: int | None, actor) -> Device:
    """Lock the device to a version of its product; None unlocks it."""
    version = _clean_lock_version(device, version)
    current = Device.objects.select_for_update().get(pk=device.pk)
    if current.desired_firmware_version == version:
        device.desired_firmware_version = version
        return device
    before = _target_of(current)
    previous = current.desired_firmware_version
    device.desired_firmware_version = version
    device.save(update_fields=["desired_firmware_version", "updated_at"])
    after = _target_of(device)
    AuditEvent.record(
        product=device.product, actor=actor, action="device.lock" if version is not None else "device.unlock",
        obj=device, device_ids=[device.device_id],
        locked_before=previous, locked_after=version, target_before=before, target_after=after,
    )
    return device


@transaction.atomic
def device_development_set(*, device: Device, development: bool, actor) -> Device:
    current = Device.objects.select_for_update().get(pk=device.pk)
    development = bool(development)
    if current.development == development:
        device.development = development
        return device
    before = _target_of(current)
    device.development = development
    device.save(update_fields=["development", "updated_at"])
    after = _target_of(device)
    AuditEvent.record(
        product=device.product, actor=actor,
        action="device.development_mark" if development else "device.development_unmark",
        obj=device, device_ids=[device.device_id], development=development,
        target_before=before, target_after=after,
    )
    return device


@transaction.atomic
def device_handshake(*, device: Device, firmware_version: int | None) -> Firmware | None:
    """A device starts a session reporting the version it runs. Returns the firmware it should
    install, or None when it is on target (or has no target)."""
    now = timezone.now()
    if firmware_version is not None:
        firmware_version = _clean_version(firmware_version)
    # Two precompiled statements: the UPDATE, which also takes the row lock (so concurrent
    # handshakes of one device queue up), then the target, pending update and offer.
    state = handshake.record(device=device, firmware_version=firmware_version, now=now)
    device.firmware_version, device.last_handshake_at, device.online = firmware_version, now, True
    target, pending_id, pending_to = state.target, state.pending_id, state.pending_to

    if pending_id is not None:
        if firmware_version == pending_to:
            _finish(device, pending_id, FirmwareUpdate.Status.SUCCEEDED, "", action="firmware.update_succeeded",
                    from_version=None, to_version=pending_to, now=now)
            pending_id = None
        elif pending_to != target:
            reason = f"Superseded: the target is now v{target}." if target else "Superseded: no longer targeted."
            _finish(device, pending_id, FirmwareUpdate.Status.FAILED, reason, action="firmware.update_superseded",
                    from_version=None, to_version=pending_to, now=now)
            pending_id = None

    if target is None or target == firmware_version or state.firmware is None:
        return None
    if pending_id is None:
        FirmwareUpdate.objects.create(
            product_id=device.product_id, device=device, from_version=firmware_version, to_version=target
        )
        AuditEvent.record(
            product=device.product, actor=None, action="firmware.update_targeted", obj=device,
            device_ids=[device.device_id], from_version=firmware_version, to_version=target,
        )
    return state.firmware


def _finish(device, update_id, status, reason, *, action, from_version, to_version, now) -> None:
    FirmwareUpdate.objects.filter(pk=update_id).update(status=status, reason=reason[:255], finished_at=now)
    AuditEvent.record(
        product=device.product, actor=None, action=action, obj=device, device_ids=[device.device_id],
        to_version=to_version, **({"reason": reason} if reason else {}),
    )


@transaction.atomic
def device_update_failed(*, device: Device, version: int, reason: str = "") -> None:
    """The device reports that installing `version` failed: its pending update is marked failed.
    Its next handshake offers the update again."""
    version = _clean_version(version)
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


# ---------------------------------------------------------------------------------------------
# Reads for the firmware list


def device_counts(*, devices) -> dict[int, int]:
    """Devices running each version, in one grouped query."""
    rows = devices.order_by().values("firmware_version").annotate(n=Count("id")).filter(firmware_version__isnull=False)
    return {row["firmware_version"]: row["n"] for row in rows}


@dataclass
class Rollout:
    """Devices whose current target is a version: already on it, last attempt failed, or waiting."""

    version: int
    targeted: int = 0
    updated: int = 0
    failed: int = 0

    @property
    def pending(self) -> int:
        return self.targeted - self.updated - self.failed

    def percent(self, part: int) -> float:
        return round(100 * part / self.targeted, 2) if self.targeted else 0.0

    @property
    def updated_percent(self) -> float:
        return self.percent(self.updated)

    @property
    def failed_percent(self) -> float:
        return self.percent(self.failed)

    @property
    def pending_percent(self) -> float:
        return self.percent(self.pending)


def rollout_progress(*, devices, product) -> dict[int, Rollout]:
    """Rollout per target version over `devices` (of `product`), in one query.

    targeted: devices whose target is the version; updated: of those, running it; failed: of
    the rest, those whose latest attempt at it failed (no attempt pending); pending: the rest.
    """
    sql, params = targeting.fleet_targets_sql(devices, product_id=product.pk)
    # Joins rather than EXISTS per row: pending is unique per device, failures are grouped.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT t.old_target,
                   COUNT(*),
                   SUM(CASE WHEN t.firmware_version = t.old_target THEN 1 ELSE 0 END),
                   SUM(CASE WHEN fu.device_id IS NOT NULL AND pu.device_id IS NULL
                             AND (t.firmware_version IS NULL OR t.firmware_version <> t.old_target)
                            THEN 1 ELSE 0 END)
            FROM ({sql}) AS t
            LEFT JOIN (
                SELECT device_id, to_version FROM firmware_firmwareupdate
                WHERE product_id = %s AND status = %s GROUP BY device_id, to_version
            ) AS fu ON fu.device_id = t.id AND fu.to_version = t.old_target
            LEFT JOIN (
                SELECT device_id FROM firmware_firmwareupdate WHERE product_id = %s AND status = %s
            ) AS pu ON pu.device_id = t.id
            WHERE t.old_target IS NOT NULL
            GROUP BY t.old_target
            """,
            [*params, product.pk, FirmwareUpdate.Status.FAILED, product.pk, FirmwareUpdate.Status.PENDING],
        )
        return {version: Rollout(version, targeted, updated or 0, failed or 0) for version, targeted, updated, failed in cursor.fetchall()}
