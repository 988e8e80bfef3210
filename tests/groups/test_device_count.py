"""Group.device_count is kept by the database, whichever way memberships change."""

import pytest

from devices.models import Device
from groups import services
from groups.models import Group, GroupMembership
from tests.factories import DeviceFactory, GroupFactory

pytestmark = pytest.mark.django_db


def counts(*groups):
    return [Group.objects.get(pk=group.pk).device_count for group in groups]


def test_batch_edits_single_rows_and_cascades_keep_the_count_exact(personas):
    product, actor = personas.product, personas.developer
    europe, beta = GroupFactory(product=product, name="europe"), GroupFactory(product=product, name="beta")
    devices = DeviceFactory.create_batch(5, product=product)
    every = Device.objects.filter(pk__in=[device.pk for device in devices])

    services.devices_edit_groups(product=product, actor=actor, devices=every, add=[europe, beta])
    assert counts(europe, beta) == [5, 5]

    first_two = Device.objects.filter(pk__in=[devices[0].pk, devices[1].pk])
    services.devices_edit_groups(product=product, actor=actor, devices=first_two, remove=[beta])
    assert counts(europe, beta) == [5, 3]

    GroupMembership.objects.filter(group=europe, device=devices[4]).delete()
    GroupMembership.objects.create(group=beta, device=devices[0])
    assert counts(europe, beta) == [4, 4]

    Device.objects.filter(pk__in=[devices[2].pk, devices[3].pk]).delete()  # cascades to memberships
    assert counts(europe, beta) == [2, 2]
    assert counts(europe, beta) == [
        GroupMembership.objects.filter(group=europe).count(),
        GroupMembership.objects.filter(group=beta).count(),
    ]


def test_saving_a_stale_group_instance_does_not_overwrite_the_count(personas):
    group = GroupFactory(product=personas.product, name="stale")
    stale = Group.objects.get(pk=group.pk)
    GroupMembership.objects.create(group=group, device=DeviceFactory(product=personas.product))

    stale.description = "renamed while a device joined"
    stale.save()

    fresh = Group.objects.get(pk=group.pk)
    assert (fresh.description, fresh.device_count) == ("renamed while a device joined", 1)


def test_a_batch_edit_that_changes_nothing_leaves_no_audit_event(personas):
    from console.models import AuditEvent

    product = personas.product
    devices = DeviceFactory.create_batch(2, product=product)
    europe = GroupFactory(product=product, name="europe", devices=devices)
    every = Device.objects.filter(pk__in=[device.pk for device in devices])

    assert services.devices_edit_groups(product=product, actor=personas.developer, devices=every, add=[europe]) == 0
    assert not AuditEvent.objects.exists()

    assert services.devices_edit_groups(product=product, actor=personas.developer, devices=every, remove=[europe]) == 2
    event = AuditEvent.objects.get()
    assert (event.device_count, event.device_ids) == (2, sorted(d.device_id for d in devices))
