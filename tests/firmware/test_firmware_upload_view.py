"""/products/<slug>/firmware/upload/: the Upload modal."""

import json

import pytest

from console.models import AuditEvent
from firmware.models import Firmware
from tests.factories import FirmwareFactory
from tests.firmware.helpers import binary

pytestmark = pytest.mark.django_db
URL = "/products/acme/firmware/upload/"


def form(**overrides):
    data = {"version": "12", "title": "Battery fix", "description": "Less drain", "binary": binary(b"image-bytes")}
    data.update(overrides)
    return data


def test_it_stores_the_firmware_and_redirects_without_javascript(client, personas):
    client.force_login(personas.developer)

    response = client.post(URL, form())

    assert response.status_code == 302 and response["Location"] == "/products/acme/firmware/"
    firmware = Firmware.objects.get(product=personas.product)
    assert (firmware.version, firmware.title, firmware.size) == (12, "Battery fix", len(b"image-bytes"))
    assert firmware.uploaded_by == personas.developer


def test_an_htmx_upload_answers_204_with_events(client, personas):
    client.force_login(personas.developer)

    response = client.post(URL, form(), headers={"HX-Request": "true"})

    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert {"closeModal", "firmwareChanged", "showMessage"} <= set(events)
    assert Firmware.objects.filter(version=12).exists()


def test_the_form_is_a_dialog_for_htmx(client, personas):
    client.force_login(personas.developer)

    response = client.get(URL, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert body.lstrip().startswith("<dialog data-modal")
    assert "<html" not in body


def test_a_duplicate_version_shows_the_error_next_to_the_field_and_stores_nothing(client, personas):
    FirmwareFactory(product=personas.product, version=12)
    client.force_login(personas.developer)

    response = client.post(URL, form(), headers={"HX-Request": "true"})

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="id_version_error"' in body and "Firmware version already exists" in body
    assert Firmware.objects.count() == 1
    assert not AuditEvent.objects.filter(action="firmware.upload").exists()


def test_an_empty_binary_is_refused_inline(client, personas):
    client.force_login(personas.developer)

    response = client.post(URL, form(binary=binary(b"")), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert 'id="id_binary_error"' in response.content.decode()
    assert not Firmware.objects.exists()


def test_a_binary_over_the_limit_is_refused_inline(client, personas, settings):
    settings.FIRMWARE_MAX_BYTES = 4
    client.force_login(personas.developer)

    response = client.post(URL, form(), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "limit" in response.content.decode()
    assert not Firmware.objects.exists()


def test_a_version_out_of_range_is_refused_inline(client, personas):
    client.force_login(personas.developer)

    response = client.post(URL, form(version="70000"), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert 'id="id_version_error"' in response.content.decode()
    assert not Firmware.objects.exists()


@pytest.mark.parametrize("persona", ["support", "viewer"])
def test_read_only_members_get_403(client, personas, persona):
    client.force_login(getattr(personas, persona))

    assert client.get(URL).status_code == 403
    assert client.post(URL, form()).status_code == 403
    assert not Firmware.objects.exists()


def test_outsiders_get_404(client, personas):
    client.force_login(personas.outsider)

    assert client.post(URL, form()).status_code == 404
    assert not Firmware.objects.exists()


def test_put_is_not_allowed(client, personas):
    client.force_login(personas.developer)

    assert client.put(URL).status_code == 405


def test_without_javascript_an_invalid_upload_is_a_400_page_with_the_errors(client, personas):
    FirmwareFactory(product=personas.product, version=12)
    client.force_login(personas.developer)

    response = client.post(URL, form())

    assert response.status_code == 400
    body = response.content.decode()
    assert "<html" in body and "Firmware version already exists" in body
    assert Firmware.objects.count() == 1
