"""The Django admin for support staff: scoped to their products, bounded queries, services."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.models import AuditEvent
from groups.models import Group, GroupMembership
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def make_staff(user):
    """The user as admin staff with every model permission on the fleet apps: what they may do
    is then decided by their product role alone."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["console", "devices", "groups", "firmware"]))
    return user


@pytest.fixture
def staff(personas):
    """The Developer persona as admin staff."""
    return make_staff(personas.developer)


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/devices/device/",
        "/admin/groups/group/",
        "/admin/firmware/firmware/",
        "/admin/console/auditevent/",
        "/admin/console/membership/",
    ],
)
def test_admin_list_pages_issue_as_many_queries_for_many_rows_as_for_few(client, personas, staff, url):
    def grow(n):
        devices = DeviceFactory.create_batch(n, product=personas.product)
        for _ in range(n):
            group = GroupFactory(product=personas.product, devices=devices)
            FirmwareFactory(product=personas.product)
            AuditEvent.record(product=personas.product, actor=staff, action="test", obj=group)

    client.force_login(staff)
    grow(2)
    few = queries_for(client, url)
    grow(12)
    assert queries_for(client, url) == few


def test_staff_see_only_their_products_devices(client, personas, staff):
    mine = DeviceFactory(product=personas.product, name="mine")
    theirs = DeviceFactory(product=personas.other_product, name="theirs")
    client.force_login(staff)

    listing = client.get("/admin/devices/device/").content.decode()
    assert mine.device_id in listing and theirs.device_id not in listing
    assert client.get(f"/admin/devices/device/{theirs.pk}/change/").status_code == 404
    assert client.get(f"/admin/devices/device/{mine.pk}/change/").status_code == 200


def test_a_superuser_sees_every_product(client, personas):
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    theirs = DeviceFactory(product=personas.other_product)
    client.force_login(admin_user)
    assert theirs.device_id in client.get("/admin/devices/device/").content.decode()


def test_devices_are_searchable_by_id_name_and_serial(client, personas, staff):
    device = DeviceFactory(product=personas.product, device_id="feed" + "0" * 20, name="Truck 9", serial_number="SER-77")
    DeviceFactory(product=personas.product, name="unrelated-tracker")
    client.force_login(staff)
    for term in ("feed", "truck 9", "SER-77"):
        page = client.get("/admin/devices/device/", {"q": term}).content.decode()
        assert device.device_id in page and "unrelated-tracker" not in page, term


def test_devices_filter_by_group_and_lock(client, personas, staff):
    inside = DeviceFactory(product=personas.product, desired_firmware_version=3)
    outside = DeviceFactory(product=personas.product)
    group = GroupFactory(product=personas.product, devices=[inside])
    client.force_login(staff)
    page = client.get("/admin/devices/device/", {"group": group.pk}).content.decode()
    assert inside.device_id in page and outside.device_id not in page
    page = client.get("/admin/devices/device/", {"locked": "yes"}).content.decode()
    assert inside.device_id in page and outside.device_id not in page


def test_add_to_group_previews_the_impact_then_goes_through_the_membership_service(client, personas, staff):
    firmware = FirmwareFactory(product=personas.product, version=7)
    group = GroupFactory(product=personas.product, name="europe")
    group.released_firmware = firmware
    group.save()
    devices = DeviceFactory.create_batch(3, product=personas.product, firmware_version=6)
    client.force_login(staff)
    chosen = {"action": "add_to_group", "_selected_action": [d.pk for d in devices], "group": group.pk}

    preview = client.post("/admin/devices/device/", {**chosen, "preview": "Next"})
    assert preview.status_code == 200
    assert "<strong>3</strong> devices will be targeted for an OTA firmware update" in preview.content.decode()
    assert GroupMembership.objects.filter(group=group).count() == 0

    response = client.post("/admin/devices/device/", {**chosen, "apply": "Confirm"})
    assert response.status_code == 302
    assert set(GroupMembership.objects.filter(group=group).values_list("device_id", flat=True)) == {d.pk for d in devices}
    event = AuditEvent.objects.get(action="device.groups")
    assert event.actor == staff and sorted(event.device_ids) == sorted(d.device_id for d in devices)
    assert event.details["added"] == ["europe"]


def test_remove_from_group_takes_only_the_selected_devices_out(client, personas, staff):
    devices = DeviceFactory.create_batch(3, product=personas.product)
    group = GroupFactory(product=personas.product, devices=devices)
    client.force_login(staff)
    client.post("/admin/devices/device/", {
        "action": "remove_from_group", "_selected_action": [devices[0].pk], "group": group.pk, "apply": "Confirm",
    })
    assert set(GroupMembership.objects.filter(group=group).values_list("device_id", flat=True)) == {d.pk for d in devices[1:]}


def test_a_staff_member_cannot_add_devices_to_another_products_group(client, personas, staff):
    device = DeviceFactory(product=personas.product)
    foreign = GroupFactory(product=personas.other_product)
    client.force_login(staff)
    response = client.post("/admin/devices/device/", {
        "action": "add_to_group", "_selected_action": [device.pk], "group": foreign.pk, "apply": "Confirm",
    })
    assert response.status_code == 200  # the form is shown again with an error
    assert not GroupMembership.objects.filter(group=foreign).exists()


def test_the_membership_inline_saves_through_the_service_and_is_audited(client, personas, staff):
    device = DeviceFactory(product=personas.product)
    group = GroupFactory(product=personas.product, name="asia")
    client.force_login(staff)
    response = client.post(f"/admin/devices/device/{device.pk}/change/", {
        "product": personas.product.pk, "device_id": device.device_id, "name": device.name,
        "serial_number": device.serial_number, "notes": "", "platform_id": 12,
        "memberships-TOTAL_FORMS": 1, "memberships-INITIAL_FORMS": 0,
        "memberships-MIN_NUM_FORMS": 0, "memberships-MAX_NUM_FORMS": 1000,
        "memberships-0-group": group.pk, "memberships-0-device": device.pk,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    assert GroupMembership.objects.filter(group=group, device=device).exists()
    assert AuditEvent.objects.filter(action="device.groups", device_count=1).touching_device(device.device_id).exists()


def test_groups_list_their_device_counts(client, personas, staff):
    GroupFactory(product=personas.product, name="counted", devices=DeviceFactory.create_batch(4, product=personas.product))
    client.force_login(staff)
    response = client.get("/admin/groups/group/")
    assert response.context["cl"].result_list.get(name="counted").device_count == 4


def test_a_group_created_in_the_admin_goes_through_the_service(client, personas, staff):
    client.force_login(staff)
    response = client.post("/admin/groups/group/add/", {
        "product": personas.product.pk, "name": "from-admin", "description": "", "color": "#112233",
    })
    assert response.status_code == 302
    assert Group.objects.filter(product=personas.product, name="from-admin", color="#112233").exists()
    assert AuditEvent.objects.filter(action="group.create", object_repr="from-admin").exists()


def test_an_invalid_group_name_in_the_admin_is_shown_and_nothing_saved(client, personas, staff):
    client.force_login(staff)
    response = client.post("/admin/groups/group/add/", {
        "product": personas.product.pk, "name": "Bad Name", "description": "", "color": "#112233",
    })
    assert response.status_code == 200
    assert "Lowercase letters, digits" in response.content.decode()
    assert not Group.objects.filter(name="Bad Name").exists()


def test_audit_events_are_read_only(client, personas, staff):
    event = AuditEvent.record(product=personas.product, actor=staff, action="test")
    client.force_login(staff)
    assert client.get(f"/admin/console/auditevent/{event.pk}/change/").status_code == 200
    assert client.post(f"/admin/console/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_product_filter_offers_only_the_staff_members_products(client, personas, staff):
    DeviceFactory(product=personas.product)
    DeviceFactory(product=personas.other_product)
    client.force_login(staff)
    page = client.get("/admin/devices/device/").content.decode()
    # With a single product of theirs there is nothing to choose, so the filter is not shown.
    assert f"product__id__exact={personas.other_product.pk}" not in page
    assert personas.other_product.name not in page


def test_a_device_cannot_be_moved_to_another_product_in_the_admin(client, personas):
    device = DeviceFactory(product=personas.product, name="stays")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(f"/admin/devices/device/{device.pk}/change/", {
        "product": personas.other_product.pk, "device_id": device.device_id, "name": "renamed",
        "serial_number": device.serial_number, "notes": "", "platform_id": 12,
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0,
        "memberships-MIN_NUM_FORMS": 0, "memberships-MAX_NUM_FORMS": 1000,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    device.refresh_from_db()
    assert (device.product_id, device.name) == (personas.product.pk, "renamed")


def test_the_admin_shows_whether_a_device_key_is_set_and_when_never_the_hash(staff, client):
    from tests.gateway import keyed_device

    device, _raw = keyed_device(staff.memberships.get().product)
    client.force_login(staff)

    html = client.get(f"/admin/devices/device/{device.pk}/change/").content.decode()

    assert "Device key:" in html and "Set" in html and "Device key rotated:" in html
    assert device.key_hash not in html
