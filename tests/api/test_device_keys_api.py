"""POST /v1/products/:product/devices/:id/key and import with issue_keys (API.md, "Devices themselves")."""

import pytest

from console.models import AuditEvent
from devices import keys
from devices.models import Device
from tests.api.conftest import error_of
from tests.factories import DeviceFactory
from tests.gateway import DeviceClient

pytestmark = pytest.mark.django_db

DEVICE_ID = "c3" * 12


@pytest.fixture
def device(personas):
    return DeviceFactory(product=personas.product, device_id=DEVICE_ID)


def test_a_developer_issues_a_key_that_the_gateway_accepts(personas, api, device):
    response = api("developer").post(f"/v1/products/acme/devices/{DEVICE_ID}/key")

    assert response.status_code == 201
    body = response.json()
    assert body["id"] == DEVICE_ID and isinstance(body["device_key"], str)
    device.refresh_from_db()
    assert device.key_hash == keys.key_hash(body["device_key"])
    assert DeviceClient(DEVICE_ID, body["device_key"]).handshake(None).status_code == 200
    assert AuditEvent.objects.filter(action="device.key_issue", token__isnull=False).count() == 1


def test_issuing_again_rotates_and_the_previous_key_stops_working(personas, api, device):
    client = api("admin")
    first = client.post(f"/v1/products/acme/devices/{DEVICE_ID}/key").json()["device_key"]
    second = client.post(f"/v1/products/acme/devices/{DEVICE_ID}/key").json()["device_key"]

    assert first != second
    assert DeviceClient(DEVICE_ID, first).handshake(None).status_code == 401
    assert DeviceClient(DEVICE_ID, second).handshake(None).status_code == 200
    assert AuditEvent.objects.filter(action="device.key_rotate").count() == 1


@pytest.mark.parametrize("persona, status", [("viewer", 403), ("support", 403), ("outsider", 404)])
def test_read_only_members_and_outsiders_cannot_issue_keys(personas, api, device, persona, status):
    response = api(persona).post(f"/v1/products/acme/devices/{DEVICE_ID}/key")

    assert response.status_code == status
    error_of(response)
    device.refresh_from_db()
    assert device.key_hash == ""


def test_an_unknown_device_is_404(personas, api):
    assert api("admin").post(f"/v1/products/acme/devices/{'d4' * 12}/key").status_code == 404


def test_import_with_issue_keys_answers_each_new_devices_key_once(personas, api, device):
    new = ["e5" * 12, "F6" * 12]

    response = api("admin").post("/v1/products/acme/devices", {"ids": [*new, DEVICE_ID], "issue_keys": True})

    body = response.json()
    assert response.status_code == 200
    assert body["updatedDeviceIds"] == ["e5" * 12, "f6" * 12] and body["existingDeviceIds"] == [DEVICE_ID]
    assert set(body["device_keys"]) == {"e5" * 12, "f6" * 12}
    for device_id, raw in body["device_keys"].items():
        assert Device.objects.get(device_id=device_id).key_hash == keys.key_hash(raw)
        assert DeviceClient(device_id, raw).handshake(None).status_code == 200
    device.refresh_from_db()
    assert device.key_hash == ""  # an existing device keeps what it had
    event = AuditEvent.objects.get(action="device.key_issue")
    assert event.device_count == 2 and not any(raw in str(event.details) for raw in body["device_keys"].values())


def test_import_without_issue_keys_answers_no_keys(personas, api):
    body = api("admin").post("/v1/products/acme/devices", {"ids": ["e5" * 12]}).json()

    assert "device_keys" not in body
    assert Device.objects.get(device_id="e5" * 12).key_hash == ""


def test_a_file_import_may_ask_for_keys_too(personas, api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("ids.txt", ("e5" * 12 + "\n").encode())

    body = api("admin").multipart("/v1/products/acme/devices", {"file": upload, "issue_keys": "true"}).json()

    assert set(body["device_keys"]) == {"e5" * 12}


def test_the_key_endpoint_and_the_import_field_are_in_the_openapi_schema(api):
    schema = api(None).get("/v1/openapi.json").json()

    assert "post" in schema["paths"]["/v1/products/{product}/devices/{device_id}/key"]
    import_body = schema["paths"]["/v1/products/{product}/devices"]["post"]["requestBody"]["content"]
    assert "issue_keys" in import_body["application/json"]["schema"]["properties"]
