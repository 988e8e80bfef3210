import pytest

from tests.factories import make_personas


def pytest_configure(config):
    from django.conf import settings

    # Hashing every persona's password with PBKDF2 would dominate the suite's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Webhook tests deliver to a receiver on 127.0.0.1 over http.
    settings.WEBHOOKS_ALLOW_LOOPBACK = True


@pytest.fixture
def personas(db):
    return make_personas()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: figures cached by one test's data (keyed on ids a new
    database may hand out again) must not answer another's."""
    from django.core.cache import cache

    cache.clear()


HTMX = {"HTTP_HX_REQUEST": "true"}


def id_lookups(writes: int) -> int:
    """Queries a batch edit adds to name, in its audit event, the devices its `writes` (an
    INSERT, a DELETE) touched and which group each joined or left: none on PostgreSQL (each
    write does it), two per write elsewhere."""
    from django.db import connection

    return 0 if connection.vendor == "postgresql" else 2 * writes


@pytest.fixture
def client_for(client):
    """A test client signed in as the given user."""

    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def gunicorn_server(transactional_db, settings, tmp_path):
    """gunicorn serving the test database (see tests/gunicorn.py); PostgreSQL only."""
    from django.db import connection

    from tests.gunicorn import GunicornServer

    if connection.vendor != "postgresql":
        pytest.skip("gunicorn serves the PostgreSQL test database only")
    server = GunicornServer(media_root=settings.MEDIA_ROOT, log_path=tmp_path / "gunicorn.log").start()
    yield server
    server.stop()
