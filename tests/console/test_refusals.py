"""Refused and failed htmx requests answer with a message people can read (console.errors):
htmx does not swap error responses in, so console.js shows this text instead."""

import pytest
from django.test import Client

from console import errors
from tests.conftest import HTMX
from tests.factories import FirmwareFactory

pytestmark = pytest.mark.django_db


def test_a_refused_htmx_request_gets_the_reason_as_text(personas, client_for):
    response = client_for(personas.restricted).get("/products/acme/firmware/upload/", **HTMX)

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/plain")
    assert "limited to some groups" in response.content.decode()


def test_a_refused_plain_request_gets_a_page_with_the_reason(personas, client_for):
    response = client_for(personas.viewer).post("/products/acme/groups/new/", {"name": "x"})

    html = response.content.decode()
    assert response.status_code == 403 and "<html" in html
    assert "Your role in this product cannot make changes." in html


def test_a_missing_object_for_htmx_says_it_may_have_been_deleted(personas, client_for):
    response = client_for(personas.developer).get("/products/acme/firmware/99/delete/", **HTMX)

    assert response.status_code == 404
    assert response.content.decode() == errors.MESSAGES[404]


def test_an_expired_csrf_token_tells_htmx_to_reload(personas):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.developer)

    response = client.post("/products/acme/groups/new/", {"name": "x"}, **HTMX)

    assert response.status_code == 403
    assert response.content.decode() == errors.CSRF_MESSAGE


def test_a_server_error_for_htmx_is_a_readable_message(rf):
    request = rf.get("/", **HTMX)
    response = errors.server_error(request)
    assert response.status_code == 500 and "nothing was changed" in response.content.decode()


def test_a_restricted_member_sees_no_upload_or_delete_on_the_firmware_page(personas, client_for):
    FirmwareFactory(product=personas.product, version=2)

    html = client_for(personas.restricted).get("/products/acme/firmware/").content.decode()

    assert "/firmware/upload/" not in html and "/firmware/2/delete/" not in html
    assert "Release this firmware" in html


def test_a_developer_sees_upload_and_delete(personas, client_for):
    FirmwareFactory(product=personas.product, version=2)
    html = client_for(personas.developer).get("/products/acme/firmware/").content.decode()
    assert "/firmware/upload/" in html and "/firmware/2/delete/" in html


def test_the_api_tokens_page_keeps_the_sidebar_of_the_product_it_came_from(personas, client_for):
    html = client_for(personas.developer).get("/account/tokens/?product=acme").content.decode()
    assert 'aria-label="Product"' in html and "/products/acme/devices/" in html


def test_the_api_tokens_page_shows_no_sidebar_of_a_product_one_is_not_in(personas, client_for):
    html = client_for(personas.developer).get("/account/tokens/?product=other").content.decode()
    assert 'aria-label="Product"' not in html and "/products/other/" not in html
