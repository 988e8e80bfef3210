"""Device keys: issued and rotated by one service, from the device page ("Rotate device key") and
the admin's view of them; stored only as a keyed hash, never logged."""

import logging

import pytest

from console.models import AuditEvent
from devices import keys, services
from tests.conftest import HTMX
from tests.factories import DeviceFactory
from tests.gateway import device_client, keyed_device

pytestmark = pytest.mark.django_db

DEVICE_ID = "b2" * 12
URL = f"/products/acme/devices/{DEVICE_ID}/"
KEY_URL = URL + "key/"


@pytest.fixture
def device(personas):
    return DeviceFactory(product=personas.product, device_id=DEVICE_ID, firmware_version=3)


def test_issuing_a_key_stores_only_its_keyed_hash_and_records_an_audit_event(personas, device):
    raw = services.device_key_issue(device=device, actor=personas.developer)

    device.refresh_from_db()
    assert len(raw) >= 22  # at least 128 bits in URL-safe base64
    assert device.key_hash == keys.key_hash(raw) and raw not in device.key_hash
    assert device.key_rotated_at is not None
    event = AuditEvent.objects.get(action="device.key_issue")
    assert event.actor == personas.developer and event.device_ids == [DEVICE_ID]
    assert raw not in str(event.details) and device.key_hash not in str(event.details)


def test_the_keyed_hash_is_not_a_plain_sha256_of_the_key(device):
    import hashlib

    raw = keys.new_key()
    assert keys.key_hash(raw) != hashlib.sha256(raw.encode()).hexdigest()


def test_keys_are_random_and_distinct(device, personas):
    issued = {services.device_key_issue(device=device, actor=personas.developer) for _ in range(20)}
    assert len(issued) == 20


def test_rotating_makes_the_old_key_stop_working_at_once(personas, device):
    old = services.device_key_issue(device=device, actor=personas.developer)
    assert device_client(device, old).handshake(3).status_code == 200

    new = services.device_key_issue(device=device, actor=personas.admin)

    assert device_client(device, old).handshake(3).status_code == 401
    assert device_client(device, new).handshake(3).status_code == 200
    assert AuditEvent.objects.filter(action="device.key_rotate", actor=personas.admin).count() == 1


def test_the_raw_key_never_reaches_the_logs(personas, device, client_for, caplog):
    caplog.set_level(logging.DEBUG)
    raw = services.device_key_issue(device=device, actor=personas.developer)
    device_client(device, raw).handshake(3)
    device_client(device, raw + "x").handshake(3)
    response = client_for(personas.developer).post(KEY_URL, **HTMX)
    shown = response.content.decode().split('id="issued-device-key" class="mono" value="')[1].split('"')[0]

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert raw not in logged and shown not in logged


# -- the device page -------------------------------------------------------------------------


def test_the_device_page_says_whether_a_key_is_set_and_offers_rotation_to_developers(personas, client_for, device):
    client = client_for(personas.developer)
    html = client.get(URL).content.decode()
    assert "No key yet" in html and "Issue device key" in html

    services.device_key_issue(device=device, actor=personas.developer)

    html = client.get(URL).content.decode()
    assert "Set, issued" in html and "Rotate device key" in html
    assert device.key_hash not in html


@pytest.mark.parametrize("persona", ["viewer", "support"])
def test_read_only_members_see_the_key_state_but_cannot_rotate(personas, client_for, device, persona):
    client = client_for(getattr(personas, persona))
    assert "Rotate device key" not in client.get(URL).content.decode()
    assert client.get(KEY_URL).status_code == 403
    assert client.post(KEY_URL).status_code == 403
    device.refresh_from_db()
    assert device.key_hash == ""


def test_outsiders_get_404(personas, client_for, device):
    assert client_for(personas.outsider).post(KEY_URL).status_code == 404


def test_the_dialog_states_that_the_old_key_stops_working_now(personas, client_for, device):
    services.device_key_issue(device=device, actor=personas.developer)

    response = client_for(personas.developer).get(KEY_URL, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and "<dialog" in html
    assert "The old key stops working now" in html
    device.refresh_from_db()
    assert AuditEvent.objects.filter(action="device.key_rotate").count() == 0  # a GET changes nothing


def test_confirming_rotates_and_shows_the_new_key_once(personas, client_for, device):
    old = services.device_key_issue(device=device, actor=personas.developer)
    client = client_for(personas.developer)

    response = client.post(KEY_URL, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200 and "<dialog" not in html and "<html" not in html
    assert "devicesChanged" in response["HX-Trigger"]
    assert "no-store" in response["Cache-Control"]
    shown = html.split('id="issued-device-key" class="mono" value="')[1].split('"')[0]
    device.refresh_from_db()
    assert device.key_hash == keys.key_hash(shown) != keys.key_hash(old)
    assert shown not in client.get(URL).content.decode()  # only this once
    assert "Device key rotated" in client.get(URL).content.decode()


def test_without_htmx_the_page_shows_the_new_key(personas, client_for, device):
    response = client_for(personas.developer).post(KEY_URL)

    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and "New device key" in html
    device.refresh_from_db()
    assert device.has_key
