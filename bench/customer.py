"""A fleet built the way a customer builds one, measured right after the build.

The devices are imported through the API (`POST /v1/products/bench/devices`, 10,000 IDs a call)
and grouped with batch edits by filter (`PUT /v1/products/bench/devices` with `filter`), one call
per group: the customer's device names carry the groups they belong in (`sensor-0000042 g0003
g0170 g0999`), and each group takes the devices whose name contains its own. Nothing VACUUMs
or ANALYZEs by hand: whatever statistics the planner has are those the application refreshed
itself (console/statistics.py), as on a server whose autovacuum is off or behind.

Two things are not done through the API, because the API has no bulk form of them: the names
and the devices' state (online, last handshake, firmware, 1% locked, 0.5% development), which
on a real fleet arrive with the devices' first handshakes and the customer's naming, are set
by one UPDATE between the import and the grouping; and releases (20 groups and the product
default) are written directly, as in the generated fleet.

Each device draws three group ranks from a Zipf law over the groups (so ~3 memberships per
device and a few huge groups, hundreds of small ones), like the generated fleet, but drawn at
random rather than laid out arithmetically.
"""

import json
import statistics
import time

from bench import fleet as fleet_module

VERSION = 1000 + fleet_module.FLEET_VERSION
IMPORT_BATCH = 10_000
TABLES = ("devices_device", "groups_groupmembership", "console_auditeventdevice")


def sizes(names: list[str]) -> list[int]:
    """The built groups' device counts, in rank order."""
    from groups.models import Group

    counts = dict(Group.objects.filter(product__slug=fleet_module.PRODUCT_SLUG, name__in=names)
                  .values_list("name", "device_count"))
    return [counts.get(name, 0) for name in names]


def _analyzed(cursor) -> dict:
    cursor.execute("SELECT relname, analyze_count + autoanalyze_count FROM pg_stat_user_tables"
                   " WHERE relname = ANY(%s)", [list(TABLES)])
    return dict(cursor.fetchall())


def _summary(samples: list[float]) -> dict:
    return {"calls": len(samples), "median_ms": round(statistics.median(samples), 1),
            "max_ms": round(max(samples), 1), "seconds": round(sum(samples) / 1000, 1),
            "samples_ms": [round(sample, 1) for sample in samples]}


def planner_estimate(cursor, sql: str, params) -> int:
    cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
    plan = cursor.fetchone()[0]
    return int((plan[0] if isinstance(plan, list) else plan)["Plan"]["Plan Rows"])


def build(*, devices: int, groups: int, log) -> tuple[int, dict]:
    """Build the fleet; returns (memberships, details of the build)."""
    from django.db import connection, transaction
    from django.test import Client

    from console.models import AccessToken
    from groups import services as group_services
    from groups.models import Group

    with transaction.atomic():
        user, product, by_version = fleet_module.setup_product()
    _token, raw, _refresh = AccessToken.issue(user=user, name="bench-build", expires_in=24 * 3600)
    api = Client(headers={"authorization": f"Bearer {raw}"})
    path = f"/v1/products/{product.slug}/devices"
    details = {}

    def timed_call(method, body: dict, expected: int | None = None):
        started = time.perf_counter()
        response = getattr(api, method)(path, data=json.dumps(body), content_type="application/json")
        ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{method.upper()} {path}: HTTP {response.status_code} {response.content[:300]!r}")
        if expected is not None and response.json()["updated"] != expected:
            raise SystemExit(f"the import added {response.json()['updated']} devices, expected {expected}")
        return ms

    def phase(key: str, label: str, calls) -> None:
        """Make the calls (each returns its ms); note their times and the ANALYZE runs they caused."""
        with connection.cursor() as cursor:
            before = _analyzed(cursor)
        t = time.monotonic()
        samples = [call() for call in calls]
        with connection.cursor() as cursor:
            after = _analyzed(cursor)
        details[key] = {**_summary(samples), "analyzes": {k: after.get(k, 0) - before.get(k, 0) for k in TABLES}}
        log(f"  {label}: {len(samples)} calls, median {details[key]['median_ms']:,.0f} ms, "
            f"{time.monotonic() - t:.1f} s; ANALYZE runs {details[key]['analyzes']}")

    def import_call(first: int):
        ids = [fleet_module.device_id(n) for n in range(first, min(devices, first + IMPORT_BATCH - 1) + 1)]
        return lambda: timed_call("post", {"ids": ids}, expected=len(ids))

    phase("import", "import", (import_call(first) for first in range(1, devices + 1, IMPORT_BATCH)))

    t = time.monotonic()
    token = f"' g' || lpad(least({groups}, floor(power({groups} + 1, random())))::int::text, 4, '0')"
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.18)")
        cursor.execute(
            f"""
            UPDATE devices_device d SET name = {fleet_module.NAME_SQL} || {token} || {token} || {token},
                {", ".join(f"{column} = {value}" for column, value in fleet_module.DEVICE_STATE.items())},
                updated_at = now()
            FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM devices_device WHERE product_id = %(product)s) s
            WHERE d.id = s.id
            """,
            {"product": product.id, **fleet_module.STATE_PARAMS},
        )
    log(f"  names and state (the devices' first handshakes): {time.monotonic() - t:.1f} s")

    def group_call(name: str):
        body = {"action": "groups", "filter": {"deviceName": name}, "metadata": {"add": [name]}}
        return lambda: timed_call("put", body)

    phase("grouping", "grouping by batch edits by filter",
          (group_call(fleet_module.group_name(rank)) for rank in range(1, groups + 1)))

    group_services.group_create(product=product, name=fleet_module.SCRATCH_GROUP,
                                description="Target of the batch-edit scenarios", actor=user)
    ranked = dict(Group.objects.filter(product=product).values_list("name", "id"))
    with transaction.atomic():
        fleet_module.release(product, [ranked[fleet_module.group_name(rank)] for rank in range(1, groups + 1)],
                             by_version)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM groups_groupmembership m JOIN groups_group g ON g.id = m.group_id"
                       " WHERE g.product_id = %s", [product.id])
        memberships = cursor.fetchone()[0]
        details["planner"] = {
            "product_devices_estimate": planner_estimate(
                cursor, "SELECT 1 FROM devices_device WHERE product_id = %s", [product.id]),
            "memberships_estimate": planner_estimate(cursor, "SELECT 1 FROM groups_groupmembership", []),
        }
    log(f"  the planner now believes the product has {details['planner']['product_devices_estimate']:,} devices"
        f" and the fleet {details['planner']['memberships_estimate']:,} memberships")
    return memberships, details
