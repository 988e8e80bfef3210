"""Abort and rollback restore exactly the previous targets, on a fleet of mixed states.

Every device's target is snapshotted before a staged release (to two groups and as the product
default); the rollout runs partway through the gateway's services (devices offered, updated,
failed); then abort or roll back, and every device's target is compared with the snapshot."""

import pytest

from devices.models import Device
from firmware import services
from firmware.models import FirmwareUpdate, Rollout
from firmware.services import rollouts
from tests.factories import DeviceFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

pytestmark = pytest.mark.django_db


def targets(product):
    return dict(Device.objects.filter(product=product, development=False).with_target()
                .values_list("pk", "target_version"))


def _handshake(device, version):
    device.refresh_from_db()
    return services.device_handshake(device=device, firmware_version=version)


@pytest.fixture
def mixed(personas):
    """60 devices running v3, v4 or nothing; 3 locked to v3, 2 in development; groups "everyone"
    (v4), "beta" (nothing released), "eu" (v6, above the rollout's v5), 10 devices in no group;
    product default v3."""
    product = personas.product
    v = {n: proven_firmware(product, n) for n in (3, 4, 5, 6)}
    running = [3, 4, 4, None]
    devices = [DeviceFactory(product=product, firmware_version=running[i % 4]) for i in range(60)]
    for device in devices[:3]:
        device.desired_firmware_version = 3
        device.save(update_fields=["desired_firmware_version"])
    for device in devices[3:5]:
        device.development = True
        device.save(update_fields=["development"])
    everyone = GroupFactory(product=product, name="everyone", devices=devices[:40])
    beta = GroupFactory(product=product, name="beta", devices=devices[30:50])
    eu = GroupFactory(product=product, name="eu", devices=devices[35:45])
    canary = GroupFactory(product=product, name="prerelease", devices=devices[:8] + devices[50:54])
    services.firmware_release(firmware=v[4], groups=[everyone], actor=personas.developer)
    services.firmware_release(firmware=v[6], groups=[eu], actor=personas.developer)
    services.firmware_release(firmware=v[3], groups=[], product_default=True, actor=personas.developer)
    return {"product": product, "v": v, "devices": devices, "groups": [everyone, beta], "canary": canary}


def _run_partway(personas, mixed, *, advances=1):
    """Start the staged release, open `advances` more stages, and have the open devices report:
    of those offered v5, every third updates, every third fails, the rest stay offered."""
    product, v5 = mixed["product"], mixed["v"][5]
    spec = rollouts.rollout_spec(product=product, stages="prerelease, 50%, 100%", max_failure_percent=100,
                                 min_updated=0)
    services.firmware_release(firmware=v5, groups=mixed["groups"], product_default=True, rollout=spec,
                              actor=personas.developer)
    rollout = Rollout.objects.get(firmware=v5)
    for _ in range(advances):
        rollouts.rollout_act(rollout=rollout, action="advance", actor=personas.developer)
    updated, failed, offered = {}, set(), set()
    for index, device in enumerate(Device.objects.filter(product=product).order_by("pk")):
        before = device.firmware_version
        offer = _handshake(device, before)
        if offer is None or offer.version != 5:
            continue
        offered.add(device.pk)
        if index % 3 == 0:
            _handshake(device, 5)
            updated[device.pk] = before
        elif index % 3 == 1:
            services.device_update_failed(device=device, version=5, reason="flash write error")
            failed.add(device.pk)
    rollout.refresh_from_db()
    assert updated and failed and offered - set(updated) - failed, "the run reaches every kind of device"
    return rollout, updated, failed


def _ran_before(before, updated):
    """What an updated device ran before; one that reported nothing goes back to its previous target."""
    return lambda pk: updated[pk] if updated[pk] is not None else before[pk]


def _expect(before, after, updated, updated_target):
    for pk, target in before.items():
        expected = updated_target(pk) if pk in updated else target
        assert after[pk] == expected, (pk, target, after[pk])


def test_abort_gives_every_device_not_updated_exactly_its_previous_target(personas, mixed):
    before = targets(mixed["product"])
    rollout, updated, _failed = _run_partway(personas, mixed)

    rollouts.rollout_act(rollout=rollout, action="abort", actor=personas.developer)

    _expect(before, targets(mixed["product"]), updated, lambda pk: 5)


def test_rollback_of_a_live_rollout_targets_updated_devices_at_what_they_ran_before(personas, mixed):
    before = targets(mixed["product"])
    rollout, updated, _failed = _run_partway(personas, mixed)

    rollouts.rollout_act(rollout=rollout, action="rollback", actor=personas.developer)

    _expect(before, targets(mixed["product"]), updated, _ran_before(before, updated))


def test_rollback_of_a_completed_rollout_restores_the_releases_and_the_previous_targets(personas, mixed):
    before = targets(mixed["product"])
    rollout, updated, _failed = _run_partway(personas, mixed, advances=2)  # the last stage is open
    rollouts.rollout_act(rollout=rollout, action="advance", actor=personas.developer)
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.COMPLETED
    assert set(targets(mixed["product"]).values()) >= {5}

    rollouts.rollout_act(rollout=rollout, action="rollback", actor=personas.developer)

    _expect(before, targets(mixed["product"]), updated, _ran_before(before, updated))
    everyone, beta = mixed["groups"]
    everyone.refresh_from_db(), beta.refresh_from_db(), mixed["product"].refresh_from_db()
    assert (everyone.released_firmware.version, beta.released_firmware) == (4, None)
    assert mixed["product"].default_firmware.version == 3
    assert FirmwareUpdate.objects.filter(rollout=rollout, status=FirmwareUpdate.Status.SUCCEEDED).count() == len(updated)
