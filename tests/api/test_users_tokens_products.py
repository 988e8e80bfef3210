"""/v1/user, /v1/access_tokens..., /v1/products[/:p[/team]], /v1/serial_numbers/:serial and
/v1/devices[/:id]: what Particle's clients ask about the caller (API.md, "Users, tokens and
products")."""

import pytest
from django.test import Client

from console.models import AccessToken, AuditEvent
from tests.api.conftest import error_of
from tests.factories import DeviceFactory, GroupFactory

pytestmark = pytest.mark.django_db


def _issue(user, **kwargs) -> tuple[AccessToken, str]:
    token, raw, _refresh = AccessToken.issue(user=user, **kwargs)
    return token, raw


def test_the_user_endpoint_names_the_tokens_user(personas, api):
    response = api("developer").get("/v1/user")

    assert response.status_code == 200
    assert response.json() == {
        "username": "developer",
        "email": "developer@example.com",
        "account_info": {"first_name": "", "last_name": ""},
    }


def test_the_user_endpoint_needs_a_token(personas, api):
    assert api(None).get("/v1/user").status_code == 401


def test_revoking_ones_own_token_by_value_ends_it(personas):
    caller, caller_raw = _issue(personas.developer)
    other, other_raw = _issue(personas.developer, name="ci")

    response = Client().delete(f"/v1/access_tokens/{other_raw}", HTTP_AUTHORIZATION=f"Bearer {caller_raw}")

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    other.refresh_from_db()
    caller.refresh_from_db()
    assert other.revoked_at is not None and caller.revoked_at is None
    assert AuditEvent.objects.filter(action="token.revoke", details__token_id=other.pk).exists()
    assert Client().get("/v1/user", HTTP_AUTHORIZATION=f"Bearer {other_raw}").status_code == 401


def test_another_users_token_is_a_404_and_stays_alive(personas):
    _caller, caller_raw = _issue(personas.developer)
    theirs, theirs_raw = _issue(personas.viewer)

    response = Client().delete(f"/v1/access_tokens/{theirs_raw}", HTTP_AUTHORIZATION=f"Bearer {caller_raw}")

    assert response.status_code == 404
    assert error_of(response)["error"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_a_token_in_the_path_without_other_credentials_revokes_itself(personas):
    # particle-cli's `token revoke` sends no Authorization header: the token is its own credential.
    token, raw = _issue(personas.developer)

    response = Client().delete(f"/v1/access_tokens/{raw}")

    assert response.status_code == 200
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_an_unknown_token_in_the_path_without_credentials_is_a_401(personas):
    response = Client().delete(f"/v1/access_tokens/{'ab' * 20}")

    assert response.status_code == 401
    assert error_of(response)["error"] == "invalid_token"


def test_an_invalid_bearer_with_a_token_in_the_path_is_a_401_and_revokes_nothing(personas):
    token, raw = _issue(personas.developer)

    response = Client().delete(f"/v1/access_tokens/{raw}", HTTP_AUTHORIZATION="Bearer nope")

    assert response.status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_all_tokens_ends_every_live_token_of_the_caller_only(personas):
    mine = [_issue(personas.developer, expires_in=0), _issue(personas.developer), _issue(personas.developer)]
    theirs, _ = _issue(personas.viewer)

    response = Client().delete("/v1/access_tokens", HTTP_AUTHORIZATION=f"Bearer {mine[0][1]}")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "revoked": 3}
    assert not AccessToken.objects.filter(user=personas.developer).active().exists()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    event = AuditEvent.objects.get(action="token.revoke_all")
    assert sorted(event.details["token_ids"]) == sorted(token.pk for token, _raw in mine)


def test_listing_tokens_shows_live_ones_with_never_expiring_ones_as_null(personas):
    never, raw = _issue(personas.developer, name="ci", expires_in=0)
    expiring, _ = _issue(personas.developer, name="laptop")
    revoked, _ = _issue(personas.developer, name="old")
    revoked.revoke()
    _issue(personas.viewer)

    response = Client().get("/v1/access_tokens", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()}
    assert set(rows) == {never.pk, expiring.pk}
    assert rows[never.pk]["expires_at"] is None and rows[never.pk]["client"] == "ci"
    assert rows[expiring.pk]["expires_at"].endswith("Z")
    assert all(raw not in str(row) for row in rows.values())


def test_products_lists_the_callers_products_with_their_role_and_visible_groups(personas, api):
    GroupFactory(product=personas.product, name="europe")

    body = api("developer").get("/v1/products").json()

    assert body == {
        "products": [
            {"id": personas.product.pk, "slug": "acme", "name": "Acme", "role": "Developer",
             "groups": ["europe", "partner-fleet"]},
        ]
    }


def test_a_restricted_member_sees_only_their_groups_on_the_product(personas, api):
    GroupFactory(product=personas.product, name="europe")

    body = api("restricted").get(f"/v1/products/{personas.product.pk}").json()

    assert body["product"]["groups"] == ["partner-fleet"]
    assert body["product"]["slug"] == "acme"


def test_another_products_page_and_team_are_404s(personas, api):
    for url in ("/v1/products/other", "/v1/products/other/team"):
        response = api("developer").get(url)
        assert response.status_code == 404
        assert error_of(response)["error_description"] == error_of(api("developer").get("/v1/products/nope"))["error_description"]


def test_the_team_lists_members_with_roles_and_restrictions(personas, api):
    body = api("viewer").get("/v1/products/acme/team").json()

    team = {member["username"]: member for member in body["team"]}
    assert set(team) == {"owner", "administrator", "developer", "support", "viewer", "partner"}
    assert team["administrator"]["role"] == "Administrator"
    assert team["viewer"]["role"] == "View-only"
    assert team["partner"]["restricted_groups"] == ["partner-fleet"]
    assert team["developer"]["restricted_groups"] is None


def test_a_serial_number_of_a_visible_device_names_it(personas, api):
    device = DeviceFactory(product=personas.product, serial_number="P046AB1234", iccid="8934076500002587657")

    response = api("support").get("/v1/serial_numbers/P046AB1234")

    assert response.status_code == 200
    assert response.json() == {
        "ok": True, "device_id": device.device_id, "product_id": personas.product.pk, "platform_id": 12,
        "iccid": "8934076500002587657",
    }


def test_a_serial_number_of_another_products_device_is_a_404_like_an_unknown_one(personas, api):
    DeviceFactory(product=personas.other_product, serial_number="P046OTHER")

    other = api("developer").get("/v1/serial_numbers/P046OTHER")
    unknown = api("developer").get("/v1/serial_numbers/P046NONE")

    assert other.status_code == unknown.status_code == 404
    assert error_of(other) == error_of(unknown)


def test_a_restricted_member_cannot_look_up_a_device_outside_their_groups(personas, api):
    DeviceFactory(product=personas.product, serial_number="P046HIDDEN")
    inside = DeviceFactory(product=personas.product, serial_number="P046SHOWN")
    personas.restricted_group.devices.add(inside)

    assert api("restricted").get("/v1/serial_numbers/P046HIDDEN").status_code == 404
    assert api("restricted").get("/v1/serial_numbers/P046SHOWN").json()["device_id"] == inside.device_id


def test_the_device_list_spans_the_callers_products_and_nothing_else(personas, api):
    ours = [DeviceFactory(product=personas.product, online=True) for _ in range(2)]
    DeviceFactory(product=personas.other_product)
    europe = GroupFactory(product=personas.product, name="europe", devices=[ours[0]])

    response = api("viewer").get("/v1/devices")

    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()}
    assert set(rows) == {device.device_id for device in ours}
    assert rows[ours[0].device_id]["groups"] == [europe.name]
    assert rows[ours[0].device_id]["connected"] is True


def test_the_device_list_pages_and_takes_the_same_queries_for_any_page_size(personas, api, django_assert_num_queries):
    for _ in range(5):
        DeviceFactory(product=personas.product)
    client = api("developer")

    assert len(client.get("/v1/devices", {"per_page": 2, "page": 3}).json()) == 1
    for per_page in (1, 5):
        # token, memberships, the page of devices, their groups
        with django_assert_num_queries(4):
            assert len(client.get("/v1/devices", {"per_page": per_page}).json()) == per_page


def test_a_restricted_member_lists_only_devices_in_their_groups(personas, api):
    inside = DeviceFactory(product=personas.product)
    DeviceFactory(product=personas.product)
    personas.restricted_group.devices.add(inside)

    rows = api("restricted").get("/v1/devices").json()

    assert [row["id"] for row in rows] == [inside.device_id]


def test_a_device_by_id_answers_its_details_with_unknown_functions_and_variables(personas, api):
    device = DeviceFactory(product=personas.product, name="van-1")

    body = api("viewer").get(f"/v1/devices/{device.device_id.upper()}").json()

    assert (body["id"], body["name"], body["functions"], body["variables"]) == (device.device_id, "van-1", None, None)


def test_a_device_of_another_product_by_id_is_a_404(personas, api):
    device = DeviceFactory(product=personas.other_product)

    assert api("developer").get(f"/v1/devices/{device.device_id}").status_code == 404


def test_an_unknown_endpoint_says_so_whatever_the_product(personas, api):
    ours = api("developer").get("/v1/products/acme/bogus")
    theirs = api("developer").get("/v1/products/other/bogus")

    assert ours.status_code == theirs.status_code == 404
    assert "No such endpoint" in error_of(ours)["error_description"]
    assert error_of(ours)["error_description"].replace("acme", "other") == error_of(theirs)["error_description"]
    assert "member" not in error_of(ours)["error_description"]
