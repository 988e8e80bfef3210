"""POST /oauth/token, DELETE /v1/access_tokens/current and how every call authenticates."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.models import AccessToken, AuditEvent
from tests.api.conftest import error_of
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

GROUPS = "/v1/products/acme/groups"


def _token_form(username="developer", password=PASSWORD, **extra):
    return {
        "grant_type": "password",
        "username": username,
        "password": password,
        "client_id": "particle-api",
        "client_secret": "particle-api",
        **extra,
    }


def test_a_password_grant_form_returns_a_bearer_token_stored_only_as_a_hash(personas, client):
    response = client.post("/oauth/token", _token_form())

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 7_776_000
    token = AccessToken.objects.get(user=personas.developer)
    assert token.key_hash == hashlib.sha256(body["access_token"].encode()).hexdigest()
    assert token.refresh_hash == hashlib.sha256(body["refresh_token"].encode()).hexdigest()
    assert body["access_token"] not in {token.key_hash, token.refresh_hash}
    assert abs((token.expires_at - timezone.now()).total_seconds() - 7_776_000) < 60
    assert AuditEvent.objects.filter(action="token.create", actor=personas.developer).exists()


def test_a_password_grant_in_json_with_expires_in_sets_the_expiry(personas, client):
    response = client.post("/oauth/token", json.dumps(_token_form(expires_in=3600)), content_type="application/json")

    assert response.status_code == 200
    assert response.json()["expires_in"] == 3600
    token = AccessToken.objects.get(user=personas.developer)
    assert abs((token.expires_at - timezone.now()).total_seconds() - 3600) < 60


def test_the_username_may_be_the_accounts_email(personas, client):
    response = client.post("/oauth/token", _token_form(username="DEVELOPER@example.com"))
    assert response.status_code == 200
    assert AccessToken.objects.filter(user=personas.developer).count() == 1


def test_wrong_credentials_are_an_invalid_grant_and_issue_nothing(personas, client):
    response = client.post("/oauth/token", _token_form(password="nope"))

    assert response.status_code == 400
    assert error_of(response)["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()


def test_expires_in_zero_issues_a_token_that_never_expires_and_works(personas, client):
    response = client.post("/oauth/token", _token_form(expires_in=0))

    assert response.status_code == 200
    assert response.json()["expires_in"] == 0
    token = AccessToken.objects.get(user=personas.developer)
    assert token.expires_at is None
    raw = response.json()["access_token"]
    assert Client().get(GROUPS, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_a_lifetime_of_a_year_is_allowed(personas, client):
    response = client.post("/oauth/token", _token_form(expires_in=365 * 24 * 3600))

    assert response.status_code == 200
    token = AccessToken.objects.get(user=personas.developer)
    assert (token.expires_at - timezone.now()).days in (364, 365)


def test_a_lifetime_beyond_a_year_or_negative_is_refused_naming_expires_in(personas, client):
    for expires_in in (2 * 365 * 24 * 3600, -1):
        response = client.post("/oauth/token", _token_form(expires_in=expires_in))

        assert response.status_code == 400
        assert "expires_in" in error_of(response)["fields"]
    assert not AccessToken.objects.exists()


def test_grant_types_other_than_password_are_refused(personas, client):
    response = client.post("/oauth/token", _token_form(grant_type="client_credentials"))

    assert response.status_code == 400
    assert error_of(response)["error"] == "unsupported_grant_type"


def test_a_missing_password_is_a_400_naming_it(personas, client):
    response = client.post("/oauth/token", {"grant_type": "password", "username": "developer"})

    assert response.status_code == 400
    assert error_of(response)["fields"] == {"password": ["This field is required."]}


def test_repeated_wrong_passwords_are_throttled_even_for_the_right_one_afterwards(personas, client):
    statuses = [client.post("/oauth/token", _token_form(password=f"wrong-{n}")).status_code for n in range(5)]
    throttled = client.post("/oauth/token", _token_form())

    assert statuses == [400] * 4 + [429]  # the fifth wrong password reaches the limit
    assert throttled.status_code == 429
    assert error_of(throttled)["error"] == "too_many_requests"
    assert throttled["Retry-After"] == "900"
    assert not AccessToken.objects.exists()


def test_the_throttle_counts_per_account(personas, client):
    for n in range(5):
        client.post("/oauth/token", _token_form(password=f"wrong-{n}"))

    assert client.post("/oauth/token", _token_form(username="support")).status_code == 200


def test_a_call_without_a_token_is_401(api):
    response = api(None).get(GROUPS)

    assert response.status_code == 401
    assert error_of(response)["error"] == "invalid_token"
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_call_with_an_unknown_token_is_401(personas):
    response = Client().get(GROUPS, HTTP_AUTHORIZATION="Bearer 0123456789abcdef")

    assert response.status_code == 401
    assert "invalid, expired or revoked" in error_of(response)["error_description"]


def test_a_call_with_an_expired_token_is_401(personas):
    token, raw, _ = AccessToken.issue(user=personas.developer)
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = Client().get(GROUPS, HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 401


def test_a_token_of_a_deactivated_user_is_401(personas):
    _token, raw, _ = AccessToken.issue(user=personas.developer)
    personas.developer.is_active = False
    personas.developer.save()

    assert Client().get(GROUPS, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_the_token_may_come_as_an_access_token_query_parameter(personas):
    _token, raw, _ = AccessToken.issue(user=personas.viewer)

    response = Client().get(GROUPS, {"access_token": raw})

    assert response.status_code == 200


def test_the_token_may_come_as_an_access_token_form_field(personas):
    _token, raw, _ = AccessToken.issue(user=personas.developer)

    response = Client().post(GROUPS, {"name": "europe", "access_token": raw})

    assert response.status_code == 201
    assert personas.product.groups.filter(name="europe").exists()


def test_a_session_cookie_is_not_an_api_credential(personas, client):
    client.force_login(personas.admin)

    assert client.get(GROUPS).status_code == 401


def test_writes_need_no_csrf_token(personas):
    _token, raw, _ = AccessToken.issue(user=personas.developer)
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        GROUPS, json.dumps({"name": "europe"}), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )

    assert response.status_code == 201


def test_revoking_the_current_token_ends_it_and_records_who(personas):
    token, raw, _ = AccessToken.issue(user=personas.viewer)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    response = Client().delete("/v1/access_tokens/current", **headers)

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.get(action="token.revoke").token == token
    assert Client().get(GROUPS, **headers).status_code == 401


def test_revoking_without_a_token_is_401(api):
    assert api(None).delete("/v1/access_tokens/current").status_code == 401


def test_a_wrong_method_is_405_in_the_error_shape(api):
    response = api("viewer").client.patch(GROUPS, HTTP_AUTHORIZATION=f"Bearer {api('viewer').raw}")

    assert response.status_code == 405
    assert error_of(response)["error"] == "method_not_allowed"
    assert set(response["Allow"].split(", ")) == {"GET", "POST"}


def test_an_unknown_api_path_is_a_json_404(api):
    response = api("viewer").get("/v1/products/acme/nothing-here")

    assert response.status_code == 404
    assert error_of(response)["error"] == "not_found"


def test_the_openapi_schema_describes_every_endpoint(client):
    schema = client.get("/v1/openapi.json").json()

    assert set(schema["paths"]) == {
        "/oauth/token",
        "/v1/access_tokens/current",
        "/v1/products/{product}/groups",
        "/v1/products/{product}/groups/{name}",
        "/v1/products/{product}/devices",
        "/v1/products/{product}/devices/{device_id}",
        "/v1/products/{product}/devices/{device_id}/key",
        "/v1/device/handshake",
        "/v1/device/update_failed",
        "/v1/device/firmware/{version}",
        "/v1/products/{product}/firmware",
        "/v1/products/{product}/firmware/{version}",
        "/v1/products/{product}/firmware/{version}/binary",
        "/v1/products/{product}/firmware/release",
        "/v1/products/{product}/impact",
        "/v1/products/{product}/release_lint",
        "/v1/user",
        "/v1/access_tokens",
        "/v1/access_tokens/{token}",
        "/v1/products",
        "/v1/products/{product}",
        "/v1/products/{product}/team",
        "/v1/serial_numbers/{serial_number}",
        "/v1/devices",
        "/v1/devices/{device_id}",
        "/v1/products/{product}/devices/{device_id}/owner",
        "/v1/products/{product}/devices.csv",
        "/v1/products/{product}/memberships/import",
        "/v1/products/{product}/events/{event_id}/undo",
        "/v1/products/{product}/webhooks",
        "/v1/products/{product}/webhooks/{webhook_id}",
        "/v1/products/{product}/webhooks/{webhook_id}/test",
        "/v1/products/{product}/webhooks/{webhook_id}/deliveries",
        "/v1/products/{product}/rollouts",
        "/v1/products/{product}/rollouts/{rollout_id}",
        "/v1/products/{product}/rollouts/{rollout_id}/impact",
        "/v1/products/{product}/rollouts/{rollout_id}/pause",
        "/v1/products/{product}/rollouts/{rollout_id}/resume",
        "/v1/products/{product}/rollouts/{rollout_id}/advance",
        "/v1/products/{product}/rollouts/{rollout_id}/abort",
        "/v1/products/{product}/rollouts/{rollout_id}/rollback",
    }
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    assert schema["components"]["securitySchemes"]["DeviceKeyAuth"]["scheme"] == "basic"
    assert schema["paths"]["/v1/device/handshake"]["post"]["security"] == [{"DeviceKeyAuth": []}]


def test_a_docs_page_is_served(client):
    response = client.get("/v1/docs")

    assert response.status_code == 200
    assert b"/v1/openapi.json" in response.content


def test_an_oversize_json_body_is_a_413_and_stores_nothing(personas, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api("developer").post(GROUPS, {"name": "europe", "description": "d" * 2000})

    assert response.status_code == 413
    assert error_of(response)["error"] == "payload_too_large"
    assert not personas.product.groups.filter(name="europe").exists()


def test_a_nul_character_in_the_path_is_a_400(api):
    response = api("viewer").get("/v1/products/acme/groups/eu%00rope")
    assert response.status_code == 400


def test_text_that_is_not_valid_unicode_is_a_400_naming_the_field(personas, api):
    response = api("developer").raw_body("POST", GROUPS, '{"name": "eu", "description": "\\ud800"}', "application/json")

    assert response.status_code == 400
    assert "description" in error_of(response)["fields"]


def test_a_multipart_body_without_a_boundary_is_a_400(api):
    response = api("developer").raw_body("POST", "/v1/products/acme/firmware", b"x", "multipart/form-data")
    assert response.status_code == 400
