import re

import pytest

from console.models import AccessToken, AuditEvent

pytestmark = pytest.mark.django_db


def test_a_created_token_is_shown_once_and_stored_only_as_a_hash(client, personas):
    client.force_login(personas.developer)
    response = client.post("/account/tokens/", {"name": "ci script", "days": 30})
    assert response.status_code == 200
    raw = re.search(r'value="([0-9a-f]{40})"', response.content.decode()).group(1)
    token = AccessToken.objects.get(user=personas.developer, name="ci script")
    assert raw not in (token.key_hash, token.refresh_hash)
    assert AccessToken.objects.authenticate(raw) == token
    assert raw not in client.get("/account/tokens/").content.decode()
    assert AuditEvent.objects.filter(action="token.create", actor=personas.developer).exists()


def test_a_revoked_token_no_longer_authenticates(client, personas):
    token, raw, _ = AccessToken.issue(user=personas.developer, name="old")
    client.force_login(personas.developer)
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    assert AccessToken.objects.authenticate(raw) is None
    assert AuditEvent.objects.filter(action="token.revoke").exists()


def test_nobody_can_revoke_someone_elses_token(client, personas):
    token, raw, _ = AccessToken.issue(user=personas.admin)
    client.force_login(personas.developer)
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    assert AccessToken.objects.authenticate(raw) == token


def test_an_expiry_beyond_a_year_is_refused_next_to_the_field(client, personas):
    client.force_login(personas.developer)
    response = client.post("/account/tokens/", {"name": "x", "days": 400})
    assert response.status_code == 400
    assert "less than or equal to 365" in response.content.decode()
    assert not AccessToken.objects.exists()


def test_the_page_says_a_password_change_ends_every_token_and_marks_those_it_ended(client, personas):
    AccessToken.issue(user=personas.developer, name="before the change")
    personas.developer.set_password("a-new-password-9")
    personas.developer.save()
    client.force_login(personas.developer)

    page = client.get("/account/tokens/").content.decode()

    assert "Changing your password ends every token you have" in page
    assert "Ended: password changed" in page


def test_the_page_showing_a_new_token_is_not_stored_by_any_cache(client, personas):
    client.force_login(personas.developer)

    response = client.post("/account/tokens/", {"name": "ci", "days": 30})

    assert "no-store" in response["Cache-Control"]


def test_a_never_expiring_token_is_listed_as_never_and_can_be_revoked(client, personas):
    token, raw, _ = AccessToken.issue(user=personas.developer, name="ci forever", expires_in=0)
    client.force_login(personas.developer)

    page = client.get("/account/tokens/").content.decode()
    row = re.search(r"<tr>\s*<td>ci forever</td>.*?</tr>", page, re.S).group(0)
    assert "<strong>Never</strong>" in row and "Active" in row
    assert f"/account/tokens/{token.pk}/revoke/" in row

    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    assert AccessToken.objects.authenticate(raw) is None
