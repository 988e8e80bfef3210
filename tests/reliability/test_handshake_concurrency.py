"""Two handshakes of one device at once through the gateway, on PostgreSQL: the second waits for the
device row, then sees what the first committed, so the device gets one pending update and one
audit event, and the last report wins."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from console.models import AuditEvent
from devices.models import Device
from firmware.gateway import Credentials, gateway_handshake
from firmware.models import FirmwareUpdate
from tests.factories import FirmwareFactory, GroupFactory
from tests.gateway import keyed_device

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks need PostgreSQL"),
]


def _wait_for_a_blocked_backend(seconds=10):
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second handshake never waited for the device row")


def _in_a_thread(credentials, version, answer):
    def run():
        try:
            answer["offered"] = gateway_handshake(credentials=credentials, firmware_version=version)
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            answer["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def fleet(personas):
    v5 = FirmwareFactory(product=personas.product, version=5)
    device, _key = keyed_device(personas.product, firmware_version=4)
    GroupFactory(product=personas.product, name="beta", devices=[device], released_firmware=v5)
    return v5, device, Credentials(device.device_id, device.key_hash)


def test_a_handshake_that_waited_for_the_device_row_sees_the_update_the_first_created(fleet):
    v5, device, credentials = fleet
    second = {}

    with transaction.atomic():
        assert gateway_handshake(credentials=credentials, firmware_version=4) == v5  # holds the row lock
        thread = _in_a_thread(credentials, 4, second)
        _wait_for_a_blocked_backend()
    thread.join(30)

    assert not thread.is_alive()
    assert second == {"offered": v5}
    assert FirmwareUpdate.objects.filter(device=device).count() == 1
    assert AuditEvent.objects.filter(action="firmware.update_targeted").count() == 1


def test_two_common_handshakes_of_one_device_queue_up_and_the_later_report_stays(fleet):
    v5, device, credentials = fleet
    gateway_handshake(credentials=credentials, firmware_version=4)  # the pending update to v5
    second = {}

    with transaction.atomic():
        assert gateway_handshake(credentials=credentials, firmware_version=4) == v5  # one statement, row locked
        thread = _in_a_thread(credentials, 4, second)
        _wait_for_a_blocked_backend()
        Device.objects.filter(pk=device.pk).update(online=False)  # committed before the second writes
    thread.join(30)

    assert not thread.is_alive()
    assert second == {"offered": v5}
    device.refresh_from_db()
    assert device.online and device.firmware_version == 4
    assert FirmwareUpdate.objects.filter(device=device, status="pending").count() == 1
