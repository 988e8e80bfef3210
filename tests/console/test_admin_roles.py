"""The admin follows the product role object by object, keeps the team rules, offers only the
object's product's choices, and answers bad filters with a 400."""

import pytest
from django.contrib.auth.models import Permission

from console.models import AuditEvent, Membership, Role
from devices.models import Device
from groups.models import Group, GroupMembership
from tests.console.test_admin import make_staff
from tests.factories import DeviceFactory, GroupFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def device_form(device, **extra):
    return {
        "name": device.name, "notes": device.notes,
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0,
        "memberships-MIN_NUM_FORMS": 0, "memberships-MAX_NUM_FORMS": 1000, **extra,
    }


def test_a_view_only_member_of_another_product_cannot_change_its_groups_or_delete_its_devices(client, personas):
    # The outsider (Owner of "other") is also View-only in Acme.
    MembershipFactory(user=personas.outsider, product=personas.product, role=Role.VIEWER)
    staff = make_staff(personas.outsider)
    group = GroupFactory(product=personas.product, name="europe")
    device = DeviceFactory(product=personas.product)
    client.force_login(staff)

    assert client.get(f"/admin/groups/group/{group.pk}/change/").context["has_change_permission"] is False
    edit = client.post(f"/admin/groups/group/{group.pk}/change/", {"name": "renamed", "description": "", "color": "#112233"})
    delete = client.post(f"/admin/devices/device/{device.pk}/delete/", {"post": "yes"})

    assert (edit.status_code, delete.status_code) == (403, 403)
    group.refresh_from_db()
    assert group.name == "europe" and Device.objects.filter(pk=device.pk).exists()
    assert not AuditEvent.objects.exists()


def test_support_can_look_but_not_edit_devices_or_run_the_group_actions(client, personas):
    staff = make_staff(personas.support)
    device = DeviceFactory(product=personas.product, name="before")
    group = GroupFactory(product=personas.product)
    client.force_login(staff)

    assert client.get(f"/admin/devices/device/{device.pk}/change/").status_code == 200
    assert client.post(f"/admin/devices/device/{device.pk}/change/", device_form(device, name="after")).status_code == 403
    listing = client.get("/admin/devices/device/")
    assert "add_to_group" not in listing.content.decode()
    client.post("/admin/devices/device/", {
        "action": "add_to_group", "_selected_action": [device.pk], "group": group.pk, "apply": "Confirm",
    })

    device.refresh_from_db()
    assert device.name == "before"
    assert not GroupMembership.objects.filter(group=group).exists()


def test_a_developer_edits_a_device_through_the_service_with_an_audit_event(client, personas):
    device = DeviceFactory(product=personas.product, name="before")
    client.force_login(make_staff(personas.developer))

    response = client.post(f"/admin/devices/device/{device.pk}/change/", device_form(device, name="after"))

    assert response.status_code == 302
    device.refresh_from_db()
    assert device.name == "after"
    assert AuditEvent.objects.get(action="device.edit").details["after"] == {"name": "after"}


def test_a_group_action_on_devices_of_a_product_where_the_role_only_views_is_refused(client, personas):
    MembershipFactory(user=personas.outsider, product=personas.product, role=Role.SUPPORT)
    staff = make_staff(personas.outsider)  # Owner of "other", Support in Acme
    theirs = DeviceFactory(product=personas.other_product)
    acme = DeviceFactory(product=personas.product)
    group = GroupFactory(product=personas.other_product)
    client.force_login(staff)

    response = client.post("/admin/devices/device/", {
        "action": "add_to_group", "_selected_action": [theirs.pk, acme.pk], "group": group.pk, "apply": "Confirm",
    })

    assert response.status_code == 403
    assert not GroupMembership.objects.exists()


def team_form(role, groups=()):
    return {"role": role, "restricted_groups": [group.pk for group in groups]}


def owner_membership(personas):
    return Membership.objects.get(product=personas.product, role=Role.OWNER)


def test_staff_cannot_demote_the_owner(client, personas):
    client.force_login(make_staff(personas.admin))
    owner = owner_membership(personas)

    response = client.post(f"/admin/console/membership/{owner.pk}/change/", team_form(Role.VIEWER), follow=True)

    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    assert "only when ownership is transferred" in response.content.decode()
    assert not AuditEvent.objects.exists()


def test_staff_cannot_make_themselves_owner(client, personas):
    client.force_login(make_staff(personas.admin))
    mine = Membership.objects.get(user=personas.admin)

    response = client.post(f"/admin/console/membership/{mine.pk}/change/", team_form(Role.OWNER), follow=True)

    assert "cannot change your own role" in response.content.decode()
    assert owner_membership(personas).user == Membership.objects.get(role=Role.OWNER, product=personas.product).user
    assert owner_membership(personas).user.username == "owner"
    assert Membership.objects.get(user=personas.admin).role == Role.ADMINISTRATOR


def test_the_console_refuses_a_role_change_of_ones_own_too(client, personas):
    client.force_login(personas.admin)
    mine = Membership.objects.get(user=personas.admin)

    client.post(f"/products/acme/team/{mine.pk}/", {"role": "owner"})

    assert owner_membership(personas).user.username == "owner"


def test_the_owners_membership_cannot_be_deleted(client, personas):
    client.force_login(make_staff(personas.admin))
    owner = owner_membership(personas)

    response = client.post(f"/admin/console/membership/{owner.pk}/delete/", {"post": "yes"}, follow=True)

    assert Membership.objects.filter(pk=owner.pk).exists()
    assert "transfer ownership first" in response.content.decode()


def test_the_owner_cannot_be_deleted_among_others_either_and_nothing_is_removed(client, personas):
    client.force_login(make_staff(personas.admin))
    viewer = Membership.objects.get(user=personas.viewer)
    owner = owner_membership(personas)

    client.post("/admin/console/membership/", {
        "action": "delete_selected", "_selected_action": [viewer.pk, owner.pk], "post": "yes",
    })

    assert Membership.objects.filter(pk__in=[viewer.pk, owner.pk]).count() == 2


def test_team_changes_in_the_admin_go_through_the_services_and_are_audited(client, personas):
    client.force_login(make_staff(personas.admin))
    viewer = Membership.objects.get(user=personas.viewer)

    response = client.post(f"/admin/console/membership/{viewer.pk}/change/", team_form(Role.DEVELOPER, [personas.restricted_group]))

    assert response.status_code == 302
    viewer.refresh_from_db()
    assert (viewer.role, viewer.is_restricted) == (Role.DEVELOPER, True)
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {"team.role", "team.restrict"}


def test_a_developer_cannot_change_the_team_in_the_admin(client, personas):
    client.force_login(make_staff(personas.developer))
    viewer = Membership.objects.get(user=personas.viewer)

    assert client.post(f"/admin/console/membership/{viewer.pk}/change/", team_form(Role.ADMINISTRATOR)).status_code == 403
    assert client.post("/admin/console/membership/add/", {"product": personas.product.pk, "identifier": "outsider", "role": "viewer"}).status_code == 403
    viewer.refresh_from_db()
    assert viewer.role == Role.VIEWER


def test_inviting_in_the_admin_names_the_user_like_the_team_page_and_never_as_owner(client, personas):
    client.force_login(make_staff(personas.admin))

    refused = client.post("/admin/console/membership/add/", {"product": personas.product.pk, "identifier": "outsider", "role": "owner"})
    invited = client.post("/admin/console/membership/add/", {"product": personas.product.pk, "identifier": "OUTSIDER@example.com", "role": "support"})

    assert refused.status_code == 200
    assert invited.status_code == 302
    assert Membership.objects.get(user=personas.outsider, product=personas.product).role == Role.SUPPORT
    assert AuditEvent.objects.filter(action="team.invite").count() == 1


def test_a_membership_cannot_be_restricted_to_another_products_group_and_its_name_is_not_shown(client, personas):
    client.force_login(make_staff(personas.admin))
    foreign = GroupFactory(product=personas.other_product, name="secret-customer")
    viewer = Membership.objects.get(user=personas.viewer)

    response = client.post(f"/admin/console/membership/{viewer.pk}/change/", team_form(Role.VIEWER, [foreign]))

    assert response.status_code == 200
    assert "secret-customer" not in response.content.decode()
    viewer.refresh_from_db()
    assert not viewer.is_restricted and not viewer.restricted_groups.exists()


def test_a_device_inline_refuses_another_products_group_and_does_not_render_its_name(client, personas):
    client.force_login(make_staff(personas.developer))
    device = DeviceFactory(product=personas.product)
    foreign = GroupFactory(product=personas.other_product, name="secret-customer")

    response = client.post(f"/admin/devices/device/{device.pk}/change/", device_form(
        device, **{"memberships-TOTAL_FORMS": 1, "memberships-0-group": foreign.pk, "memberships-0-device": device.pk},
    ))

    assert response.status_code == 200
    assert "secret-customer" not in response.content.decode()
    assert not GroupMembership.objects.exists()


def test_a_group_can_only_be_added_to_a_product_where_the_role_may(client, personas):
    client.force_login(make_staff(personas.outsider))  # Owner of "other" only

    response = client.post("/admin/groups/group/add/", {"product": personas.product.pk, "name": "sneaky", "color": "#112233"})

    assert response.status_code == 200
    assert not Group.objects.filter(name="sneaky").exists()


@pytest.mark.parametrize("query", ["group=abc", "group=99999999", "group=", "created_at__year=abc"])
def test_a_bad_filter_value_is_a_400_not_a_500(client, personas, query):
    DeviceFactory(product=personas.product)
    client.force_login(make_staff(personas.developer))
    url = "/admin/console/auditevent/" if query.startswith("created_at") else "/admin/devices/device/"

    assert client.get(f"{url}?{query}").status_code == 400


def test_another_products_group_is_not_a_filter_value(client, personas):
    client.force_login(make_staff(personas.developer))
    foreign = GroupFactory(product=personas.other_product)

    assert client.get(f"/admin/devices/device/?group={foreign.pk}").status_code == 400


def test_a_nul_character_in_an_admin_search_is_not_a_500(client, personas):
    client.force_login(make_staff(personas.developer))

    assert client.get("/admin/devices/device/?q=tr%00acker").status_code == 200


def test_only_superusers_manage_user_accounts(client, personas):
    staff = make_staff(personas.admin)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth"))
    client.force_login(staff)

    assert client.get("/admin/auth/user/").status_code == 403
    response = client.post(f"/admin/auth/user/{staff.pk}/change/", {"username": "administrator", "is_superuser": "on"})
    staff.refresh_from_db()
    assert response.status_code in {403, 404} and not staff.is_superuser


def test_a_restricted_member_sees_only_their_groups_devices_and_only_their_groups_as_choices(client, personas):
    staff = make_staff(personas.restricted)
    inside = DeviceFactory(product=personas.product)
    personas.restricted_group.memberships.create(device=inside)
    outside = DeviceFactory(product=personas.product)
    hidden = GroupFactory(product=personas.product, name="hidden-group")
    client.force_login(staff)

    listing = client.get("/admin/devices/device/").content.decode()
    assert inside.device_id in listing and outside.device_id not in listing and "hidden-group" not in listing
    assert client.get(f"/admin/devices/device/{outside.pk}/change/").status_code == 404
    assert client.get(f"/admin/groups/group/{hidden.pk}/change/").status_code == 404
    assert client.get(f"/admin/devices/device/?group={hidden.pk}").status_code == 400
