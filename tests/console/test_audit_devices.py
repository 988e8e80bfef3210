"""Audit events name their devices in rows of their own, found again through an index."""

import pytest
from django.db import connection

from console.models import AuditEvent, AuditEventDevice
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_an_event_records_each_device_once_and_counts_them(personas):
    a, b = DeviceFactory(product=personas.product), DeviceFactory(product=personas.product)
    event = AuditEvent.record(product=personas.product, actor=personas.developer, action="device.groups",
                              device_ids=[b.device_id, a.device_id, b.device_id])
    quiet = AuditEvent.record(product=personas.product, actor=personas.developer, action="group.create")

    assert (event.device_count, event.device_ids) == (2, sorted([a.device_id, b.device_id]))
    assert (quiet.device_count, quiet.device_ids) == (0, [])
    assert list(AuditEvent.objects.touching_device(a.device_id)) == [event]
    assert AuditEventDevice.objects.count() == 2


def test_a_removed_devices_events_keep_their_count(personas):
    device = DeviceFactory(product=personas.product)
    event = AuditEvent.record(product=personas.product, actor=None, action="device.remove", device_ids=[device.device_id])
    device.delete()
    event.refresh_from_db()
    assert (event.device_count, event.device_ids) == (1, [])


def test_a_devices_history_is_an_index_lookup(personas):
    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    device = DeviceFactory(product=personas.product)
    AuditEvent.record(product=personas.product, actor=None, action="device.groups", device_ids=[device.device_id])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = AuditEvent.objects.touching_device(device.device_id).explain()
    assert "audit_device_history" in plan


def test_deleting_a_product_takes_its_events_device_rows_with_them(personas):
    device = DeviceFactory(product=personas.other_product)
    AuditEvent.record(product=personas.other_product, actor=None, action="device.groups", device_ids=[device.device_id])
    personas.other_product.delete()
    assert not AuditEventDevice.objects.filter(device=device).exists()
