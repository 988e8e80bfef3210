"""Every firmware dialog follows console.htmx: a `<dialog>` for htmx, a page without it, the body
for a refused htmx POST, 204 with a `showMessage` dict when done, and `Vary: HX-Request`."""

import json

import pytest

from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

pytestmark = pytest.mark.django_db
DEVICE_ID = "0123456789abcdef01234567"
DIALOGS = [
    "/products/acme/firmware/upload/",
    "/products/acme/firmware/4/delete/",
    "/products/acme/firmware/5/release/",
    "/products/acme/firmware/5/release/confirm/?unrelease=1",
    f"/products/acme/firmware/devices/{DEVICE_ID}/lock/",
    f"/products/acme/firmware/devices/{DEVICE_ID}/unlock/",
    f"/products/acme/firmware/devices/{DEVICE_ID}/development/",
]


@pytest.fixture
def fleet(personas):
    FirmwareFactory(product=personas.product, version=4)
    # v5 is released to a group, so "Unrelease" has something to undo.
    GroupFactory(product=personas.product, name="beta", released_firmware=proven_firmware(personas.product, 5))
    DeviceFactory(product=personas.product, device_id=DEVICE_ID, name="tracker-1", firmware_version=4, desired_firmware_version=4)


@pytest.mark.parametrize("url", DIALOGS)
def test_each_dialog_opens_as_a_dialog_for_htmx_and_varies_on_it(client, personas, fleet, url):
    client.force_login(personas.developer)

    response = client.get(url, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith("<dialog data-modal") and "<html" not in body
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize("url", DIALOGS)
def test_each_dialog_is_a_page_without_javascript(client, personas, fleet, url):
    client.force_login(personas.developer)

    response = client.get(url)

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" in body and '<div class="dialog-page">' in body and "<dialog" not in body
    assert "HX-Request" in response["Vary"]


def test_a_refused_htmx_post_answers_with_the_dialog_body_to_swap_into_the_open_dialog(client, personas, fleet):
    client.force_login(personas.developer)

    response = client.post("/products/acme/firmware/upload/", {"version": "4", "title": ""}, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<article class="dialog-body">') and "<dialog" not in body
    assert 'id="id_title_error"' in body


def test_a_finished_dialog_sends_its_message_as_a_dict(client, personas, fleet):
    client.force_login(personas.developer)

    response = client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/unlock/", headers={"HX-Request": "true"})

    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert list(events) == ["firmwareChanged", "showMessage", "closeModal"]
    assert events["showMessage"] == {"value": "Unlocked tracker-1."}
