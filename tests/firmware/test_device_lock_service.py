"""device_lock and device_development_set: stored state, previews and audit events."""

import pytest
from django.core.exceptions import ValidationError

from console.models import AuditEvent
from devices.models import Device
from firmware import services
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db


def test_locking_stores_the_version_and_records_the_target_change(personas):
    product = personas.product
    FirmwareFactory(product=product, version=3)
    v5 = FirmwareFactory(product=product, version=5)
    device = DeviceFactory(product=product)
    GroupFactory(product=product, devices=[device], released_firmware=v5)

    services.device_lock(device=device, version=3, actor=personas.developer)

    device.refresh_from_db()
    assert device.desired_firmware_version == 3
    event = AuditEvent.objects.get(action="device.lock")
    assert event.device_ids == [device.device_id]
    assert event.details["target_before"]["version"] == 5
    assert event.details["target_after"] == {"version": 3, "rule": "locked", "group": None}


def test_unlocking_clears_the_lock(personas):
    product = personas.product
    FirmwareFactory(product=product, version=3)
    device = DeviceFactory(product=product, desired_firmware_version=3)

    services.device_lock(device=device, version=None, actor=personas.developer)

    device.refresh_from_db()
    assert device.desired_firmware_version is None
    assert AuditEvent.objects.filter(action="device.unlock").exists()


def test_locking_to_a_version_the_product_does_not_have_is_refused(personas):
    FirmwareFactory(product=personas.other_product, version=9)
    device = DeviceFactory(product=personas.product)

    with pytest.raises(ValidationError) as raised:
        services.device_lock(device=device, version=9, actor=personas.developer)

    assert "desired_firmware_version" in raised.value.message_dict
    device.refresh_from_db()
    assert device.desired_firmware_version is None
    assert not AuditEvent.objects.exists()


def test_marking_development_stores_it_and_clears_the_target(personas):
    product = personas.product
    product.default_firmware = FirmwareFactory(product=product, version=3)
    product.save(update_fields=["default_firmware"])
    device = DeviceFactory(product=product)

    services.device_development_set(device=device, development=True, actor=personas.developer)

    row = Device.objects.with_target().get(pk=device.pk)
    assert row.development is True
    assert (row.target_version, row.target_rule) == (None, "development")
    assert AuditEvent.objects.filter(action="device.development_mark", device_count=1).touching_device(device.device_id).exists()


def test_the_preview_shows_the_target_before_and_after_without_changing_anything(personas):
    product = personas.product
    v5 = FirmwareFactory(product=product, version=5)
    FirmwareFactory(product=product, version=3)
    device = DeviceFactory(product=product, firmware_version=5)
    GroupFactory(product=product, name="beta", devices=[device], released_firmware=v5)

    preview = services.device_target_preview(device=device, locked=3)

    assert preview["before"]["version"] == 5 and preview["before"]["group"] == "beta"
    assert preview["after"]["version"] == 3 and preview["after"]["rule"] == "locked"
    assert preview["impacted"] is True
    device.refresh_from_db()
    assert device.desired_firmware_version is None
