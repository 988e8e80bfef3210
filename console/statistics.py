"""Fresh planner statistics after bulk changes.

PostgreSQL plans from the statistics ANALYZE last gathered. Autovacuum refreshes them once a
table has changed by about 10%, but it may be off, or hours behind on a busy server; until then
a product that grew from a few devices to a million looks, to the planner, like the few, and it
picks plans that are seconds slower (docs/PERFORMANCE.md). So a bulk change analyzes the tables
it wrote itself, after commit, when either
- the change is more than a tenth of the product's rows in the table, or
- the table's rows, which the application counts exactly (`Product.device_count`,
  `Group.device_count`), differ by more than a tenth from those the planner last counted
  (`pg_class.reltuples`): many changes each under a tenth add up, as when a customer imports a
  fleet 10,000 devices at a time or builds a thousand groups one batch edit each.
"""

import logging

from django.db import connection, transaction

log = logging.getLogger(__name__)

# Below this many rows a change costs no query: small changes cannot make a big table's
# statistics wrong, and a small table is planned well enough whatever its statistics say.
MIN_ROWS = 1_000
SHARE = 0.10
# What each kind of row lives in, and what counts the table's rows exactly. The audit's device
# table grows with every such change, so it is analyzed with them.
TABLES = {
    "devices": ("devices_device", "console_auditeventdevice"),
    "memberships": ("groups_groupmembership", "console_auditeventdevice"),
}
COUNTS_SQL = """
SELECT p.device_count,
       (SELECT coalesce(sum(g.device_count), 0) FROM groups_group g WHERE g.product_id = p.id),
       (SELECT coalesce(sum(device_count), 0) FROM console_product),
       (SELECT coalesce(sum(device_count), 0) FROM groups_group),
       (SELECT reltuples FROM pg_class WHERE oid = 'devices_device'::regclass),
       (SELECT reltuples FROM pg_class WHERE oid = 'groups_groupmembership'::regclass)
FROM console_product p WHERE p.id = %s
"""


def refresh_after(product, *, devices: int = 0, memberships: int = 0) -> list[str]:
    """Note that a change wrote (added or removed) `devices` device rows and `memberships`
    membership rows of the product, and ANALYZE, once the transaction commits, the tables whose
    statistics that leaves more than a tenth off (see above). Returns those tables."""
    if connection.vendor != "postgresql" or max(devices, memberships) < MIN_ROWS:
        return []
    with connection.cursor() as cursor:
        cursor.execute(COUNTS_SQL, [product.pk])
        row = cursor.fetchone()
    if row is None:
        return []
    product_devices, product_memberships, all_devices, all_memberships, planned_devices, planned_memberships = row
    tables = []
    for kind, changed, in_product, in_table, planned in (
        ("devices", devices, product_devices, all_devices, planned_devices),
        ("memberships", memberships, product_memberships, all_memberships, planned_memberships),
    ):
        if changed < MIN_ROWS:
            continue
        # A removal leaves fewer rows than there were: compare it with the larger.
        large_change = changed > SHARE * max(in_product, changed)
        drifted = abs(in_table - max(planned, 0)) > SHARE * in_table
        if large_change or drifted:
            tables += [table for table in TABLES[kind] if table not in tables]
    if tables:
        transaction.on_commit(lambda: _analyze(tables), robust=True)
    return tables


def _analyze(tables: list[str]) -> None:
    # SKIP_LOCKED: a concurrent ANALYZE or VACUUM of the table refreshes it anyway; never wait.
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE (SKIP_LOCKED) {connection.ops.quote_name(table)}")
    log.info("analyzed %s", ", ".join(tables))
