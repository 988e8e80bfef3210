"""Generate the benchmark fleet in PostgreSQL with set-based SQL.

One product `bench` with N devices, G groups whose sizes follow Zipf's law (a few huge
groups, tens of ~10k, hundreds of ~1k, many of a few hundred at 1M devices; about three
memberships per device in all), 50 firmware versions, releases to 20 groups spread over the
size range plus a product default, and some locked and development devices.

The fleet is described by a row in `bench_fleet`; a later run with the same size reuses it.
"""

import hashlib
import json
import math
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import psycopg

# Bump when the shape of the generated data changes, so old fleets are regenerated.
FLEET_VERSION = 2
PRODUCT_SLUG = "bench"
USERNAME = "bench"
DEVICE_KEY_SALT = "bench-device-key:"  # a bench device's key is derived from its ID (bench_key)
SCRATCH_GROUP = "bench-scratch"
FIRMWARE_VERSIONS = 50
DEFAULT_VERSION = 40
RELEASED_GROUPS = 20
MEMBERSHIPS_PER_DEVICE = 3
SEED = 20261126


@dataclass
class Fleet:
    devices: int
    groups: int
    memberships: int
    seconds: float
    generated_at: str
    reused: bool
    # Group names by size rank (1 is the largest), with their sizes.
    group_names: list[str]
    group_sizes: list[int]
    # How a customer-built fleet was built (calls, their times, the statistics refreshes).
    details: dict = field(default_factory=dict)


def group_name(rank: int) -> str:
    return f"g{rank:04d}"


def group_sizes(devices: int, groups: int) -> list[int]:
    """Sizes by rank: Zipf with exponent 1, scaled to MEMBERSHIPS_PER_DEVICE per device."""
    harmonic = sum(1 / rank for rank in range(1, groups + 1))
    scale = MEMBERSHIPS_PER_DEVICE * devices / harmonic
    return [max(1, min(devices, round(scale / rank))) for rank in range(1, groups + 1)]


def released_ranks(groups: int) -> list[int]:
    """Ranks of the groups that get a release: geometrically spread from the largest to the smallest."""
    wanted = min(RELEASED_GROUPS, groups)
    ranks = []
    for index in range(wanted):
        rank = round(groups ** (index / max(1, wanted - 1)))
        while rank in ranks:
            rank += 1
        ranks.append(min(rank, groups))
    return sorted(set(ranks))


# What a device is, from its number n (1..N), in SQL shared by both fleets. IDs look random, as
# real ones do; names and serials are fixed-width so a text search's matches do not depend on N.
DEVICE_ID_SQL = "left(md5(n::text), 24)"
NAME_SQL = "'sensor-' || lpad(n::text, 7, '0')"
DEVICE_STATE = {
    "serial_number": "'P' || lpad((n::bigint * 7919 %% 1000000007)::text, 10, '0')",
    "online": "random() < 0.25",
    "last_handshake_at": "CASE WHEN random() < 0.03 THEN NULL ELSE now() - random() * interval '60 days' END",
    "firmware_version": """CASE WHEN random() < 0.02 THEN NULL
        WHEN random() < 0.8 THEN %(default)s + floor(random() * 11)::int
        ELSE 1 + floor(random() * %(default)s)::int END""",
    "desired_firmware_version": "CASE WHEN n %% 100 = 7 THEN %(locked)s END",
    "development": "n %% 200 = 3",
}
STATE_PARAMS = {"default": DEFAULT_VERSION, "locked": DEFAULT_VERSION - 5}


def device_id(n: int) -> str:
    """DEVICE_ID_SQL in Python."""
    return hashlib.md5(str(n).encode()).hexdigest()[:24]


# Database lifecycle ---------------------------------------------------------------------------


def _admin_conninfo(url: str) -> tuple[str, str]:
    """(conninfo of the server's maintenance database, name of the benchmark database)."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    return parsed._replace(path="/postgres").geturl(), name


def ensure_database(url: str, *, recreate: bool) -> None:
    conninfo, name = _admin_conninfo(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and recreate:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# Generation -------------------------------------------------------------------------------------


def _stored(cursor) -> dict | None:
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS bench_fleet (version int, devices int, groups int, memberships bigint,"
        " seconds double precision, generated_at timestamptz)"
    )
    cursor.execute("ALTER TABLE bench_fleet ADD COLUMN IF NOT EXISTS details jsonb")
    cursor.execute("SELECT version, devices, groups, memberships, seconds, generated_at, details FROM bench_fleet")
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip(["version", "devices", "groups", "memberships", "seconds", "generated_at", "details"], row))


def ensure(*, devices: int, groups: int, customer: bool = False, log=print) -> Fleet:
    """The fleet of this size, generated (or, with `customer`, built through the API) unless the
    database already holds it."""
    from django.db import connection

    from bench import customer as customer_fleet

    version = customer_fleet.VERSION if customer else FLEET_VERSION
    names = [group_name(rank) for rank in range(1, groups + 1)]
    sizes = group_sizes(devices, groups)
    with connection.cursor() as cursor:
        stored = _stored(cursor)
    if stored and (stored["version"], stored["devices"], stored["groups"]) == (version, devices, groups):
        log(f"Reusing the fleet built {stored['generated_at']:%Y-%m-%d %H:%M} UTC "
            f"({stored['devices']:,} devices, {stored['memberships']:,} memberships, took {stored['seconds']:.0f} s).")
        if customer:
            sizes = customer_fleet.sizes(names)
        return Fleet(devices, groups, stored["memberships"], stored["seconds"],
                     stored["generated_at"].isoformat(), True, names, sizes, stored["details"] or {})
    if stored:
        raise SystemExit(
            f"The benchmark database holds another fleet ({stored['devices']:,} devices, {stored['groups']:,} groups,"
            f" version {stored['version']}); run with --regenerate to replace it."
        )
    started = time.monotonic()
    details = {}
    if customer:
        log(f"Building {devices:,} devices and {groups:,} groups through the API, as a customer would...")
        memberships, details = customer_fleet.build(devices=devices, groups=groups, log=log)
        sizes = customer_fleet.sizes(names)
    else:
        log(f"Generating {devices:,} devices, {groups:,} groups, ~{sum(sizes):,} memberships...")
        memberships = _generate(devices=devices, groups=groups, sizes=sizes, log=log)
    seconds = time.monotonic() - started
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM bench_fleet")
        cursor.execute(
            "INSERT INTO bench_fleet VALUES (%s, %s, %s, %s, %s, now(), %s) RETURNING generated_at",
            [version, devices, groups, memberships, seconds, json.dumps(details)],
        )
        generated_at = cursor.fetchone()[0]
    log(f"Built in {seconds:.1f} s.")
    return Fleet(devices, groups, memberships, seconds, generated_at.isoformat(), False, names, sizes, details)


def _coprime_step(rng: random.Random, modulus: int) -> int:
    step = rng.randrange(modulus // 3, max(modulus // 3 + 1, modulus - 1)) if modulus > 3 else 1
    while math.gcd(step, modulus) != 1:
        step += 1
    return step


def _plain_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that back no constraint."""
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = %s
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        [table],
    )
    return cursor.fetchall()


def bench_key(device_id: str) -> str:
    """The device key of a bench device: derived from its ID, so the load can authenticate as
    any device without storing a million keys (bench only; real keys are random)."""
    return hashlib.sha256(f"{DEVICE_KEY_SALT}{device_id}".encode()).hexdigest()[:32]


def key_hash_sql(device_id_sql: str) -> tuple[str, dict]:
    """SQL (and its named params) computing `devices.keys.key_hash(bench_key(<device_id_sql>))`
    in PostgreSQL: HMAC-SHA256 written out with the key's inner and outer pads."""
    from devices.keys import hash_secret

    secret = hash_secret()
    if len(secret) > 64:
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(64, b"\0")
    inner, outer = bytes(b ^ 0x36 for b in secret), bytes(b ^ 0x5C for b in secret)
    raw = f"left(encode(sha256(convert_to(%(key_salt)s || {device_id_sql}, 'UTF8')), 'hex'), 32)"
    sql = f"encode(sha256(%(key_outer)s::bytea || sha256(%(key_inner)s::bytea || convert_to({raw}, 'UTF8'))), 'hex')"
    return sql, {"key_outer": outer, "key_inner": inner, "key_salt": DEVICE_KEY_SALT}


def issue_bench_keys(cursor, product_id: int, ids: list[int]) -> None:
    """Give these bench devices their derived keys (a fleet built without keys has none)."""
    sql, params = key_hash_sql("device_id")
    cursor.execute(
        f"UPDATE devices_device SET key_hash = {sql}, key_rotated_at = now()"
        f" WHERE product_id = %(product)s AND id = ANY(%(ids)s) AND key_hash IS DISTINCT FROM {sql}",
        {**params, "product": product_id, "ids": ids},
    )


def setup_product():
    """The bench user, product (the user an administrator) and firmware: (user, product, firmware by version)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from console.models import Membership, Product, Role
    from firmware.models import Firmware

    user, _ = get_user_model().objects.get_or_create(username=USERNAME, defaults={"email": "bench@example.com"})
    user.set_unusable_password()
    user.save()
    now = timezone.now()
    product = Product.objects.create(name="Bench", slug=PRODUCT_SLUG)
    Membership.objects.create(user=user, product=product, role=Role.ADMINISTRATOR)
    firmware = Firmware.objects.bulk_create(
        Firmware(
            product=product, version=version, title=f"Bench build {version}",
            binary=f"firmware/{product.id}/v{version}-bench.bin", size=1024,
            sha256=hashlib.sha256(f"bench firmware {version}".encode()).hexdigest(), uploaded_by=user,
            # The fleet's devices run every version, so each counts as reported running.
            first_reported_at=now, first_reported_by="1".zfill(24), last_reported_at=now, last_reported_by="1".zfill(24),
        )
        for version in range(1, FIRMWARE_VERSIONS + 1)
    )
    return user, product, {item.version: item for item in firmware}


def release(product, group_ids: list[int], by_version: dict) -> None:
    """Releases to RELEASED_GROUPS groups spread over the size ranks (ids by rank) and the product default."""
    from firmware.models import Firmware
    from groups.models import Group

    ranks = released_ranks(len(group_ids))
    for index, rank in enumerate(ranks):
        version = DEFAULT_VERSION + 1 + index % (FIRMWARE_VERSIONS - DEFAULT_VERSION)
        Group.objects.filter(pk=group_ids[rank - 1]).update(released_firmware=by_version[version])
        Firmware.objects.filter(pk=by_version[version].pk).update(ever_released=True)
    product.default_firmware = by_version[DEFAULT_VERSION]
    product.save(update_fields=["default_firmware"])
    Firmware.objects.filter(pk=by_version[DEFAULT_VERSION].pk).update(ever_released=True)


def _generate(*, devices: int, groups: int, sizes: list[int], log) -> int:
    from django.db import connection, transaction

    from groups.models import PALETTE, Group

    rng = random.Random(SEED)
    with transaction.atomic(), connection.cursor() as cursor:
        # Integrity is by construction; skipping the per-row foreign-key triggers saves minutes at 1M.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cursor.execute("SELECT setseed(%s)", [0.42])

        user, product, by_version = setup_product()
        group_rows = Group.objects.bulk_create(
            [
                Group(product=product, name=group_name(rank), description=f"Bench group of {size:,} devices",
                      color=PALETTE[rank % len(PALETTE)])
                for rank, size in enumerate(sizes, start=1)
            ]
            + [Group(product=product, name=SCRATCH_GROUP, description="Target of the batch-edit scenarios")]
        )

        t = time.monotonic()
        key_sql, key_params = key_hash_sql(DEVICE_ID_SQL)
        dropped = _plain_indexes(cursor, "devices_device")
        for name, _definition in dropped:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(
            f"""
            INSERT INTO devices_device (id, product_id, device_id, name, {", ".join(DEVICE_STATE)}, notes, iccid, imei, platform_id,
                key_hash, key_rotated_at, created_at, updated_at)
            SELECT n, %(product)s, {DEVICE_ID_SQL}, {NAME_SQL}, {", ".join(DEVICE_STATE.values())}, '', '', '', 12,
                {key_sql}, now() - interval '90 days', now() - interval '90 days', now()
            FROM generate_series(1, %(devices)s) AS n
            """,
            {"product": product.id, "devices": devices, **STATE_PARAMS, **key_params},
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('devices_device', 'id'), %s)", [devices])
        # The replica role skipped the trigger that keeps Product.device_count, too.
        cursor.execute("UPDATE console_product SET device_count = %s WHERE id = %s", [devices, product.id])
        for _name, definition in dropped:
            cursor.execute(definition)
        log(f"  devices: {time.monotonic() - t:.1f} s")

        # Each group takes an arithmetic progression modulo N with a step coprime to N: distinct
        # devices, spread over the fleet, without sampling in SQL.
        t = time.monotonic()
        dropped = _plain_indexes(cursor, "groups_groupmembership")
        for name, _definition in dropped:
            cursor.execute(f'DROP INDEX "{name}"')
        group_ids = [group.id for group in group_rows[: len(sizes)]]
        starts = [rng.randrange(devices) for _ in sizes]
        steps = [_coprime_step(rng, devices) for _ in sizes]
        cursor.execute(
            """
            INSERT INTO groups_groupmembership (group_id, device_id, added_by_id, added_at)
            SELECT p.group_id, (p.start + j * p.step) %% %(devices)s + 1, %(user)s,
                   now() - interval '30 days' + j * interval '1 millisecond'
            FROM unnest(%(groups)s::bigint[], %(starts)s::bigint[], %(steps)s::bigint[], %(sizes)s::bigint[])
                 AS p(group_id, start, step, size)
            CROSS JOIN LATERAL generate_series(0::bigint, p.size - 1) AS j
            """,
            {"devices": devices, "user": user.id, "groups": group_ids, "starts": starts, "steps": steps,
             "sizes": sizes},
        )
        memberships = cursor.rowcount
        for _name, definition in dropped:
            cursor.execute(definition)
        # The replica role skipped the triggers that keep Group.device_count; the sizes are known.
        cursor.execute(
            "UPDATE groups_group g SET device_count = p.size"
            " FROM unnest(%s::bigint[], %s::bigint[]) AS p(group_id, size) WHERE g.id = p.group_id",
            [group_ids, sizes],
        )
        log(f"  memberships: {time.monotonic() - t:.1f} s")

        release(product, group_ids, by_version)
    # Outside the transaction: VACUUM sets the visibility map, so index-only scans work as they
    # would on a settled production database.
    t = time.monotonic()
    with connection.cursor() as cursor:
        for table in ("devices_device", "groups_groupmembership", "groups_group", "firmware_firmware"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    log(f"  vacuum and analyze: {time.monotonic() - t:.1f} s")
    return memberships
