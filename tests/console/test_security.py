import pytest
from django.core.cache import cache

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_throttle():
    cache.clear()
    yield
    cache.clear()


def test_pages_carry_a_content_security_policy_without_inline_scripts(client, personas):
    client.force_login(personas.viewer)
    response = client.get("/products/acme/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.content.decode()


def test_repeated_wrong_passwords_are_throttled_even_with_the_right_one_after(client, personas):
    statuses = [client.post("/login/", {"username": "viewer", "password": "wrong"}).status_code for _ in range(5)]
    assert statuses == [200] * 4 + [429]  # the fifth wrong password reaches the limit
    response = client.post("/login/", {"username": "viewer", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_successful_sign_in_is_not_throttled(client, personas):
    for _ in range(3):
        client.post("/login/", {"username": "viewer", "password": "wrong"})
    response = client.post("/login/", {"username": "viewer", "password": PASSWORD})
    assert response.status_code == 302
