"""Fresh planner statistics after bulk changes.

PostgreSQL plans from the statistics ANALYZE last gathered. Autovacuum refreshes them once a
table has changed by about 10%, but it may be off, or lag hours behind on a busy server; until
then a product that grew from a few devices to a million looks, to the planner, like the few,
and it picks plans that are seconds slower (docs/PERFORMANCE.md). So a change that writes more
than a tenth of a product's rows in a table analyzes that table itself, after commit.
"""

import logging

from django.db import connection, transaction

log = logging.getLogger(__name__)

# Below this many rows a change never costs a query: small changes cannot make a big table's
# statistics wrong, and a small table is planned well enough whatever its statistics say.
MIN_ROWS = 1_000
SHARE = 0.10
TABLES = {
    "devices": ("devices_device", "console_auditeventdevice"),
    "memberships": ("groups_groupmembership", "console_auditeventdevice"),
}


def refresh_after(product, *, devices: int = 0, memberships: int = 0) -> list[str]:
    """Note that a change wrote (added or removed) `devices` device rows and `memberships`
    membership rows of the product; when that is more than a tenth of the product's rows in
    the table (as they are now), ANALYZE the table once the transaction commits. Returns the
    tables it will analyze. The audit's device table grows by the same rows, so it goes too."""
    if connection.vendor != "postgresql" or max(devices, memberships) < MIN_ROWS:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.device_count, (SELECT coalesce(sum(g.device_count), 0) FROM groups_group g"
            " WHERE g.product_id = p.id) FROM console_product p WHERE p.id = %s",
            [product.pk],
        )
        device_total, membership_total = cursor.fetchone() or (0, 0)
    tables = []
    for kind, changed, now in (("devices", devices, device_total), ("memberships", memberships, membership_total)):
        # A removal leaves fewer rows: compare it with the rows there were.
        if changed >= MIN_ROWS and changed > SHARE * max(now, changed):
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
