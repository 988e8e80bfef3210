"""firmware_release: what a release, an unrelease and the product default do to stored state."""

import pytest
from django.core.exceptions import ValidationError

from console.models import AuditEvent
from devices.models import Device
from firmware import services
from firmware.models import FirmwareUpdate
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

pytestmark = pytest.mark.django_db


def target(device):
    return Device.objects.with_target().get(pk=device.pk).target_version


def test_releasing_to_a_group_targets_its_devices(personas):
    product = personas.product
    v5 = proven_firmware(product, 5)
    device = DeviceFactory(product=product, firmware_version=4)
    group = GroupFactory(product=product, name="beta", devices=[device])

    services.firmware_release(firmware=v5, groups=[group], actor=personas.developer)

    group.refresh_from_db()
    v5.refresh_from_db()
    assert group.released_firmware == v5
    assert v5.ever_released is True
    assert target(device) == 5


def test_releasing_to_a_group_replaces_its_previous_release(personas):
    product = personas.product
    v4, v5 = proven_firmware(product, 4), proven_firmware(product, 5)
    group = GroupFactory(product=product, name="beta")
    services.firmware_release(firmware=v4, groups=[group], actor=personas.developer)

    services.firmware_release(firmware=v5, groups=[group], actor=personas.developer)

    group.refresh_from_db()
    assert group.released_firmware == v5
    assert list(v4.released_groups.all()) == []


def test_the_groups_list_is_complete_so_unlisted_groups_lose_the_release(personas):
    product = personas.product
    v5 = proven_firmware(product, 5)
    beta, europe = GroupFactory(product=product, name="beta"), GroupFactory(product=product, name="europe")
    services.firmware_release(firmware=v5, groups=[beta, europe], actor=personas.developer)

    services.firmware_release(firmware=v5, groups=[europe], actor=personas.developer)

    assert sorted(group.name for group in v5.released_groups.all()) == ["europe"]


def test_an_empty_groups_list_unreleases_from_every_group_and_leaves_the_default(personas):
    product = personas.product
    v5 = proven_firmware(product, 5)
    beta = GroupFactory(product=product, name="beta")
    services.firmware_release(firmware=v5, groups=[beta], product_default=True, actor=personas.developer)

    services.firmware_release(firmware=v5, groups=[], actor=personas.developer)

    product.refresh_from_db()
    assert list(v5.released_groups.all()) == []
    assert product.default_firmware == v5


def test_groups_none_leaves_the_groups_as_they_are(personas):
    product = personas.product
    v5 = proven_firmware(product, 5)
    beta = GroupFactory(product=product, name="beta")
    services.firmware_release(firmware=v5, groups=[beta], actor=personas.developer)

    services.firmware_release(firmware=v5, product_default=True, actor=personas.developer)

    product.refresh_from_db()
    assert [group.name for group in v5.released_groups.all()] == ["beta"]
    assert product.default_firmware == v5


def test_product_default_true_then_false_sets_and_clears_it(personas):
    product = personas.product
    v5 = proven_firmware(product, 5)
    device = DeviceFactory(product=product, firmware_version=1)

    services.firmware_release(firmware=v5, product_default=True, actor=personas.developer)
    product.refresh_from_db()
    assert product.default_firmware == v5
    assert target(device) == 5

    services.firmware_release(firmware=v5, product_default=False, actor=personas.developer)
    product.refresh_from_db()
    assert product.default_firmware is None
    assert target(device) is None


def test_product_default_false_leaves_another_versions_default_alone(personas):
    product = personas.product
    v4, v5 = proven_firmware(product, 4), proven_firmware(product, 5)
    services.firmware_release(firmware=v4, product_default=True, actor=personas.developer)

    services.firmware_release(firmware=v5, product_default=False, actor=personas.developer)

    product.refresh_from_db()
    assert product.default_firmware == v4


def test_the_highest_version_across_a_devices_groups_wins(personas):
    product = personas.product
    v4, v7 = proven_firmware(product, 4), proven_firmware(product, 7)
    device = DeviceFactory(product=product)
    services.firmware_release(firmware=v7, groups=[GroupFactory(product=product, name="alpha", devices=[device])], actor=personas.developer)
    services.firmware_release(firmware=v4, groups=[GroupFactory(product=product, name="beta", devices=[device])], actor=personas.developer)

    row = Device.objects.with_target().get(pk=device.pk)
    assert (row.target_version, row.target_rule, row.target_group) == (7, "group", "alpha")


def test_locked_and_development_devices_are_untouched_by_a_release(personas):
    product = personas.product
    v3, v5 = proven_firmware(product, 3), proven_firmware(product, 5)
    locked = DeviceFactory(product=product, firmware_version=3, desired_firmware_version=3)
    development = DeviceFactory(product=product, firmware_version=9, development=True)
    group = GroupFactory(product=product, name="beta", devices=[locked, development])

    services.firmware_release(firmware=v5, groups=[group], product_default=True, actor=personas.developer)

    assert target(locked) == 3
    assert target(development) is None
    event = AuditEvent.objects.get(action="firmware.release")
    assert event.details["impacted"] == 0
    assert not FirmwareUpdate.objects.exists()


def test_a_version_no_device_ever_ran_is_refused_and_nothing_changes(personas):
    product = personas.product
    v6 = FirmwareFactory(product=product, version=6)
    group = GroupFactory(product=product, name="beta")

    with pytest.raises(ValidationError) as raised:
        services.firmware_release(firmware=v6, groups=[group], product_default=True, actor=personas.developer)

    assert "development device first" in raised.value.message_dict["version"][0]
    group.refresh_from_db()
    product.refresh_from_db()
    v6.refresh_from_db()
    assert group.released_firmware is None and product.default_firmware is None
    assert v6.ever_released is False
    assert not AuditEvent.objects.filter(action="firmware.release").exists()


def test_a_recorded_version_that_no_device_reported_through_the_gateway_proves_nothing(personas):
    product = personas.product
    v6 = FirmwareFactory(product=product, version=6)
    DeviceFactory(product=product, firmware_version=6, development=True)  # not from a report

    with pytest.raises(ValidationError, match="No device of this product has reported running v6 yet"):
        services.firmware_release(firmware=v6, product_default=True, actor=personas.developer)

    product.refresh_from_db()
    assert product.default_firmware is None


def test_reproduction_a_version_once_reported_stays_releasable_after_its_devices_move_on(personas):
    """Issue 13: a development device reports v9201; v9201 is released to a group; the device
    reports v9202; v9201 is unreleased; releasing it as product default used to fail with "No
    device of this product has reported running v9201 yet"."""
    from firmware.gateway import Credentials, gateway_handshake
    from tests.gateway import keyed_device

    product = personas.product
    v9201 = FirmwareFactory(product=product, version=9201)
    FirmwareFactory(product=product, version=9202)
    device, _key = keyed_device(product)
    services.device_development_set(device=device, development=True, actor=personas.developer)
    credentials = Credentials(device.device_id, device.key_hash)
    gateway_handshake(credentials=credentials, firmware_version=9201)
    group = GroupFactory(product=product, name="testers")
    services.firmware_release(firmware=v9201, groups=[group], actor=personas.developer)
    gateway_handshake(credentials=credentials, firmware_version=9202)
    services.firmware_release(firmware=v9201, groups=[], actor=personas.developer)

    services.firmware_release(firmware=v9201, product_default=True, actor=personas.developer)

    product.refresh_from_db()
    v9201.refresh_from_db()
    assert product.default_firmware == v9201
    assert v9201.first_reported_by == device.device_id and v9201.ever_released


def test_a_version_reported_once_and_never_released_stays_releasable(personas):
    from firmware.gateway import Credentials, gateway_handshake
    from tests.gateway import keyed_device

    product = personas.product
    v7 = FirmwareFactory(product=product, version=7)
    device, _key = keyed_device(product, development=True)
    credentials = Credentials(device.device_id, device.key_hash)
    gateway_handshake(credentials=credentials, firmware_version=7)
    gateway_handshake(credentials=credentials, firmware_version=8)
    device.delete()  # even the device that ran it is gone

    services.firmware_release(firmware=v7, product_default=True, actor=personas.developer)

    product.refresh_from_db()
    assert product.default_firmware == v7


def test_unreleasing_never_needs_a_device_to_have_run_it(personas):
    product = personas.product
    v6 = FirmwareFactory(product=product, version=6)
    group = GroupFactory(product=product, name="beta", released_firmware=v6)

    services.firmware_release(firmware=v6, groups=[], actor=personas.developer)

    group.refresh_from_db()
    assert group.released_firmware is None


def test_another_products_group_is_refused(personas):
    v5 = proven_firmware(personas.product, 5)
    foreign = GroupFactory(product=personas.other_product, name="beta")

    with pytest.raises(ValidationError):
        services.firmware_release(firmware=v5, groups=[foreign], actor=personas.developer)

    foreign.refresh_from_db()
    assert foreign.released_firmware is None


def test_a_release_records_groups_before_and_after_and_the_impact(personas):
    product = personas.product
    v5 = proven_firmware(product, 5)
    devices = DeviceFactory.create_batch(3, product=product, firmware_version=4)
    alpha = GroupFactory(product=product, name="alpha")
    beta = GroupFactory(product=product, name="beta", devices=devices)
    services.firmware_release(firmware=v5, groups=[alpha], actor=personas.developer)

    services.firmware_release(firmware=v5, groups=[beta], intelligent=True, actor=personas.developer)

    event = AuditEvent.objects.filter(action="firmware.release").first()
    assert event.actor == personas.developer
    assert event.details["groups_before"] == ["alpha"]
    assert event.details["groups_after"] == ["beta"]
    assert event.details["impacted"] == 3
    assert event.details["intelligent"] is True
    v5.refresh_from_db()
    assert v5.intelligent is True


def test_release_and_impact_take_the_same_number_of_queries_for_any_fleet_size(personas, django_assert_num_queries):
    product = personas.product
    v5 = proven_firmware(product, 5)
    beta = GroupFactory(product=product, name="beta", devices=DeviceFactory.create_batch(2, product=product))
    services.firmware_release(firmware=v5, groups=[beta], actor=personas.developer)
    for size in (0, 60):
        GroupFactory(product=product, devices=DeviceFactory.create_batch(size, product=product))
        DeviceFactory.create_batch(size, product=product)
        # savepoint, lock product, firmware (with its proof) and groups, groups before, released
        # versions, the live rollout (none) twice (the release waits for one; the rule reads it),
        # impact, devices kept on a version by a stopped rollout, two group updates, product
        # default, audit event, release savepoint
        with django_assert_num_queries(15):
            services.firmware_release(firmware=v5, groups=[beta], product_default=True, actor=personas.developer)
        # groups before, the versions released to groups, then the impact over the whole fleet
        # in one statement, and the live rollout (none) that the rule reads
        with django_assert_num_queries(4):
            impact = services.release_plan(firmware=v5, groups=[], product_default=False).impact()
        assert impact.total == 0
        services.firmware_release(firmware=v5, groups=[beta], product_default=False, actor=personas.developer)
