"""Two failure reports racing past a rollout's gate, on PostgreSQL with real threads, connections
and transactions: the rollout halts exactly once, and the stage's counters count both."""

import pytest
from django.db import connection  # noqa: F401 - the skipif condition names it

from console.models import AuditEvent
from devices.models import Device
from firmware import services
from firmware.models import FirmwareUpdate, Rollout
from firmware.services import rollouts
from tests.factories import DeviceFactory, GroupFactory
from tests.firmware.helpers import proven_firmware
from tests.reliability.test_concurrency import run_together

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks need PostgreSQL"),
]


@pytest.mark.parametrize("limit", ["1", "7"])
def test_two_failures_racing_past_the_gate_halt_the_rollout_once(personas, limit):
    """With 1% each report alone passes the gate; with 7% only the second does (1 of 20 is 5%,
    2 of 20 is 10%), whichever commits second."""
    product = personas.product
    v4, v5 = proven_firmware(product, 4), proven_firmware(product, 5)
    devices = DeviceFactory.create_batch(20, product=product, firmware_version=4)
    everyone = GroupFactory(product=product, name="everyone", devices=devices)
    services.firmware_release(firmware=v4, groups=[everyone], actor=personas.developer)
    spec = rollouts.rollout_spec(product=product, stages="100%", max_failure_percent=limit, soak_minutes=60)
    services.firmware_release(firmware=v5, groups=[everyone], rollout=spec, actor=personas.developer)
    rollout = Rollout.objects.get(firmware=v5)
    for device in devices:
        device.refresh_from_db()
        assert services.device_handshake(device=device, firmware_version=4).version == 5
    first, second = (Device.objects.get(pk=d.pk) for d in devices[:2])

    results = run_together(
        lambda: services.device_update_failed(device=first, version=5, reason="flash write error"),
        lambda: services.device_update_failed(device=second, version=5, reason="flash write error"),
    )

    assert results == [None, None]
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.HALTED
    halted = AuditEvent.objects.filter(action="rollout.halted")
    assert halted.count() == 1
    stage = rollout.stages.get()
    assert (stage.offered, stage.updated, stage.failed, stage.timed_out) == (20, 0, 2, 0)
    failed = halted.get().details["failed"]
    assert rollout.halted_reason == (
        f"Halted: {failed} of 20 devices in stage 1 failed, {failed * 5:.1f}% > {limit}%"
    )
    # The halt is decided by whichever report committed past the gate first.
    assert failed == 2 if limit == "7" else failed in (1, 2)
    assert FirmwareUpdate.objects.filter(rollout=rollout, status=FirmwareUpdate.Status.FAILED).count() == 2
