"""The device handshake's two statements, compiled once per process (see console.prepared).

Every device connection is a handshake, and building and compiling the targeting annotation was
most of its cost (docs/PERFORMANCE.md, section 9). The target still comes from the one rule,
`Device.objects.with_target()`, compiled once with a sentinel where the device's id goes; the
firmware to offer is joined to it, so an offer needs no third statement.
"""

from dataclasses import dataclass
from functools import cache

from django.db import connection
from django.db.models import OuterRef

from console.prepared import Arg, Statement
from devices.models import Device
from firmware.models import Firmware, FirmwareUpdate

DEVICE_SENTINEL = -4_000_000_017  # stands for the device's id while compiling; ids are positive

# A version flashed to the device is done with once the device reports running it.
RECORD = Statement(
    "fleet_handshake_record",
    "UPDATE devices_device SET firmware_version = %s, last_handshake_at = %s, online = %s,"
    " flash_version = CASE WHEN flash_version = %s THEN NULL ELSE flash_version END WHERE id = %s",
    (Arg("version"), Arg("now"), True, Arg("version"), Arg("device")),
)


@cache
def _state_statement() -> Statement:
    """The device's target and pending update (as `device_handshake` has always read them), and
    the target's firmware, for one device."""
    pending = FirmwareUpdate.objects.filter(device=OuterRef("pk"), status=FirmwareUpdate.Status.PENDING)
    row = (
        Device.objects.filter(pk=DEVICE_SENTINEL)
        .order_by()
        .with_target()
        .annotate(pending_id=pending.values("id")[:1], pending_to=pending.values("to_version")[:1])
        .values("product_id", "target_version", "pending_id", "pending_to")
    )
    compiled = Statement.from_queryset("fleet_handshake_state", row, device=DEVICE_SENTINEL)
    sql = f"""SELECT t.target_version, t.pending_id, t.pending_to, f.id, f.size, f.sha256
        FROM ({compiled.sql}) AS t
        LEFT JOIN firmware_firmware AS f ON f.product_id = t.product_id AND f.version = t.target_version"""
    return Statement(compiled.name, sql, compiled.params)


@dataclass(frozen=True)
class State:
    """A device's target once its handshake is recorded, with its pending update if any."""

    target: int | None
    pending_id: int | None
    pending_to: int | None
    firmware: Firmware | None  # of the target version, with only what an offer needs loaded


def record(*, device: Device, firmware_version: int | None, now) -> State:
    """Record the handshake on the device row, then read its target: two statements.

    The UPDATE takes the row lock first, so the read sees what a concurrent handshake of the same
    device committed while this one waited (its pending update, say). Call inside a transaction.
    """
    with connection.cursor() as cursor:
        RECORD.execute(
            cursor, version=firmware_version, now=connection.ops.adapt_datetimefield_value(now), device=device.pk
        )
        _state_statement().execute(cursor, device=device.pk)
        row = cursor.fetchone()
    if row is None:
        raise Device.DoesNotExist("The device no longer exists.")
    target, pending_id, pending_to, firmware_id, size, sha256 = row
    firmware = None
    if firmware_id is not None:
        loaded = {"id": firmware_id, "product_id": device.product_id, "version": target, "size": size, "sha256": sha256}
        names = [field.attname for field in Firmware._meta.concrete_fields if field.attname in loaded]
        firmware = Firmware.from_db(connection.alias, names, [loaded[name] for name in names])
    return State(target, pending_id, pending_to, firmware)
