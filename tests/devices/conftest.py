import pytest

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def client_for(client):
    """A test client signed in as the given user."""

    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in
