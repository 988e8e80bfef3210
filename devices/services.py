"""Device changes that are not about groups or firmware (those live in groups/ and firmware/).

Console views, the API and the admin all call these.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from console.models import AuditEvent
from devices.models import Device, normalize_device_id

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


@transaction.atomic
def devices_import(*, product, ids, actor) -> dict:
    """Add devices to the product by id, in a fixed number of queries whatever their number.

    Returns API.md's answer: `updated` (how many were added), `updatedDeviceIds`,
    `existingDeviceIds` (already in this product), `invalidDeviceIds` (not 24 hex characters)
    and `nonmemberDeviceIds` (they belong to another product).
    """
    invalid, wanted = [], []
    for raw in ids:
        device_id = normalize_device_id(raw) if isinstance(raw, str) else None
        if device_id is None:
            invalid.append(raw if isinstance(raw, str) else str(raw))
        else:
            wanted.append(device_id)
    wanted = list(dict.fromkeys(wanted))
    owners = dict(Device.objects.filter(device_id__in=wanted).values_list("device_id", "product_id"))
    existing = [device_id for device_id in wanted if owners.get(device_id) == product.id]
    nonmember = [device_id for device_id in wanted if device_id in owners and owners[device_id] != product.id]
    new = [device_id for device_id in wanted if device_id not in owners]
    if new:
        Device.objects.bulk_create(
            [Device(product=product, device_id=device_id) for device_id in new], ignore_conflicts=True
        )
        # A concurrent import may have taken some of them; ask which are ours now.
        ours = set(Device.objects.filter(device_id__in=new, product=product).values_list("device_id", flat=True))
        nonmember += [device_id for device_id in new if device_id not in ours]
        new = [device_id for device_id in new if device_id in ours]
    if new:
        AuditEvent.record(product=product, actor=actor, action="device.import", device_ids=new, count=len(new))
    return {
        "updated": len(new),
        "updatedDeviceIds": new,
        "existingDeviceIds": existing,
        "invalidDeviceIds": list(dict.fromkeys(invalid)),
        "nonmemberDeviceIds": nonmember,
    }


@transaction.atomic
def device_remove(*, device: Device, actor) -> None:
    """Remove the device from its product: its group memberships and update history go with it."""
    AuditEvent.record(
        product=device.product,
        actor=actor,
        action="device.remove",
        obj=device,
        device_ids=[device.device_id],
        # The event names the device by its key, which dies with it: keep what identifies it.
        device_id=device.device_id,
        name=device.name,
        serial_number=device.serial_number,
    )
    device.delete()
