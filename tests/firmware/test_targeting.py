"""The precedence rule of DESIGN.md, one rule per test, through the single SQL annotation."""

import pytest

from devices.models import Device
from firmware import targeting
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def product():
    return ProductFactory(slug="acme")


def release(group, firmware):
    group.released_firmware = firmware
    group.save(update_fields=["released_firmware"])


def set_default(product, firmware):
    product.default_firmware = firmware
    product.save(update_fields=["default_firmware"])


def target_of(device):
    row = Device.objects.with_target().get(pk=device.pk)
    return row.target_version, row.target_rule, row.target_group


def test_development_beats_lock_groups_and_default(product):
    v3, v5 = FirmwareFactory(product=product, version=3), FirmwareFactory(product=product, version=5)
    device = DeviceFactory(product=product, development=True, desired_firmware_version=3)
    release(GroupFactory(product=product, devices=[device]), v5)
    set_default(product, v3)
    assert target_of(device) == (None, "development", None)


def test_lock_beats_groups_and_default(product):
    v3, v5 = FirmwareFactory(product=product, version=3), FirmwareFactory(product=product, version=5)
    device = DeviceFactory(product=product, desired_firmware_version=2)
    release(GroupFactory(product=product, devices=[device]), v5)
    set_default(product, v3)
    assert target_of(device) == (2, "locked", None)


def test_highest_version_among_several_groups_wins(product):
    v4, v7, v6 = (FirmwareFactory(product=product, version=v) for v in (4, 7, 6))
    device = DeviceFactory(product=product)
    release(GroupFactory(product=product, name="europe", devices=[device]), v4)
    release(GroupFactory(product=product, name="prerelease", devices=[device]), v7)
    release(GroupFactory(product=product, name="beta", devices=[device]), v6)
    set_default(product, FirmwareFactory(product=product, version=9))
    assert target_of(device) == (7, "group", "prerelease")


def test_equal_versions_are_credited_to_the_first_group_by_name(product):
    v4 = FirmwareFactory(product=product, version=4)
    device = DeviceFactory(product=product)
    release(GroupFactory(product=product, name="zulu", devices=[device]), v4)
    release(GroupFactory(product=product, name="alpha", devices=[device]), v4)
    assert target_of(device) == (4, "group", "alpha")


def test_groups_without_a_release_fall_through_to_the_product_default(product):
    device = DeviceFactory(product=product)
    GroupFactory(product=product, name="europe", devices=[device])
    set_default(product, FirmwareFactory(product=product, version=3))
    assert target_of(device) == (3, "product_default", None)


def test_nothing_at_all_targets_nothing(product):
    device = DeviceFactory(product=product)
    GroupFactory(product=product, devices=[device])
    assert target_of(device) == (None, "none", None)


def test_another_products_default_is_not_used(product):
    other = ProductFactory(slug="other")
    set_default(other, FirmwareFactory(product=other, version=8))
    device = DeviceFactory(product=product)
    assert target_of(device) == (None, "none", None)


def test_the_whole_fleet_is_annotated_in_one_query(product, django_assert_num_queries):
    v2, v5 = FirmwareFactory(product=product, version=2), FirmwareFactory(product=product, version=5)
    set_default(product, v2)
    grouped = DeviceFactory.create_batch(3, product=product)
    release(GroupFactory(product=product, devices=grouped), v5)
    DeviceFactory.create_batch(4, product=product)
    DeviceFactory(product=product, development=True)
    with django_assert_num_queries(1):
        targets = sorted((d.target_version or 0, d.target_rule) for d in Device.objects.with_target())
    assert targets == [(0, "development")] + [(2, "product_default")] * 4 + [(5, "group")] * 3


def test_a_scenario_previews_a_release_without_changing_anything(product):
    v5 = FirmwareFactory(product=product, version=5)
    group = GroupFactory(product=product, devices=DeviceFactory.create_batch(2, product=product, firmware_version=4))
    scenario = targeting.Scenario(releases={group.id: 5})
    rows = Device.objects.with_target(scenario, prefix="new").with_target()
    assert {(d.new_version, d.new_rule, d.new_group, d.target_version) for d in rows} == {(5, "group", group.name, None)}
    group.refresh_from_db()
    assert group.released_firmware is None
    assert v5.released_groups.count() == 0


def test_a_scenario_adds_and_removes_groups(product):
    v3, v6 = FirmwareFactory(product=product, version=3), FirmwareFactory(product=product, version=6)
    device = DeviceFactory(product=product)
    old = GroupFactory(product=product, name="old", devices=[device])
    new = GroupFactory(product=product, name="new")
    release(old, v6)
    release(new, v3)
    scenario = targeting.Scenario(add_groups=frozenset({new.id}), remove_groups=frozenset({old.id}))
    row = Device.objects.with_target(scenario).get(pk=device.pk)
    assert (row.target_version, row.target_rule, row.target_group) == (3, "group", "new")


def test_impact_counts_only_devices_whose_new_target_they_do_not_run(product):
    FirmwareFactory(product=product, version=5)
    on_four = DeviceFactory.create_batch(3, product=product, firmware_version=4)
    on_five = DeviceFactory.create_batch(2, product=product, firmware_version=5)
    locked = DeviceFactory(product=product, firmware_version=4, desired_firmware_version=4)
    group = GroupFactory(product=product, devices=[*on_four, *on_five, locked])
    result = targeting.impact(Device.objects.filter(product=product), targeting.Scenario(releases={group.id: 5}), product_id=product.id)
    assert result.as_json() == {
        "total": 3,
        "by_version": [{"version": 4, "total": 3}],
        "by_target_version": [{"version": 5, "total": 3}],
    }
