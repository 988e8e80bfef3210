"""Constraints live in the database, not only in forms: these bypass every form and service."""

import pytest
from django.db import DataError, IntegrityError, transaction

from console.models import Membership, Role
from firmware.models import Firmware, FirmwareUpdate
from groups.models import Group, GroupMembership
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory, MembershipFactory, ProductFactory

pytestmark = pytest.mark.django_db


def refused(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except (IntegrityError, DataError):
        return True
    return False


def test_the_database_refuses_a_duplicate_group_name_in_a_product():
    product = ProductFactory()
    GroupFactory(product=product, name="europe")
    assert refused(lambda: Group.objects.create(product=product, name="europe", color="#000000"))
    assert Group.objects.filter(product=product, name="europe").count() == 1


def test_the_same_group_name_is_fine_in_another_product():
    GroupFactory(product=ProductFactory(), name="europe")
    GroupFactory(product=ProductFactory(), name="europe")
    assert Group.objects.filter(name="europe").count() == 2


@pytest.mark.parametrize("name", ["Europe", "two words", "x" * 65, "", "émoji😀"])
def test_the_database_refuses_a_malformed_group_name(name):
    product = ProductFactory()
    assert refused(lambda: Group.objects.create(product=product, name=name, color="#000000"))


def test_the_database_refuses_a_malformed_color():
    product = ProductFactory()
    assert refused(lambda: Group.objects.create(product=product, name="ok", color="red"))


def test_the_database_refuses_a_second_membership_row_for_a_group_and_device():
    device = DeviceFactory()
    group = GroupFactory(product=device.product, devices=[device])
    assert refused(lambda: GroupMembership.objects.create(group=group, device=device))
    assert GroupMembership.objects.filter(group=group, device=device).count() == 1


def test_the_database_refuses_a_duplicate_device_id_even_across_products():
    DeviceFactory(device_id="a" * 24)
    assert refused(lambda: DeviceFactory(device_id="a" * 24, product=ProductFactory()))


def test_the_database_refuses_a_device_id_that_is_not_24_lowercase_hex():
    assert refused(lambda: DeviceFactory(device_id="A" * 24))
    assert refused(lambda: DeviceFactory(device_id="abc"))


def test_the_database_refuses_a_duplicate_firmware_version_in_a_product():
    product = ProductFactory()
    FirmwareFactory(product=product, version=3)
    assert refused(lambda: FirmwareFactory(product=product, version=3))
    assert Firmware.objects.filter(product=product, version=3).count() == 1


@pytest.mark.parametrize("version", [0, 65536])
def test_the_database_refuses_a_firmware_version_out_of_range(version):
    assert refused(lambda: FirmwareFactory(version=version))


def test_the_database_refuses_two_pending_updates_for_one_device():
    device = DeviceFactory()
    FirmwareUpdate.objects.create(product=device.product, device=device, to_version=2)
    assert refused(lambda: FirmwareUpdate.objects.create(product=device.product, device=device, to_version=3))
    FirmwareUpdate.objects.filter(device=device).update(status="succeeded")
    FirmwareUpdate.objects.create(product=device.product, device=device, to_version=3)
    assert FirmwareUpdate.objects.filter(device=device).count() == 2


def test_the_database_refuses_a_second_owner_and_a_second_membership():
    membership = MembershipFactory(role=Role.OWNER)
    product = membership.product
    assert refused(lambda: MembershipFactory(product=product, role=Role.OWNER))
    assert refused(lambda: Membership.objects.create(user=membership.user, product=product, role=Role.VIEWER))
