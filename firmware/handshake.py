"""The device handshake's statements, compiled once per process (see console.prepared).

Every device connection is a handshake, so it is written for speed, but the target still comes
from the one rule, `Device.objects.with_target()`, compiled once with a sentinel where the device
goes, and the firmware to offer is joined to it. There are two ways through:

* `fast()`, the common handshake, in ONE statement that is its own transaction (PostgreSQL): it
  checks the device key and the failure throttle, reads the target, the pending update and the
  offer, and, when nothing needs settling or creating, records the report on the device row and
  the proof on the firmware. When something does, it writes nothing and says so.
* `record()`, the general path, inside the service's transaction: the UPDATE of the device row
  first (it takes the row lock), then the read of its state, which therefore sees what a
  concurrent handshake of the same device committed while this one waited.

`fast()` decides "nothing needs settling or creating" in SQL (NEEDS_MORE below); the general path
makes the same decisions in `device_handshake`, and tests/firmware/test_gateway_paths.py holds the
two to the same answers.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.db import connection
from django.db.models import OuterRef

from console.prepared import Arg, Statement
from devices.models import Device
from firmware.models import Firmware, FirmwareUpdate

DEVICE_SENTINEL = -4_000_000_017  # stands for the device's id while compiling; ids are positive
DEVICE_ID_SENTINEL = "device-id-sentinel"  # and for its device ID; real ones are 24 hex digits
# The firmware's latest report is refreshed at most this often (see Firmware.last_reported_at).
PROOF_REFRESH = timedelta(minutes=1)

# A version flashed to the device is done with once the device reports running it (the one
# statement below does the same).
RECORD = Statement(
    "fleet_handshake_record",
    "UPDATE devices_device SET firmware_version = %s, last_handshake_at = %s, online = %s,"
    " flash_version = CASE WHEN flash_version = %s THEN NULL ELSE flash_version END WHERE id = %s",
    (Arg("version"), Arg("now"), True, Arg("version"), Arg("device")),
)

# Proof that the reported version ran on a device of the product: first report kept, latest
# refreshed. A version the product does not have matches no row and proves nothing.
PROOF = """
    UPDATE firmware_firmware SET
        first_reported_at = COALESCE(first_reported_at, {now}),
        first_reported_by = CASE WHEN first_reported_at IS NULL THEN {device_id} ELSE first_reported_by END,
        last_reported_at = {now}, last_reported_by = {device_id}
    WHERE product_id = {product} AND version = CAST({version} AS integer)
      AND (last_reported_at IS NULL OR last_reported_at < {proof_stale})
"""

# Whether `device_handshake` would settle a pending update or create one (over a `state` row s).
NEEDS_MORE = """(
    (s.pending_id IS NOT NULL
     AND (s.pending_to IS NOT DISTINCT FROM CAST({version} AS integer) OR s.pending_to IS DISTINCT FROM s.target_version))
    OR (s.pending_id IS NULL AND s.target_version IS NOT NULL AND s.firmware_id IS NOT NULL
        AND s.target_version IS DISTINCT FROM CAST({version} AS integer))
)"""

@cache
def _target(by: str) -> Statement:
    """The device's target and pending update (the rule of `with_target()`), found by `by`
    ("pk" or "device_id"), with the firmware of the target joined: the columns of `State`."""
    sentinel = DEVICE_SENTINEL if by == "pk" else DEVICE_ID_SENTINEL
    pending = FirmwareUpdate.objects.filter(device=OuterRef("pk"), status=FirmwareUpdate.Status.PENDING)
    row = (
        Device.objects.filter(**{by: sentinel})
        .order_by()
        .with_target()
        .annotate(pending_id=pending.values("id")[:1], pending_to=pending.values("to_version")[:1])
        .values("product_id", "target_version", "target_rollout_open", "pending_id", "pending_to")
    )
    compiled = Statement.from_queryset(f"fleet_handshake_target_by_{by}", row, **{by: sentinel})
    sql = f"""SELECT t.target_version, t.pending_id, t.pending_to, f.id AS firmware_id, f.size, f.sha256,
               t.target_rollout_open AS rollout_open
        FROM ({compiled.sql}) AS t
        LEFT JOIN firmware_firmware AS f ON f.product_id = t.product_id AND f.version = t.target_version"""
    return Statement(compiled.name, sql, compiled.params)


@cache
def _state_statement() -> Statement:
    return _target("pk")


@cache
def _proof_statement() -> Statement:
    return Statement.from_template("fleet_handshake_proof", PROOF)


@cache
def _fast_statement() -> Statement:
    return Statement.from_template("fleet_gateway_handshake", f"""
    WITH creds AS (
        SELECT d.id, d.product_id, d.key_hash = {{key_hash}} AS key_ok
        FROM devices_device AS d WHERE d.device_id = {{device_id}}
    ),
    blocked AS (
        SELECT a.window_started_at FROM firmware_deviceauthfailure AS a
        WHERE a.device_id = {{device_id}} AND a.failures >= {{failure_limit}} AND a.window_started_at > {{window_start}}
    ),
    state AS ({{embedded}}),
    recorded AS (
        UPDATE devices_device AS d SET firmware_version = {{version}}, last_handshake_at = {{now}}, online = true,
            flash_version = CASE WHEN d.flash_version = {{version}} THEN NULL ELSE d.flash_version END
        FROM creds, state AS s
        WHERE d.id = creds.id AND d.key_hash = {{key_hash}} AND NOT EXISTS (SELECT 1 FROM blocked)
          AND NOT {NEEDS_MORE}
        RETURNING d.product_id
    ),
    proof AS ({PROOF.replace("{product}", "(SELECT product_id FROM recorded)")})
    SELECT creds.id, creds.product_id, creds.key_ok, (SELECT window_started_at FROM blocked),
           EXISTS (SELECT 1 FROM recorded), s.target_version, s.pending_id, s.pending_to, s.firmware_id, s.size, s.sha256,
           s.rollout_open
    FROM (SELECT 1) AS one LEFT JOIN creds ON true LEFT JOIN state AS s ON true
    """, _target("device_id"))


@dataclass(frozen=True)
class State:
    """A device's target once its handshake is recorded, with its pending update if any."""

    target: int | None
    pending_id: int | None
    pending_to: int | None
    firmware: Firmware | None  # of the target version, with only what an offer needs loaded
    rollout_open: bool = False  # the device's stage is open in its product's live rollout

    def offer(self, firmware_version: int | None) -> Firmware | None:
        """The firmware a device reporting `firmware_version` is offered: its target, unless it
        runs it already (or the product has no such version)."""
        if self.target is None or self.target == firmware_version:
            return None
        return self.firmware


def _state(product_id: int, row) -> State:
    target, pending_id, pending_to, firmware_id, size, sha256, rollout_open = row
    firmware = None
    if firmware_id is not None:
        loaded = {"id": firmware_id, "product_id": product_id, "version": target, "size": size, "sha256": sha256}
        names = [field.attname for field in Firmware._meta.concrete_fields if field.attname in loaded]
        firmware = Firmware.from_db(connection.alias, names, [loaded[name] for name in names])
    return State(target, pending_id, pending_to, firmware, bool(rollout_open))


def _proof_args(*, device_id: str, version: int | None, now: datetime) -> dict:
    adapt = connection.ops.adapt_datetimefield_value
    return {"now": adapt(now), "device_id": device_id, "version": version, "proof_stale": adapt(now - PROOF_REFRESH)}


def record(*, device: Device, firmware_version: int | None, now) -> State:
    """Record the handshake on the device row and the proof on the firmware, then read the
    device's target: three statements. Call inside a transaction."""
    with connection.cursor() as cursor:
        RECORD.execute(
            cursor, version=firmware_version, now=connection.ops.adapt_datetimefield_value(now), device=device.pk
        )
        if firmware_version is not None:
            _proof_statement().execute(
                cursor, product=device.product_id,
                **_proof_args(device_id=device.device_id, version=firmware_version, now=now),
            )
        _state_statement().execute(cursor, pk=device.pk)
        row = cursor.fetchone()
    if row is None:
        raise Device.DoesNotExist("The device no longer exists.")
    return _state(device.product_id, row)


@dataclass(frozen=True)
class Fast:
    """What the one-statement handshake found and did."""

    device_pk: int | None  # None: no such device
    product_id: int | None
    key_ok: bool
    throttled_since: datetime | None  # the device ID is throttled (nothing was checked or written)
    recorded: bool  # the report is stored and `state` is the answer; else take the general path
    state: State | None


def fast(*, device_id: str, key_hash: str, firmware_version: int | None, now: datetime,
         failure_limit: int, window_start: datetime) -> Fast:
    """The common handshake in one round trip, committed by itself (call outside a transaction,
    on PostgreSQL). See the module docstring."""
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        _fast_statement().execute(
            cursor, key_hash=key_hash, failure_limit=failure_limit, window_start=adapt(window_start),
            **_proof_args(device_id=device_id, version=firmware_version, now=now),
        )
        pk, product_id, key_ok, throttled_since, recorded, *state = cursor.fetchone()
    return Fast(pk, product_id, bool(key_ok), throttled_since, recorded,
                _state(product_id, state) if recorded else None)
