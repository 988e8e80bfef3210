import pytest

from console.models import AuditEvent, Membership, Role
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def member(user):
    return Membership.objects.get(user=user)


def test_an_administrator_invites_an_existing_user_by_email(client, personas):
    newcomer = UserFactory(username="newcomer", email="new@example.com")
    client.force_login(personas.admin)
    response = client.post("/products/acme/team/invite/", {"identifier": "NEW@example.com", "role": "support"})
    assert response.status_code == 302
    joined = Membership.objects.get(user=newcomer, product=personas.product)
    assert joined.role == Role.SUPPORT
    assert AuditEvent.objects.filter(action="team.invite", actor=personas.admin, details__user="newcomer").exists()


def test_inviting_an_unknown_user_says_so_next_to_the_field_and_adds_nobody(client, personas):
    client.force_login(personas.admin)
    before = Membership.objects.count()
    response = client.post("/products/acme/team/invite/", {"identifier": "ghost", "role": "developer"})
    assert response.status_code == 400
    assert "No single active user is called “ghost”" in response.content.decode()
    assert Membership.objects.count() == before


def test_a_developer_cannot_manage_the_team(client, personas):
    UserFactory(username="newcomer")
    client.force_login(personas.developer)
    assert client.post("/products/acme/team/invite/", {"identifier": "newcomer", "role": "viewer"}).status_code == 403
    assert not Membership.objects.filter(user__username="newcomer").exists()
    page = client.get("/products/acme/team/").content.decode()
    assert "Invite a team member" not in page


def test_an_outsider_gets_404_on_the_team_page_and_its_actions(client, personas):
    client.force_login(personas.outsider)
    assert client.get("/products/acme/team/").status_code == 404
    target = member(personas.viewer)
    assert client.post(f"/products/acme/team/{target.pk}/", {"role": "owner"}).status_code == 404
    target.refresh_from_db()
    assert target.role == Role.VIEWER


def test_changing_a_role_and_restricting_to_groups_is_stored_and_audited(client, personas):
    europe = GroupFactory(product=personas.product, name="europe")
    target = member(personas.viewer)
    client.force_login(personas.admin)
    client.post(f"/products/acme/team/{target.pk}/", {"role": "developer", "groups": [europe.pk]})
    target.refresh_from_db()
    assert target.role == Role.DEVELOPER
    assert list(target.restricted_groups.values_list("name", flat=True)) == ["europe"]
    assert AuditEvent.objects.filter(action="team.role", details__after="developer").exists()
    assert AuditEvent.objects.filter(action="team.restrict", details__after=["europe"]).exists()


def test_making_someone_owner_transfers_ownership_so_there_is_exactly_one(client, personas):
    client.force_login(personas.admin)
    client.post(f"/products/acme/team/{member(personas.developer).pk}/", {"role": "owner"})
    owners = Membership.objects.filter(product=personas.product, role=Role.OWNER)
    assert [m.user.username for m in owners] == ["developer"]
    assert Membership.objects.get(user__username="owner").role == Role.ADMINISTRATOR


def test_the_owner_cannot_be_removed(client, personas):
    owner = Membership.objects.get(product=personas.product, role=Role.OWNER)
    client.force_login(personas.admin)
    response = client.post(f"/products/acme/team/{owner.pk}/", {"role": "owner", "remove": "1"}, follow=True)
    assert "transfer ownership first" in response.content.decode()
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_removing_a_member_takes_away_their_access(client, personas):
    client.force_login(personas.admin)
    client.post(f"/products/acme/team/{member(personas.support).pk}/", {"role": "support", "remove": "1"})
    assert not Membership.objects.filter(user=personas.support).exists()
    client.force_login(personas.support)
    assert client.get("/products/acme/").status_code == 404


def test_team_actions_refuse_get(client, personas):
    client.force_login(personas.admin)
    assert client.get("/products/acme/team/invite/").status_code == 405


def test_a_member_whose_only_restricted_group_is_deleted_sees_no_devices(client, personas):
    from groups import services as group_services
    from tests.factories import DeviceFactory

    inside = DeviceFactory(product=personas.product)
    DeviceFactory(product=personas.product)
    personas.restricted_group.memberships.create(device=inside)
    group_services.group_delete(group=personas.restricted_group, actor=personas.admin)

    restricted = Membership.objects.get(user=personas.restricted)
    assert restricted.restricted_group_ids() == []
    client.force_login(personas.restricted)
    assert b'id="device-count">0<' in client.get("/products/acme/").content


def test_a_product_reference_with_unicode_digits_is_a_404_not_an_error(client, personas):
    client.force_login(personas.viewer)
    assert client.get("/products/\u00b2/").status_code == 404
