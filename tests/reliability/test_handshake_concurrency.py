"""Two handshakes of one device at once on PostgreSQL: the second waits for the device row and then
sees what the first committed, so the device gets one pending update and one audit event."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from console.models import AuditEvent
from devices.models import Device
from firmware import services
from firmware.models import FirmwareUpdate
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

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


def test_a_handshake_that_waited_for_the_device_row_sees_the_update_the_first_created(personas):
    v5 = FirmwareFactory(product=personas.product, version=5)
    device = DeviceFactory(product=personas.product, firmware_version=4)
    GroupFactory(product=personas.product, name="beta", devices=[device], released_firmware=v5)
    second = {}

    def handshake_again():
        try:
            again = Device.objects.select_related("product").get(pk=device.pk)
            second["offered"] = services.device_handshake(device=again, firmware_version=4)
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            second["error"] = error
        finally:
            connections.close_all()

    with transaction.atomic():
        device.product = personas.product
        assert services.device_handshake(device=device, firmware_version=4) == v5  # holds the row lock
        thread = threading.Thread(target=handshake_again)
        thread.start()
        _wait_for_a_blocked_backend()
    thread.join(30)

    assert not thread.is_alive()
    assert second == {"offered": v5}
    assert FirmwareUpdate.objects.filter(device=device).count() == 1
    assert AuditEvent.objects.filter(action="firmware.update_targeted").count() == 1
