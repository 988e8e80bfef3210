"""Device changes that are not about groups or firmware (those live in groups/ and firmware/).

Console views, the API and the admin all call these.
"""

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from console import statistics
from console.models import AuditEvent
from devices import keys
from devices.models import Device, QuarantinedDevice, normalize_device_id
from firmware.models import Firmware

NAME_MAX = 64
NOTES_MAX = 1000


def _clean_text(field: str, value, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationError({field: ["Use text."]})
    value = value.strip() if field == "name" else value
    if len(value) > limit:
        raise ValidationError({field: [f"Use at most {limit} characters (this has {len(value)})."]})
    return value


@transaction.atomic
def device_edit(*, device: Device, name: str | None = None, notes: str | None = None, actor) -> Device:
    """Rename the device and/or replace its notes; None leaves a field as it is."""
    changes = {}
    if name is not None:
        changes["name"] = _clean_text("name", name, NAME_MAX)
    if notes is not None:
        changes["notes"] = _clean_text("notes", notes, NOTES_MAX)
    changes = {field: value for field, value in changes.items() if getattr(device, field) != value}
    if not changes:
        return device
    before = {field: getattr(device, field) for field in changes}
    for field, value in changes.items():
        setattr(device, field, value)
    device.updated_at = timezone.now()
    device.save(update_fields=[*changes, "updated_at"])
    AuditEvent.record(
        product=device.product,
        actor=actor,
        action="device.edit",
        obj=device,
        device_ids=[device.device_id],
        before=before,
        after=changes,
    )
    return device


def _identified_devices(*, product, identifiers: list[str]) -> dict[str, str | None]:
    """Serial numbers, IMEIs and ICCIDs -> the device ID they name (None when none or several
    devices answer to it), among all devices and the product's quarantine. Two queries."""
    if not identifiers:
        return {}
    named: dict[str, set[str]] = {identifier: set() for identifier in identifiers}
    fields = ("serial_number", "imei", "iccid")
    match = Q(serial_number__in=identifiers) | Q(imei__in=identifiers) | Q(iccid__in=identifiers)
    for rows in (
        Device.objects.filter(match).values_list("device_id", *fields),
        QuarantinedDevice.objects.filter(match, product=product).values_list("device_id", *fields),
    ):
        for device_id, *values in rows:
            for value in values:
                if value in named:
                    named[value].add(device_id)
    return {identifier: next(iter(ids)) if len(ids) == 1 else None for identifier, ids in named.items()}


@transaction.atomic
def device_key_issue(*, device: Device, actor) -> str:
    """Give the device a new key: its first, or in place of the old one, which stops working at
    once. Returns the key, which is shown this once and stored only as its hash."""
    current = Device.objects.select_for_update().only("key_hash").filter(pk=device.pk).first()
    if current is None:
        raise ValidationError({"device": ["This device has been removed from the product."]})
    raw = keys.new_key()
    device.key_hash, device.key_rotated_at = keys.key_hash(raw), timezone.now()
    device.save(update_fields=["key_hash", "key_rotated_at"])
    AuditEvent.record(
        product=device.product, actor=actor, action="device.key_rotate" if current.key_hash else "device.key_issue",
        obj=device, device_ids=[device.device_id],
    )
    return raw


@transaction.atomic
def devices_import(*, product, ids, actor, issue_keys: bool = False) -> dict:
    """Add devices to the product by device ID, serial number, IMEI or ICCID, in a fixed number of
    queries whatever their number. A quarantined device named here is approved.

    Returns API.md's answer: `updated` (how many were added), `updatedDeviceIds`,
    `existingDeviceIds` (already in this product), `invalidDeviceIds` (neither 24 hex characters
    nor the serial number, IMEI or ICCID of exactly one known device) and `nonmemberDeviceIds`
    (they belong to another product; named as they were sent, so a serial number never reveals
    another product's device ID); with `issue_keys`, also `device_keys` (device ID -> its new
    key) for the devices it added, shown this once.
    """
    invalid, wanted, sent_as = [], [], {}
    identifiers = [raw.strip() for raw in ids if isinstance(raw, str) and raw.strip() and not normalize_device_id(raw)]
    by_identifier = _identified_devices(product=product, identifiers=list(dict.fromkeys(identifiers)))
    for raw in ids:
        if not isinstance(raw, str):
            invalid.append(str(raw))
            continue
        device_id = normalize_device_id(raw) or by_identifier.get(raw.strip())
        if device_id is None:
            invalid.append(raw)
            continue
        wanted.append(device_id)
        sent_as.setdefault(device_id, raw.strip() if not normalize_device_id(raw) else device_id)
    wanted = list(dict.fromkeys(wanted))
    owners = dict(Device.objects.filter(device_id__in=wanted).values_list("device_id", "product_id"))
    existing = [device_id for device_id in wanted if owners.get(device_id) == product.id]
    nonmember = [sent_as[device_id] for device_id in wanted if device_id in owners and owners[device_id] != product.id]
    new = [device_id for device_id in wanted if device_id not in owners]
    approved = _approve(product=product, device_ids=new, actor=actor) if new else []
    new = [device_id for device_id in new if device_id not in set(approved)]
    issued = {device_id: keys.new_key() for device_id in [*new, *approved]} if issue_keys else {}
    hashes = {device_id: keys.key_hash(raw) for device_id, raw in issued.items()}
    now = timezone.now() if issue_keys else None
    if new:
        Device.objects.bulk_create(
            [
                Device(product=product, device_id=device_id, key_hash=hashes.get(device_id, ""), key_rotated_at=now)
                for device_id in new
            ],
            ignore_conflicts=True,
        )
        # A concurrent import may have taken some of them; ask which are ours now (with the key
        # we made, when keys were asked for).
        stored = dict(Device.objects.filter(device_id__in=new, product=product).values_list("device_id", "key_hash"))
        ours = {device_id for device_id, key in stored.items() if not issue_keys or key == hashes[device_id]}
        existing += [device_id for device_id in new if device_id in stored and device_id not in ours]
        nonmember += [sent_as[device_id] for device_id in new if device_id not in stored]
        new = [device_id for device_id in new if device_id in ours]
    if approved and issue_keys:
        keyed = list(Device.objects.filter(product=product, device_id__in=approved).only("pk", "device_id"))
        for device in keyed:
            device.key_hash, device.key_rotated_at = hashes[device.device_id], now
        Device.objects.bulk_update(keyed, ["key_hash", "key_rotated_at"])
    if new:
        AuditEvent.record(product=product, actor=actor, action="device.import", device_ids=new, count=len(new))
        statistics.refresh_after(product, devices=len(new))
    added = [device_id for device_id in wanted if device_id in set(new) | set(approved)]
    if added and issue_keys:
        AuditEvent.record(product=product, actor=actor, action="device.key_issue", device_ids=added, count=len(added))
    answer = {
        "updated": len(added),
        "updatedDeviceIds": added,
        "existingDeviceIds": existing,
        "invalidDeviceIds": list(dict.fromkeys(invalid)),
        "nonmemberDeviceIds": nonmember,
    }
    if issue_keys:
        answer["device_keys"] = {device_id: issued[device_id] for device_id in added}
    return answer


@transaction.atomic
def device_remove(*, device: Device, actor, deny: bool = False) -> None:
    """Remove the device from its product: its group memberships and update history go with it.
    With `deny`, the product also refuses it from now on: it is kept as a denied device, so its
    next contact does not put it in quarantine again (importing it approves it again)."""
    AuditEvent.record(
        product=device.product,
        actor=actor,
        action="device.deny" if deny else "device.remove",
        obj=device,
        device_ids=[device.device_id],
        # The event names the device by its key, which dies with it: keep what identifies it.
        device_id=device.device_id,
        name=device.name,
        serial_number=device.serial_number,
    )
    if deny:
        QuarantinedDevice.objects.update_or_create(
            product=device.product,
            device_id=device.device_id,
            defaults={"denied_at": timezone.now(), "serial_number": device.serial_number, "imei": device.imei,
                      "iccid": device.iccid, "platform_id": device.platform_id},
        )
    device.delete()


# ---------------------------------------------------------------------------------------------
# Quarantine: devices that contact the product without being imported wait for a decision.


@transaction.atomic
def device_contact(*, product, device_id: str, serial_number: str = "", imei: str = "", iccid: str = "",
                   platform_id: int | None = None) -> str:
    """A device got in touch with the product. One of the product's devices is let in
    ("member"); any other is quarantined until someone approves or denies it ("quarantined"),
    and a denied one stays out ("denied")."""
    device_id = normalize_device_id(device_id)
    if device_id is None:
        raise ValidationError({"device_id": ["A device ID is 24 hexadecimal characters."]})
    if Device.objects.filter(product=product, device_id=device_id).exists():
        return "member"
    details = {"serial_number": serial_number, "imei": imei, "iccid": iccid}
    details = {field: value for field, value in details.items() if value}
    if platform_id is not None:
        details["platform_id"] = platform_id
    entry, created = QuarantinedDevice.objects.get_or_create(product=product, device_id=device_id, defaults=details)
    if not created:
        for field, value in details.items():
            setattr(entry, field, value)
        entry.last_contact_at = timezone.now()
        entry.save(update_fields=[*details, "last_contact_at"])
    return "denied" if entry.denied_at else "quarantined"


@transaction.atomic
def quarantine_approve(*, product, device_ids, actor) -> list[str]:
    """Approve quarantined (or denied) devices: each becomes a device of the product, keeping
    what it reported about itself. Returns the IDs approved; a fixed number of queries."""
    return _approve(product=product, device_ids=device_ids, actor=actor)


def _approve(*, product, device_ids, actor) -> list[str]:
    entries = list(
        QuarantinedDevice.objects.select_for_update().filter(product=product, device_id__in=list(device_ids))
    )
    if not entries:
        return []
    Device.objects.bulk_create(
        [
            Device(product=product, device_id=entry.device_id, serial_number=entry.serial_number,
                   imei=entry.imei, iccid=entry.iccid, platform_id=entry.platform_id)
            for entry in entries
        ],
        ignore_conflicts=True,
    )
    # A device that joined another product meanwhile stays in quarantine here.
    approved = sorted(
        Device.objects.filter(product=product, device_id__in=[entry.device_id for entry in entries])
        .values_list("device_id", flat=True)
    )
    QuarantinedDevice.objects.filter(product=product, device_id__in=approved).delete()
    if approved:
        AuditEvent.record(product=product, actor=actor, action="device.approve", device_ids=approved, count=len(approved))
    return approved


@transaction.atomic
def quarantine_deny(*, product, device_ids, actor) -> list[str]:
    """Deny quarantined devices: they leave the quarantine list and their contacts are refused.
    Returns the IDs denied."""
    denied = sorted(
        QuarantinedDevice.objects.waiting()
        .filter(product=product, device_id__in=list(device_ids))
        .values_list("device_id", flat=True)
    )
    if denied:
        QuarantinedDevice.objects.filter(product=product, device_id__in=denied).update(denied_at=timezone.now())
        # Not product devices, so the IDs go in the details rather than the device links.
        AuditEvent.record(product=product, actor=actor, action="device.deny", device_ids=[], denied=denied,
                          count=len(denied))
    return denied


@transaction.atomic
def quarantine_dismiss(*, product, device_ids, actor) -> list[str]:
    """Take devices off the quarantine list without denying them: a device that gets in touch
    again is quarantined again. Returns the IDs dismissed."""
    entries = QuarantinedDevice.objects.filter(product=product, device_id__in=list(device_ids))
    dismissed = sorted(entries.values_list("device_id", flat=True))
    if dismissed:
        entries.delete()
        AuditEvent.record(product=product, actor=actor, action="device.dismiss", device_ids=[], dismissed=dismissed,
                          count=len(dismissed))
    return dismissed


# ---------------------------------------------------------------------------------------------
# Flashing a development device by hand (Particle's cloud flash)


def _sha256(binary) -> str:
    digest = hashlib.sha256()
    size = 0
    for chunk in binary.chunks():
        size += len(chunk)
        if size > settings.FIRMWARE_MAX_BYTES:
            raise ValidationError({"file": [f"Flash a binary of at most {settings.FIRMWARE_MAX_BYTES} bytes."]})
        digest.update(chunk)
    return digest.hexdigest()


def flash_firmware_for(*, device: Device, binary) -> Firmware:
    """The product firmware a binary is (matched by content), or ValidationError."""
    sha256 = _sha256(binary)
    firmware = Firmware.objects.filter(product_id=device.product_id, sha256=sha256).order_by("-version").first()
    if firmware is None:
        raise ValidationError({"file": [
            "This binary is not a firmware version of this product. Upload it as product firmware first, then flash it."
        ]})
    return firmware


@transaction.atomic
def device_flash(*, device: Device, firmware: Firmware, actor) -> Device:
    """Flash a version to a development device: its next handshake is offered that version.
    Other devices get firmware by release or lock, so they are refused."""
    current = Device.objects.select_for_update().get(pk=device.pk)
    if not current.development:
        raise ValidationError({"file": [
            "Only a development device can be flashed by hand: mark it as a development device first"
            " (development: true). Other devices get their firmware by release or by lock."
        ]})
    device.flash_version = firmware.version
    device.updated_at = timezone.now()
    device.save(update_fields=["flash_version", "updated_at"])
    AuditEvent.record(
        product=device.product, actor=actor, action="device.flash", obj=device, device_ids=[device.device_id],
        version=firmware.version,
    )
    return device
