"""An API token stops working when its user's password changes, whichever way it is changed, as
a signed-in session does."""

import pytest
from django.core.management import call_command
from django.test import Client

from console.models import AccessToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GROUPS = "/v1/products/acme/groups"


def calls(raw):
    return Client().get(GROUPS, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code


def test_a_token_ends_when_the_password_is_changed_in_the_admin(personas):
    _token, raw, _ = AccessToken.issue(user=personas.developer)
    root = Client()
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    assert calls(raw) == 200

    response = root.post(f"/admin/auth/user/{personas.developer.pk}/password/", {
        "password1": "a-brand-new-pass-42", "password2": "a-brand-new-pass-42", "usable_password": "true",
    })

    assert response.status_code == 302
    assert calls(raw) == 401


def test_a_token_ends_when_the_password_is_changed_by_the_changepassword_command(personas, monkeypatch):
    _token, raw, _ = AccessToken.issue(user=personas.developer)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "a-brand-new-pass-42")

    call_command("changepassword", "developer")

    assert calls(raw) == 401


def test_a_token_issued_after_the_change_works(personas):
    personas.developer.set_password("a-brand-new-pass-42")
    personas.developer.save()
    _token, raw, _ = AccessToken.issue(user=personas.developer)

    assert calls(raw) == 200


def test_the_token_endpoint_answers_are_never_stored(personas, client):
    response = client.post("/oauth/token", {"grant_type": "password", "username": "developer", "password": "fleet-test-pass-1"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
