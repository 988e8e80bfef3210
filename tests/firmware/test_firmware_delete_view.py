"""/products/<slug>/firmware/<version>/delete/."""

import json

import pytest

from firmware.models import Firmware
from tests.factories import FirmwareFactory

pytestmark = pytest.mark.django_db


def test_deleting_a_never_released_version_removes_it(client, personas):
    FirmwareFactory(product=personas.product, version=4)
    client.force_login(personas.developer)

    response = client.post("/products/acme/firmware/4/delete/", headers={"HX-Request": "true"})

    assert response.status_code == 204
    assert "firmwareChanged" in json.loads(response["HX-Trigger"])
    assert not Firmware.objects.filter(version=4).exists()


def test_a_released_version_is_refused_and_kept(client, personas):
    FirmwareFactory(product=personas.product, version=4, ever_released=True)
    client.force_login(personas.developer)

    response = client.post("/products/acme/firmware/4/delete/", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "cannot be deleted" in response.content.decode()
    assert Firmware.objects.filter(version=4).exists()


def test_the_confirmation_is_a_dialog(client, personas):
    FirmwareFactory(product=personas.product, version=4)
    client.force_login(personas.developer)

    body = client.get("/products/acme/firmware/4/delete/", headers={"HX-Request": "true"}).content.decode()

    assert body.lstrip().startswith("<dialog data-modal") and "Delete v4" in body


def test_read_only_members_get_403_and_outsiders_404(client, personas):
    FirmwareFactory(product=personas.product, version=4)
    client.force_login(personas.viewer)
    assert client.post("/products/acme/firmware/4/delete/").status_code == 403
    client.force_login(personas.outsider)
    assert client.post("/products/acme/firmware/4/delete/").status_code == 404
    assert Firmware.objects.filter(version=4).exists()
