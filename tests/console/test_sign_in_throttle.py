"""Password guesses are counted per account, whatever spelling of its login was typed, and per
client address, in the database (shared by every worker and web node), on the console's sign-in,
the admin's and the API's password grant together."""

import pytest
from django.core.cache import cache
from django.test import Client

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

TOKEN = "/oauth/token"


def console_guess(username, password="wrong", **extra):
    return Client(**extra).post("/login/", {"username": username, "password": password}).status_code


def token_guess(username, password="wrong"):
    return Client().post(TOKEN, {"grant_type": "password", "username": username, "password": password}).status_code


def admin_guess(username, password="wrong"):
    return Client().post("/admin/login/", {"username": username, "password": password}).status_code


def test_every_spelling_of_one_account_shares_one_count(personas):
    spellings = ["viewer", "VIEWER", "viewer@example.com", "Viewer@Example.COM"]
    statuses = [console_guess(login) for login in spellings]
    statuses.append(token_guess("ViEwEr"))

    assert statuses == [200, 200, 200, 200, 429]
    assert console_guess("viewer", PASSWORD) == 429
    assert token_guess("viewer@example.com", PASSWORD) == 429


def test_the_console_the_admin_and_the_token_grant_count_together(personas):
    assert [console_guess("developer"), admin_guess("developer"), token_guess("developer")] == [200, 200, 400]
    assert [admin_guess("developer"), admin_guess("developer")] == [200, 429]
    assert admin_guess("developer", PASSWORD) == 429


def test_the_admin_sign_in_is_throttled_with_a_clear_page(personas):
    for _ in range(4):
        admin_guess("support")
    response = Client().post("/admin/login/", {"username": "support", "password": "wrong"})

    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert response["Retry-After"] == "900"


def test_the_count_lives_in_the_database_not_in_a_workers_memory(personas):
    from axes.models import AccessAttempt

    for _ in range(4):
        console_guess("administrator")
    cache.clear()  # what a per-process counter would lose on another worker

    assert AccessAttempt.objects.filter(username="administrator").exists()
    assert console_guess("administrator") == 429


def test_guesses_at_an_account_that_does_not_exist_are_counted_too(personas):
    assert [console_guess("Nobody") for _ in range(5)] == [200] * 4 + [429]
    assert console_guess("nobody") == 429


def test_one_address_guessing_at_many_accounts_is_throttled(personas, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 8
    statuses = [console_guess(f"someone-{n}") for n in range(8)]

    assert statuses == [200] * 7 + [429]
    assert console_guess("viewer", PASSWORD) == 429
    assert console_guess("viewer", PASSWORD, REMOTE_ADDR="10.0.0.9") == 302


def test_a_sign_in_with_the_email_address_works(personas):
    client = Client()
    response = client.post("/login/", {"username": "Viewer@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(personas.viewer.pk)
