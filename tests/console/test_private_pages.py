"""No shared cache keeps a private page or an API answer; a body too large for its address is
refused before anything reads it."""

import pytest
from django.test import Client

from console.models import AccessToken
from firmware.models import Firmware
from tests.conftest import HTMX

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


@pytest.mark.parametrize("url", ["/products/acme/devices/", "/products/acme/team/", "/products/acme/", "/account/tokens/"])
def test_private_console_pages_are_not_kept_by_shared_caches(client, personas, url):
    client.force_login(personas.viewer)

    cache_control = client.get(url)["Cache-Control"]

    assert "private" in cache_control or "no-store" in cache_control
    assert "no-cache" in cache_control or "no-store" in cache_control


def test_api_answers_are_never_stored(personas):
    _token, raw, _ = AccessToken.issue(user=personas.viewer)

    response = Client().get("/v1/products/acme/groups", {"access_token": raw})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def declared(client, url, size, content_type="multipart/form-data; boundary=xyz", **extra):
    """A POST that declares `size` bytes and sends none: reading any of it would fail the test
    client's stream, so only an answer given without reading it can pass."""
    return client.generic("POST", url, b"", content_type=content_type, CONTENT_LENGTH=str(size), **extra)


def test_an_anonymous_64_mib_post_to_the_sign_in_page_is_refused_unread(personas):
    response = declared(Client(enforce_csrf_checks=True), "/login/", 64 * MiB)

    assert response.status_code == 413
    assert "too large" in response.content.decode()


def test_an_anonymous_oversize_post_to_the_admin_sign_in_is_refused_unread(personas):
    assert declared(Client(), "/admin/login/", 1 * MiB).status_code == 413


def test_a_300_mib_console_firmware_upload_is_refused_unread_with_a_clear_message(client, personas):
    client.force_login(personas.developer)

    response = declared(client, "/products/acme/firmware/upload/", 300 * MiB)

    assert response.status_code == 413
    assert "at most 8.2 MiB" in response.content.decode()
    assert not Firmware.objects.exists()


def test_an_htmx_upload_too_large_says_so_in_a_message(client, personas):
    client.force_login(personas.developer)

    response = declared(client, "/products/acme/firmware/upload/", 300 * MiB, **HTMX)

    assert response.status_code == 413
    assert "too large" in response["HX-Trigger"]


def test_an_oversize_api_upload_is_a_413_in_the_api_shape_unread(personas):
    _token, raw, _ = AccessToken.issue(user=personas.developer)

    response = declared(Client(), "/v1/products/acme/firmware", 300 * MiB, HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert response.json()["ok"] is False


def test_a_firmware_upload_within_the_limit_still_works(client, personas):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(personas.developer)
    response = client.post("/products/acme/firmware/upload/", {
        "version": "5", "title": "Five", "binary": SimpleUploadedFile("fw.bin", b"x" * (2 * MiB)),
    })

    assert response.status_code in {200, 302}
    assert Firmware.objects.get(version=5).size == 2 * MiB
