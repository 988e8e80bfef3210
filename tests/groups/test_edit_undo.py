import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from console.models import AuditEvent, Membership
from devices.models import Device
from groups import services, undo
from groups.models import GroupMembership, MembershipChange
from tests.conftest import id_lookups
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db


def groups_of(device):
    return sorted(GroupMembership.objects.filter(device=device).values_list("group__name", flat=True))


def member(user, product):
    return Membership.objects.select_related("product", "user").get(user=user, product=product)


@pytest.fixture
def fleet(personas):
    product = personas.product
    devices = DeviceFactory.create_batch(4, product=product, firmware_version=3)
    europe = GroupFactory(product=product, name="europe", devices=devices[:2])
    beta = GroupFactory(product=product, name="beta", devices=[devices[0]])
    return devices, europe, beta


def edit(personas, devices, *, add=(), remove=()):
    services.devices_edit_groups(
        product=personas.product, devices=Device.objects.filter(pk__in=[d.pk for d in devices]),
        add=add, remove=remove, actor=personas.developer,
    )
    return AuditEvent.objects.filter(action="device.groups").latest("id")


def test_a_batch_edit_keeps_which_device_joined_or_left_which_group(personas, fleet):
    devices, europe, beta = fleet

    event = edit(personas, devices[:3], add=[beta], remove=[europe])

    changes = sorted(
        (change.device_id, change.group_id, change.joined) for change in MembershipChange.objects.filter(event=event)
    )
    # devices[0] was already in beta; devices[2] was never in europe.
    assert changes == sorted([
        (devices[1].pk, beta.pk, True), (devices[2].pk, beta.pk, True),
        (devices[0].pk, europe.pk, False), (devices[1].pk, europe.pk, False),
    ])


def test_undo_reverts_every_change_of_the_edit_and_records_its_own_event(personas, fleet):
    devices, europe, beta = fleet
    event = edit(personas, devices[:3], add=[beta], remove=[europe])

    changed = undo.edit_undo(membership=member(personas.developer, personas.product), event=event,
                             actor=personas.developer)

    assert changed == 3
    assert [groups_of(device) for device in devices] == [["beta", "europe"], ["europe"], [], []]
    undone = AuditEvent.objects.get(action="device.groups_undo")
    assert undone.details == {"undoes": event.pk, "added": ["europe"], "removed": ["beta"]}
    assert undone.device_count == 3


def test_undo_leaves_alone_memberships_changed_since_and_names_them(personas, fleet):
    devices, europe, beta = fleet
    event = edit(personas, devices[:3], add=[beta], remove=[europe])
    # Since then: devices[1] left beta again, devices[0] went back into europe.
    edit(personas, [devices[1]], remove=[beta])
    edit(personas, [devices[0]], add=[europe])
    membership = member(personas.developer, personas.product)

    plan = undo.edit_undo_preview(membership=membership, event=event)

    assert plan.leave == [("beta", 1)] and plan.rejoin == [("europe", 1)]
    assert plan.kept_count == 2
    assert sorted((kept["device"], kept["group"], kept["why"]) for kept in plan.kept) == [
        (devices[0].device_id, "europe", "back in the group already"),
        (devices[1].device_id, "beta", "no longer in the group"),
    ]
    undo.edit_undo(membership=membership, event=event, actor=personas.developer)
    assert [groups_of(device) for device in devices] == [["beta", "europe"], ["europe"], [], []]


def test_the_preview_shows_the_firmware_impact_like_the_batch_edit_preview(personas, fleet):
    devices, europe, beta = fleet
    v5 = FirmwareFactory(product=personas.product, version=5)
    beta.released_firmware = v5
    beta.save(update_fields=["released_firmware"])
    added = [devices[2], devices[3]]
    expected = services.devices_edit_groups_impact(devices=Device.objects.filter(pk__in=[d.pk for d in added]),
                                                   add=[beta])
    event = edit(personas, added, add=[beta])

    plan = undo.edit_undo_preview(membership=member(personas.developer, personas.product), event=event)

    # Undoing gives them back the target they had: nothing newly targeted, both leave beta.
    assert expected.total == 2 and plan.impact.total == 0 and plan.leave == [("beta", 2)]
    reverse = edit(personas, added, remove=[beta])
    edit(personas, added, add=[beta])
    back = undo.edit_undo_preview(membership=member(personas.developer, personas.product), event=reverse)
    assert back.rejoin == [] and back.kept_count == 2
    assert undo.edit_undo_preview(
        membership=member(personas.developer, personas.product), event=event
    ).impact.total == 0


def test_undoing_a_removal_targets_the_devices_again_for_the_group_release(personas, fleet):
    devices, europe, beta = fleet
    v5 = FirmwareFactory(product=personas.product, version=5)
    europe.released_firmware = v5
    europe.save(update_fields=["released_firmware"])
    event = edit(personas, devices[:2], remove=[europe])

    plan = undo.edit_undo_preview(membership=member(personas.developer, personas.product), event=event)

    assert plan.rejoin == [("europe", 2)]
    assert (plan.impact.total, plan.impact.by_target_version) == (2, {5: 2})


def test_undo_of_an_edit_already_undone_changes_nothing_and_says_so(personas, fleet):
    devices, europe, beta = fleet
    event = edit(personas, devices[2:], add=[beta])
    membership = member(personas.developer, personas.product)
    undo.edit_undo(membership=membership, event=event, actor=personas.developer)

    with pytest.raises(ValidationError, match="Nothing to undo"):
        undo.edit_undo(membership=membership, event=event, actor=personas.developer)

    assert AuditEvent.objects.filter(action="device.groups_undo").count() == 1
    assert undo.edit_undo_preview(membership=membership, event=event).undone_by == [
        AuditEvent.objects.get(action="device.groups_undo").pk
    ]


def test_a_restricted_member_undoes_only_their_own_edits_within_their_groups(personas, fleet):
    devices, europe, beta = fleet
    mine = DeviceFactory(product=personas.product)
    personas.restricted_group.memberships.create(device=mine)
    others = edit(personas, devices[2:], add=[beta])
    restricted = member(personas.restricted, personas.product)

    own = services.devices_edit_groups(
        product=personas.product, devices=Device.objects.filter(pk=mine.pk), remove=[personas.restricted_group],
        actor=personas.restricted,
    )

    with pytest.raises(Http404):
        undo.undoable_event(restricted, others.pk)
    event = undo.undoable_event(restricted, AuditEvent.objects.get(actor=personas.restricted).pk)
    assert own == 1 and undo.edit_undo(membership=restricted, event=event, actor=personas.restricted) == 1
    assert groups_of(mine) == ["partner-fleet"]


def test_undo_writes_in_a_bounded_number_of_queries(personas, fleet, django_assert_num_queries):
    devices, europe, beta = fleet
    many = DeviceFactory.create_batch(30, product=personas.product)
    event = edit(personas, many, add=[beta, europe])
    membership = member(personas.developer, personas.product)

    with django_assert_num_queries(9 + id_lookups(writes=1)):
        changed = undo.edit_undo(membership=membership, event=event, actor=personas.developer)

    assert changed == 30 and GroupMembership.objects.filter(device__in=many).count() == 0
