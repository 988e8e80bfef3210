"""device_handshake and device_update_failed: recording, settling and offering updates."""

import pytest
from django.core.exceptions import ValidationError

from console.models import AuditEvent
from firmware import services
from firmware.models import FirmwareUpdate
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(personas):
    product = personas.product
    v4, v5 = FirmwareFactory(product=product, version=4), FirmwareFactory(product=product, version=5)
    device = DeviceFactory(product=product, firmware_version=4, online=False)
    group = GroupFactory(product=product, name="beta", devices=[device], released_firmware=v5)
    return product, v4, v5, device, group


def test_a_handshake_records_the_version_and_time_and_marks_the_device_online(fleet):
    product, v4, v5, device, group = fleet
    group.released_firmware = None
    group.save(update_fields=["released_firmware"])

    assert services.device_handshake(device=device, firmware_version=3) is None

    device.refresh_from_db()
    assert device.firmware_version == 3
    assert device.online is True
    assert device.last_handshake_at is not None
    assert not FirmwareUpdate.objects.exists()


def test_a_device_off_target_is_offered_its_target_and_one_pending_update_is_recorded(fleet):
    product, v4, v5, device, group = fleet

    offered = services.device_handshake(device=device, firmware_version=4)
    again = services.device_handshake(device=device, firmware_version=4)

    assert offered == v5 and again == v5
    update = FirmwareUpdate.objects.get()
    assert (update.from_version, update.to_version, update.status) == (4, 5, "pending")
    assert AuditEvent.objects.filter(action="firmware.update_targeted", device_count=1).touching_device(device.device_id).count() == 1


def test_reporting_the_pending_version_settles_the_update_as_succeeded(fleet):
    product, v4, v5, device, group = fleet
    services.device_handshake(device=device, firmware_version=4)

    assert services.device_handshake(device=device, firmware_version=5) is None

    update = FirmwareUpdate.objects.get()
    assert update.status == "succeeded"
    assert update.finished_at is not None


def test_a_pending_update_whose_target_moved_is_superseded_and_the_new_target_offered(fleet):
    product, v4, v5, device, group = fleet
    services.device_handshake(device=device, firmware_version=4)
    v6 = FirmwareFactory(product=product, version=6)
    group.released_firmware = v6
    group.save(update_fields=["released_firmware"])

    assert services.device_handshake(device=device, firmware_version=4) == v6

    old, new = FirmwareUpdate.objects.order_by("id")
    assert (old.to_version, old.status) == (5, "failed")
    assert "Superseded" in old.reason
    assert (new.to_version, new.status) == (6, "pending")


def test_a_device_that_became_development_gets_nothing_and_its_pending_update_ends(fleet):
    product, v4, v5, device, group = fleet
    services.device_handshake(device=device, firmware_version=4)
    services.device_development_set(device=device, development=True, actor=None)

    assert services.device_handshake(device=device, firmware_version=4) is None

    update = FirmwareUpdate.objects.get()
    assert update.status == "failed"
    assert "no longer targeted" in update.reason


def test_a_failure_report_marks_the_pending_update_failed_and_the_next_handshake_retries(fleet):
    product, v4, v5, device, group = fleet
    services.device_handshake(device=device, firmware_version=4)

    services.device_update_failed(device=device, version=5, reason="flash write error")

    failed = FirmwareUpdate.objects.get()
    assert (failed.status, failed.reason) == ("failed", "flash write error")
    assert AuditEvent.objects.filter(action="firmware.update_failed").exists()
    assert services.device_handshake(device=device, firmware_version=4) == v5
    assert FirmwareUpdate.objects.filter(status="pending", to_version=5).count() == 1


def test_a_failure_report_without_a_pending_update_is_refused(fleet):
    product, v4, v5, device, group = fleet

    with pytest.raises(ValidationError):
        services.device_update_failed(device=device, version=5)

    assert not FirmwareUpdate.objects.exists()


def test_a_handshake_uses_the_same_rule_as_everything_else_so_a_lock_wins(fleet):
    product, v4, v5, device, group = fleet
    services.device_lock(device=device, version=4, actor=None)

    assert services.device_handshake(device=device, firmware_version=4) is None
    assert not FirmwareUpdate.objects.exists()


def test_an_on_target_handshake_takes_three_queries_after_the_savepoint(fleet, django_assert_num_queries):
    product, v4, v5, device, group = fleet
    services.device_handshake(device=device, firmware_version=5)
    with django_assert_num_queries(5):  # savepoint, update, proof, target with pending update, release
        assert services.device_handshake(device=device, firmware_version=5) is None
