"""The bearer-token lookup (AccessToken.objects.authenticate, compiled once and prepared) finds only
live tokens, costs one query, and keeps nothing between calls, so a revoked token is refused at once."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.models import AccessToken

pytestmark = pytest.mark.django_db

GROUPS = "/v1/products/acme/groups"


def _live(personas):
    return AccessToken.issue(user=personas.developer)


def _revoked(personas):
    token, raw, refresh = AccessToken.issue(user=personas.developer)
    token.revoke()
    return token, raw, refresh


def _expired(personas):
    token, raw, refresh = AccessToken.issue(user=personas.developer)
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return token, raw, refresh


def _of_a_deactivated_user(personas):
    issued = AccessToken.issue(user=personas.developer)
    personas.developer.is_active = False
    personas.developer.save(update_fields=["is_active"])
    return issued


@pytest.mark.parametrize(
    ("make", "live"), [(_live, True), (_revoked, False), (_expired, False), (_of_a_deactivated_user, False)]
)
def test_the_lookup_finds_only_live_tokens(personas, make, live):
    token, raw, _refresh = make(personas)

    found = AccessToken.objects.authenticate(raw)

    assert (found, found.user if found else None) == ((token, personas.developer) if live else (None, None))


def test_an_unknown_token_and_a_refresh_token_are_not_live(personas):
    _token, _raw, refresh = AccessToken.issue(user=personas.developer)

    assert AccessToken.objects.authenticate("0123456789abcdef") is None
    assert AccessToken.objects.authenticate(refresh) is None


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_one_query_loads_the_token_and_all_of_its_user(personas, django_assert_num_queries):
    token, raw, _refresh = AccessToken.issue(user=personas.developer)
    stored = AccessToken.objects.select_related("user").get(pk=token.pk)

    with django_assert_num_queries(1):
        found = AccessToken.objects.authenticate(raw)
        token_fields, user_fields = _fields(found), _fields(found.user)

    assert token_fields == _fields(stored)
    assert user_fields == _fields(stored.user)
    assert user_fields["username"] == "developer"


def test_a_token_revoked_elsewhere_is_refused_on_the_next_call(personas):
    token, raw, _refresh = AccessToken.issue(user=personas.developer)
    client = Client(headers={"authorization": f"Bearer {raw}"})
    assert client.get(GROUPS).status_code == 200

    token.revoke()  # as the console's tokens page does, in whichever process serves it

    assert client.get(GROUPS).status_code == 401
