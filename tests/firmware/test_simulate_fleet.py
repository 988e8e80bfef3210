"""manage.py simulate_fleet: handshakes and installs through the gateway, with the devices' keys, that move rollouts."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from console.models import AuditEvent
from devices.models import Device
from firmware.models import FirmwareUpdate
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db


def simulate(**options):
    out = StringIO()
    call_command("simulate_fleet", stdout=out, **options)
    return out.getvalue()


def test_every_connecting_device_installs_its_target_when_nothing_fails(personas):
    product = personas.product
    v5 = FirmwareFactory(product=product, version=5)
    devices = DeviceFactory.create_batch(12, product=product, firmware_version=4, keyed=True)
    GroupFactory(product=product, devices=devices, released_firmware=v5)
    DeviceFactory.create_batch(3, product=personas.other_product, firmware_version=4, keyed=True)

    output = simulate(product="acme", connect_rate=1.0, failure_rate=0.0, disconnect_rate=0.0, batch_size=5)

    assert set(Device.objects.filter(product=product).values_list("firmware_version", flat=True)) == {5}
    assert set(Device.objects.filter(product=personas.other_product).values_list("firmware_version", flat=True)) == {4}
    assert FirmwareUpdate.objects.filter(status="succeeded", to_version=5).count() == 12
    assert "12 installed" in output
    assert AuditEvent.objects.filter(action="fleet.simulate", product=product).count() == 1


def test_a_failure_rate_leaves_failed_updates_that_a_later_round_retries(personas):
    product = personas.product
    v5 = FirmwareFactory(product=product, version=5)
    GroupFactory(product=product, devices=DeviceFactory.create_batch(200, product=product, firmware_version=4, keyed=True), released_firmware=v5)

    simulate(product="acme", connect_rate=1.0, failure_rate=0.3, disconnect_rate=0.0, seed=1)

    failed = FirmwareUpdate.objects.filter(status="failed").count()
    assert 30 <= failed <= 90
    assert Device.objects.filter(firmware_version=4).count() == failed
    simulate(product="acme", connect_rate=1.0, failure_rate=0.0, disconnect_rate=0.0, seed=3)
    assert not Device.objects.filter(firmware_version=4).exists()


def test_online_devices_get_an_intelligent_release_at_once_and_others_wait(personas):
    product = personas.product
    v5 = FirmwareFactory(product=product, version=5, intelligent=True)
    online = DeviceFactory.create_batch(5, product=product, firmware_version=4, online=True, keyed=True)
    offline = DeviceFactory.create_batch(5, product=product, firmware_version=4, online=False, keyed=True)
    GroupFactory(product=product, devices=[*online, *offline], released_firmware=v5)

    simulate(product="acme", connect_rate=0.0, failure_rate=0.0, disconnect_rate=0.0)

    assert set(Device.objects.filter(pk__in=[d.pk for d in online]).values_list("firmware_version", flat=True)) == {5}
    assert set(Device.objects.filter(pk__in=[d.pk for d in offline]).values_list("firmware_version", flat=True)) == {4}


def test_locked_and_development_devices_keep_their_versions(personas):
    product = personas.product
    FirmwareFactory(product=product, version=3)
    v5 = FirmwareFactory(product=product, version=5)
    locked = DeviceFactory(product=product, firmware_version=3, desired_firmware_version=3, keyed=True)
    development = DeviceFactory(product=product, firmware_version=9, development=True, keyed=True)
    GroupFactory(product=product, devices=[locked, development], released_firmware=v5)

    simulate(product="acme", connect_rate=1.0, failure_rate=0.0, rounds=2)

    assert Device.objects.get(pk=locked.pk).firmware_version == 3
    assert Device.objects.get(pk=development.pk).firmware_version == 9
    assert not FirmwareUpdate.objects.exists()


def test_a_stale_pending_update_is_superseded(personas):
    product = personas.product
    FirmwareFactory(product=product, version=5)
    v6 = FirmwareFactory(product=product, version=6)
    device = DeviceFactory(product=product, firmware_version=4, keyed=True)
    GroupFactory(product=product, devices=[device], released_firmware=v6)
    FirmwareUpdate.objects.create(product=product, device=device, from_version=4, to_version=5)

    simulate(product="acme", connect_rate=1.0, failure_rate=0.0)

    superseded = FirmwareUpdate.objects.get(to_version=5)
    assert (superseded.status, superseded.reason) == ("failed", "Superseded: the target is now v6.")
    assert FirmwareUpdate.objects.get(to_version=6).status == "succeeded"
    assert Device.objects.get(pk=device.pk).firmware_version == 6


def test_each_updating_device_costs_two_gateway_handshakes_and_the_rest_does_not_grow(personas):
    """Devices go through the gateway's services one by one; choosing them stays set-based."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    product = personas.product
    v5 = FirmwareFactory(product=product, version=5)
    counts = {}
    for size in (5, 60):
        Device.objects.filter(product=product).delete()
        GroupFactory(product=product, devices=DeviceFactory.create_batch(size, product=product, firmware_version=4, keyed=True), released_firmware=v5)
        with CaptureQueriesContext(connection) as queries:
            simulate(product="acme", connect_rate=1.0, failure_rate=0.0, disconnect_rate=0.0, batch_size=1000)
        counts[size] = len(queries)
    # The offering handshake and the one after the install: each is the gateway's one statement
    # (which finds an update to create or settle, so writes nothing), the device, then the general
    # path: a savepoint, the device UPDATE, the proof, its target, the update row, an audit event
    # and the device it names, a release.
    assert counts[60] - counts[5] == 55 * 2 * 10


def test_devices_without_a_key_are_left_alone(personas):
    product = personas.product
    v5 = FirmwareFactory(product=product, version=5)
    keyless = DeviceFactory(product=product, firmware_version=4)
    GroupFactory(product=product, devices=[keyless], released_firmware=v5)

    output = simulate(product="acme", connect_rate=1.0, failure_rate=0.0, disconnect_rate=0.0)

    assert Device.objects.get(pk=keyless.pk).firmware_version == 4
    assert not FirmwareUpdate.objects.exists()
    assert "0 handshakes" in output


def test_an_unknown_product_is_an_error(personas):
    with pytest.raises(CommandError):
        simulate(product="nope")
