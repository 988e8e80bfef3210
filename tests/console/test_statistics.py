"""Bulk changes refresh the planner's statistics of the tables they changed (console/statistics.py)."""

import pytest
from django.db import connection

from console import statistics
from devices.models import Device
from devices.services import devices_import
from groups.services import group_delete, devices_edit_groups
from tests.factories import GroupFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="ANALYZE and the planner's statistics are PostgreSQL's"
)


def ids(count: int, start: int = 0) -> list[str]:
    return [f"{n:024x}" for n in range(start, start + count)]


def planner_rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def analyze(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")


def analyze_count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # the stats view caches per transaction
        cursor.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = %s", [table])
        return cursor.fetchone()[0]


@postgresql_only
def test_a_large_import_tells_the_planner_how_many_devices_there_are(personas, django_capture_on_commit_callbacks):
    analyzed_before = analyze_count("devices_device")

    with django_capture_on_commit_callbacks(execute=True):
        answer = devices_import(product=personas.product, ids=ids(1500), actor=personas.admin)

    assert answer["updated"] == 1500
    assert planner_rows("devices_device") >= 1500
    assert planner_rows("console_auditeventdevice") >= 1500
    assert analyze_count("devices_device") == analyzed_before + 1


@postgresql_only
def test_an_import_of_under_a_tenth_of_the_product_leaves_the_statistics_alone(
    personas, django_capture_on_commit_callbacks
):
    Device.objects.bulk_create(Device(product=personas.product, device_id=device_id) for device_id in ids(12_000))
    analyze("devices_device")  # the planner knows these
    analyzed_before = analyze_count("devices_device")

    with django_capture_on_commit_callbacks(execute=True):
        answer = devices_import(product=personas.product, ids=ids(1100, start=20_000), actor=personas.admin)

    assert answer["updated"] == 1100
    assert analyze_count("devices_device") == analyzed_before


@postgresql_only
def test_a_batch_edit_of_most_memberships_and_a_large_group_deletion_refresh_the_membership_statistics(
    personas, django_capture_on_commit_callbacks
):
    Device.objects.bulk_create(Device(product=personas.product, device_id=device_id) for device_id in ids(1200))
    group = GroupFactory(product=personas.product, name="everyone")
    analyzed_before = analyze_count("groups_groupmembership")

    with django_capture_on_commit_callbacks(execute=True):
        changed = devices_edit_groups(product=personas.product, devices=Device.objects.all(), add=[group],
                                   actor=personas.admin)
    assert changed == 1200
    assert planner_rows("groups_groupmembership") >= 1200
    assert analyze_count("groups_groupmembership") == analyzed_before + 1

    group.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        group_delete(group=group, actor=personas.admin)
    assert analyze_count("groups_groupmembership") == analyzed_before + 2


@postgresql_only
def test_the_rule_compares_the_change_with_the_products_rows_and_the_table_with_the_planners_count(
    personas, django_assert_num_queries
):
    product = personas.product
    with django_assert_num_queries(0):
        assert statistics.refresh_after(product, devices=999) == []  # small changes cost nothing
    Device.objects.bulk_create(Device(product=product, device_id=device_id) for device_id in ids(20_000))
    analyze("devices_device")

    with django_assert_num_queries(1):
        assert statistics.refresh_after(product, devices=1500) == []  # 7.5% of 20,000, and no drift
    assert statistics.refresh_after(product, devices=2500) == ["devices_device", "console_auditeventdevice"]
    # 5,000 memberships removed from a product that has none left: all of them.
    assert statistics.refresh_after(product, memberships=5000) == ["groups_groupmembership", "console_auditeventdevice"]

    # Changes each under a tenth add up: 23,000 devices where the planner counted 20,000.
    Device.objects.bulk_create(Device(product=product, device_id=device_id) for device_id in ids(3000, start=50_000))
    assert statistics.refresh_after(product, devices=1500) == ["devices_device", "console_auditeventdevice"]
