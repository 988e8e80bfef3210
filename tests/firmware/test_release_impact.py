"""A release plan's impact against a brute-force computation of the precedence rule over random fleets."""

import random

import pytest
from django.db.models import Count, Exists, OuterRef, Q

from devices.models import Device
from firmware import services
from firmware.models import Firmware, FirmwareUpdate
from groups.models import Group, GroupMembership
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db

VERSIONS = [2, 3, 5, 8]


def brute_target(device, memberships, releases, default):
    """DESIGN.md's rule, written out independently of the SQL."""
    if device.development:
        return None
    if device.desired_firmware_version is not None:
        return device.desired_firmware_version
    released = [releases[group_id] for group_id in memberships.get(device.id, ()) if releases.get(group_id)]
    if released:
        return max(released)
    return default


def brute_impact(devices, memberships, releases_before, default_before, releases_after, default_after):
    by_version = {}
    for device in devices:
        old = brute_target(device, memberships, releases_before, default_before)
        new = brute_target(device, memberships, releases_after, default_after)
        if new is not None and new != old and new != device.firmware_version:
            by_version[device.firmware_version] = by_version.get(device.firmware_version, 0) + 1
    return sum(by_version.values()), by_version


def random_fleet(product, rng):
    firmware = {version: FirmwareFactory(product=product, version=version) for version in VERSIONS}
    groups = [GroupFactory(product=product, name=f"g{index}") for index in range(5)]
    for group in groups:
        if rng.random() < 0.5:
            group.released_firmware = firmware[rng.choice(VERSIONS)]
            group.save(update_fields=["released_firmware"])
    if rng.random() < 0.5:
        product.default_firmware = firmware[rng.choice(VERSIONS)]
        product.save(update_fields=["default_firmware"])
    devices = [
        DeviceFactory(
            product=product,
            firmware_version=rng.choice([None, *VERSIONS]),
            desired_firmware_version=rng.choice(VERSIONS) if rng.random() < 0.15 else None,
            development=rng.random() < 0.1,
        )
        for _ in range(60)
    ]
    GroupMembership.objects.bulk_create(
        GroupMembership(group=group, device=device)
        for device in devices for group in groups if rng.random() < 0.35
    )
    return firmware, groups, devices


@pytest.mark.parametrize("seed", range(6))
def test_release_impact_matches_a_brute_force_count_over_a_random_fleet(personas, seed):
    rng = random.Random(seed)
    product = personas.product
    firmware, groups, _devices = random_fleet(product, rng)
    DeviceFactory.create_batch(3, product=personas.other_product, firmware_version=2)
    devices = list(Device.objects.filter(product=product))
    memberships = {}
    for device_id, group_id in GroupMembership.objects.values_list("device_id", "group_id"):
        memberships.setdefault(device_id, []).append(group_id)

    for _ in range(8):
        product.refresh_from_db()
        releases_before = {group.id: group.released_firmware.version if group.released_firmware_id else None
                           for group in Group.objects.filter(product=product).select_related("released_firmware")}
        default_before = product.default_firmware.version if product.default_firmware_id else None
        version = rng.choice(VERSIONS)
        chosen = [group for group in groups if rng.random() < 0.4] if rng.random() < 0.8 else None
        product_default = rng.choice([True, False, None])

        releases_after = dict(releases_before)
        if chosen is not None:
            for group_id, released in releases_before.items():
                if released == version:
                    releases_after[group_id] = None
            for group in chosen:
                releases_after[group.id] = version
        default_after = default_before
        if product_default is True:
            default_after = version
        elif product_default is False and default_before == version:
            default_after = None

        impact = services.release_plan(firmware=firmware[version], groups=chosen, product_default=product_default).impact()
        total, by_version = brute_impact(devices, memberships, releases_before, default_before, releases_after, default_after)
        assert (impact.total, impact.by_running_version) == (total, by_version)

        # Apply it for real (proof of running is not the point here) and go on from the new state.
        Firmware.objects.filter(product=product).update(ever_released=True)
        DeviceFactory(product=product, firmware_version=version, development=True)
        services.firmware_release(firmware=firmware[version], groups=chosen, product_default=product_default,
                                  actor=personas.developer)
        devices = list(Device.objects.filter(product=product))


def test_a_restricted_members_impact_counts_only_the_devices_they_see(personas):
    from console.models import Membership

    product = personas.product
    v5 = FirmwareFactory(product=product, version=5)
    seen = DeviceFactory.create_batch(2, product=product, firmware_version=4)
    DeviceFactory.create_batch(3, product=product, firmware_version=4)
    GroupMembership.objects.bulk_create(GroupMembership(group=personas.restricted_group, device=device) for device in seen)
    membership = Membership.objects.get(user=personas.restricted, product=product)

    visible = services.release_plan(firmware=v5, product_default=True).impact(Device.objects.visible_to(membership))

    assert visible.total == 2
    assert services.release_plan(firmware=v5, product_default=True).impact().total == 5


@pytest.mark.parametrize("seed", range(4))
def test_the_fleet_form_of_the_rule_agrees_with_with_target_on_impacts_and_rollouts(personas, seed):
    """The set-based (fleet) form of the precedence rule against its per-row annotation."""
    rng = random.Random(100 + seed)
    product = personas.product
    firmware, groups, devices = random_fleet(product, rng)
    for device in devices:
        if rng.random() < 0.3:
            FirmwareUpdate.objects.create(product=product, device=device, to_version=rng.choice(VERSIONS),
                                          status=rng.choice(["failed", "succeeded"]))
        if rng.random() < 0.2:
            FirmwareUpdate.objects.create(product=product, device=device, to_version=rng.choice(VERSIONS))
    fleet = Device.objects.filter(product=product)

    for _ in range(6):
        version = rng.choice(VERSIONS)
        chosen = [group for group in groups if rng.random() < 0.4]
        product_default = rng.choice([True, False, None])
        scenario = services.release_plan(firmware=firmware[version], groups=chosen, product_default=product_default).scenario
        per_row = {}
        for row in fleet.with_target(prefix="current").with_target(scenario, prefix="after").values(
            "firmware_version", "current_version", "after_version"
        ):
            after = row["after_version"]
            if after is not None and after != row["current_version"] and after != row["firmware_version"]:
                per_row[row["firmware_version"]] = per_row.get(row["firmware_version"], 0) + 1
        impact = services.release_plan(firmware=firmware[version], groups=chosen, product_default=product_default).impact()
        assert impact.by_running_version == per_row

    rollouts = {rollout.version: rollout for rollout in Firmware.objects.rollout_progress(devices=fleet, product=product)}
    for version in VERSIONS:
        targeted = fleet.with_target().filter(target_version=version)
        on_target = Q(firmware_version=version)
        failed_attempt = FirmwareUpdate.objects.filter(device=OuterRef("pk"), to_version=version, status="failed")
        pending_attempt = FirmwareUpdate.objects.filter(device=OuterRef("pk"), status="pending")
        expected = targeted.aggregate(
            targeted=Count("id"),
            updated=Count("id", filter=on_target),
            failed=Count("id", filter=~on_target & Q(Exists(failed_attempt)) & ~Q(Exists(pending_attempt))),
        )
        rollout = rollouts[version]
        assert (rollout.targeted, rollout.updated, rollout.failed) == (expected["targeted"], expected["updated"], expected["failed"])
