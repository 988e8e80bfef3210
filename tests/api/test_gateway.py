"""The device gateway (API.md, "Devices themselves"): /v1/device/handshake, update_failed and the
offer's download, authenticated by the device's own key."""

import io
import json
from datetime import timedelta
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone

from console.models import AuditEvent
from devices import services as device_services
from firmware.models import DeviceAuthFailure, Firmware, FirmwareUpdate
from groups.models import Group
from tests.api.conftest import error_of
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.gateway import DeviceClient, basic, device_client, keyed_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(personas):
    """v4 released to group europe, whose member (a keyed device) runs v2."""
    v4 = FirmwareFactory(product=personas.product, version=4, ever_released=True)
    device, key = keyed_device(personas.product, firmware_version=2)
    GroupFactory(product=personas.product, name="europe", released_firmware=v4, devices=[device])
    return v4, device, key


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


# -- the handshake -----------------------------------------------------------------------------


def test_a_handshake_records_the_version_and_offers_the_target_with_a_url_for_this_device(fleet):
    v4, device, key = fleet

    response = device_client(device, key).handshake(2)

    assert response.status_code == 200
    update = response.json()["update"]
    assert {name: update[name] for name in ("version", "size", "sha256")} == {
        "version": 4, "size": v4.size, "sha256": v4.sha256,
    }
    assert update["url"].startswith("http://testserver/v1/device/firmware/4?expires=")
    device.refresh_from_db()
    assert (device.firmware_version, device.online) == (2, True)
    assert device.last_handshake_at is not None
    assert FirmwareUpdate.objects.get(device=device).status == FirmwareUpdate.Status.PENDING


def test_a_handshake_on_target_settles_the_update_and_offers_nothing(fleet):
    v4, device, key = fleet
    client = device_client(device, key)
    client.handshake(2)

    response = client.handshake(4)

    assert response.json() == {"update": None}
    assert FirmwareUpdate.objects.get(device=device).status == FirmwareUpdate.Status.SUCCEEDED
    assert AuditEvent.objects.filter(action="firmware.update_succeeded").count() == 1


def test_a_device_may_report_no_version(fleet):
    v4, device, key = fleet

    assert device_client(device, key).handshake(None).json()["update"]["version"] == 4
    device.refresh_from_db()
    assert device.firmware_version is None and device.online


@pytest.mark.parametrize("version", [0, 70000, "two", True])
def test_an_invalid_version_is_a_400_and_records_nothing(fleet, version):
    v4, device, key = fleet

    response = device_client(device, key).handshake(version)

    assert response.status_code == 400
    assert "firmware_version" in error_of(response)["fields"]
    device.refresh_from_db()
    assert not device.online


def test_the_member_token_handshake_endpoints_are_gone(fleet, api):
    v4, device, key = fleet
    for path in ("handshake", "update_failed"):
        response = api("admin").post(f"/v1/products/acme/devices/{device.device_id}/{path}", {"firmware_version": 4})
        assert response.status_code == 404
    device.refresh_from_db()
    assert device.last_handshake_at is None


# -- failure reports ---------------------------------------------------------------------------


def test_a_failed_update_is_recorded_and_answered_204(fleet):
    v4, device, key = fleet
    client = device_client(device, key)
    client.handshake(2)

    response = client.update_failed(4, "flash write error")

    assert response.status_code == 204 and response.content == b""
    update = FirmwareUpdate.objects.get(device=device)
    assert (update.status, update.reason) == (FirmwareUpdate.Status.FAILED, "flash write error")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"version": 4}, "version"), ({}, "version"), ({"version": "x"}, "version"),
     ({"version": 4, "reason": "r" * 256}, "reason")],
)
def test_an_invalid_failure_report_is_a_400(fleet, body, field):
    v4, device, key = fleet

    response = device_client(device, key).post("/v1/device/update_failed", body)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]


# -- authentication ----------------------------------------------------------------------------


def _refusals(personas, api, fleet):
    """The answers to every way of not being a device, each for a fresh device ID."""
    v4, device, key = fleet
    removed, removed_key = keyed_device(personas.product)
    device_services.device_remove(device=removed, actor=personas.admin)
    keyless = DeviceFactory(product=personas.product)
    raw_token = api("admin").raw
    return {
        "wrong key": DeviceClient(device.device_id, key[:-1] + ("A" if key[-1] != "A" else "B")).handshake(2),
        "unknown device": DeviceClient("ab" * 12, key).handshake(2),
        "removed device": DeviceClient(removed.device_id, removed_key).handshake(2),
        "device without a key": DeviceClient(keyless.device_id, key).handshake(2),
        "member's token": device_client(device, key).client.post(
            "/v1/device/handshake", json.dumps({"firmware_version": 2}), content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw_token}"),
        "malformed device ID": DeviceClient("not-a-device", key).handshake(2),
    }


def test_every_refusal_is_the_same_401(personas, api, fleet):
    answers = _refusals(personas, api, fleet)

    shapes = {
        case: (response.status_code, response.content, response["WWW-Authenticate"], response["Content-Type"])
        for case, response in answers.items()
    }
    assert len(set(shapes.values())) == 1, shapes
    status, content, challenge, _type = next(iter(shapes.values()))
    assert status == 401 and challenge.startswith("Basic ")
    assert json.loads(content)["error"] == "invalid_device_credentials"
    v4, device, key = fleet
    device.refresh_from_db()
    assert device.last_handshake_at is None


def test_repeated_failures_for_a_device_are_throttled_even_with_the_right_key(fleet, settings):
    settings.DEVICE_AUTH_FAILURES = 3
    v4, device, key = fleet
    wrong = DeviceClient(device.device_id, "wrong-key")

    assert [wrong.handshake(2).status_code for _ in range(3)] == [401, 401, 401]
    throttled = device_client(device, key).handshake(2)

    assert throttled.status_code == 429
    assert error_of(throttled)["error"] == "too_many_requests"
    assert 0 < int(throttled["Retry-After"]) <= settings.DEVICE_AUTH_WINDOW_SECONDS
    assert device_client(device, key).update_failed(4).status_code == 429
    device.refresh_from_db()
    assert device.last_handshake_at is None
    assert DeviceAuthFailure.objects.get(device_id=device.device_id).failures == 3


def test_the_throttle_ends_with_its_window_and_other_devices_are_not_affected(personas, fleet, settings):
    settings.DEVICE_AUTH_FAILURES = 2
    v4, device, key = fleet
    other, other_key = keyed_device(personas.product)
    for _ in range(2):
        DeviceClient(device.device_id, "wrong-key").handshake(2)
    assert device_client(other, other_key).handshake(None).status_code == 200

    DeviceAuthFailure.objects.filter(device_id=device.device_id).update(
        window_started_at=timezone.now() - timedelta(seconds=settings.DEVICE_AUTH_WINDOW_SECONDS + 1)
    )

    assert device_client(device, key).handshake(2).status_code == 200


def test_an_unknown_device_id_is_throttled_like_a_known_one(fleet, settings):
    settings.DEVICE_AUTH_FAILURES = 2
    stranger = DeviceClient("cd" * 12, "guess")

    assert [stranger.handshake(1).status_code for _ in range(3)] == [401, 401, 429]


# -- downloads ---------------------------------------------------------------------------------


def test_a_device_downloads_the_binary_it_was_offered(fleet):
    v4, device, key = fleet
    client = device_client(device, key)
    url = client.handshake(2).json()["update"]["url"]

    response = client.get(_path(url))

    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    assert b"".join(response.streaming_content) == b"firmware 4"


def test_another_device_cannot_use_a_devices_download_url(personas, fleet):
    v4, device, key = fleet
    url = device_client(device, key).handshake(2).json()["update"]["url"]
    neighbour, neighbour_key = keyed_device(personas.product)

    response = device_client(neighbour, neighbour_key).get(_path(url))

    assert response.status_code == 404
    assert error_of(response)["error"] == "not_found"


def test_a_device_cannot_fetch_another_products_binary(personas, fleet):
    v4, device, key = fleet
    FirmwareFactory(product=personas.other_product, version=7)
    url = device_client(device, key).handshake(2).json()["update"]["url"]

    response = device_client(device, key).get(_path(url).replace("/firmware/4?", "/firmware/7?"))

    assert response.status_code == 404


def test_a_changed_signature_is_404_and_a_members_token_is_401(fleet, api):
    v4, device, key = fleet
    url = _path(device_client(device, key).handshake(2).json()["update"]["url"])

    assert device_client(device, key).get(url[:-1] + ("0" if url[-1] != "0" else "1")).status_code == 404
    assert api("admin").get(url).status_code == 401


def test_a_download_url_expires(fleet, settings):
    v4, device, key = fleet
    settings.FIRMWARE_URL_SECONDS = -1
    url = _path(device_client(device, key).handshake(2).json()["update"]["url"])

    response = device_client(device, key).get(url)

    assert response.status_code == 403
    assert error_of(response)["error"] == "url_expired"


def test_a_download_url_names_the_firmware_so_a_reuploaded_version_needs_a_new_one(personas, fleet):
    v4, device, key = fleet
    url = _path(device_client(device, key).handshake(2).json()["update"]["url"])
    Group.objects.filter(released_firmware=v4).update(released_firmware=None)
    Firmware.objects.filter(pk=v4.pk).delete()
    FirmwareFactory(product=personas.product, version=4)

    assert device_client(device, key).get(url).status_code == 404


# -- proof that a version ran ------------------------------------------------------------------


def test_a_report_records_the_first_and_last_device_that_ran_the_version(personas, fleet):
    v4, device, key = fleet
    second, second_key = keyed_device(personas.product)

    device_client(device, key).handshake(4)
    v4.refresh_from_db()
    first_at = v4.first_reported_at
    assert (v4.first_reported_by, v4.last_reported_by) == (device.device_id, device.device_id)
    Firmware.objects.filter(pk=v4.pk).update(last_reported_at=timezone.now() - timedelta(minutes=5))
    device_client(second, second_key).handshake(4)

    v4.refresh_from_db()
    assert (v4.first_reported_at, v4.first_reported_by) == (first_at, device.device_id)
    assert v4.last_reported_by == second.device_id and v4.last_reported_at > first_at


def test_a_version_the_product_does_not_have_is_stored_as_running_and_proves_nothing(personas, fleet):
    v4, device, key = fleet
    other_products_v9 = FirmwareFactory(product=personas.other_product, version=9)

    device_client(device, key).handshake(9)

    device.refresh_from_db()
    other_products_v9.refresh_from_db()
    assert device.firmware_version == 9
    assert other_products_v9.first_reported_at is None
    assert not Firmware.objects.filter(product=personas.product, first_reported_at__isnull=False).exists()


# -- the lean path -----------------------------------------------------------------------------


def _wsgi(application, method, path, body=b"", headers=None):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json", **(headers or {})}
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(response_headers)

    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = application(environ, start_response)
        answer["body"] = b"".join(chunks)
        chunks.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer


def test_the_wsgi_application_serves_the_gateway_without_the_consoles_middleware(fleet):
    from console.wsgi import application

    v4, device, key = fleet
    auth = {"HTTP_AUTHORIZATION": basic(device.device_id, key)}

    handshake = _wsgi(application, "POST", "/v1/device/handshake", b'{"firmware_version": 2}', auth)
    console_page = _wsgi(application, "GET", "/login/")

    assert handshake["status"] == 200 and json.loads(handshake["body"])["update"]["version"] == 4
    # The console's middleware adds these; the gateway's path skips it.
    assert "Content-Security-Policy" in console_page["headers"]
    assert "Content-Security-Policy" not in handshake["headers"] and "Vary" not in handshake["headers"]
    assert handshake["headers"]["Cache-Control"] == "no-store"
    assert _wsgi(application, "POST", "/v1/device/nothing", b"{}", auth)["status"] == 404
    refused = _wsgi(application, "POST", "/v1/device/handshake", b"{}", {"HTTP_AUTHORIZATION": "Basic x"})
    assert refused["status"] == 401 and json.loads(refused["body"])["error"] == "invalid_device_credentials"
    device.refresh_from_db()
    assert device.online


def test_the_lean_path_refuses_an_oversize_body_before_reading_it(fleet):
    from console.wsgi import application

    v4, device, key = fleet
    auth = {"HTTP_AUTHORIZATION": basic(device.device_id, key)}

    answer = _wsgi(application, "POST", "/v1/device/handshake", b"{" + b" " * 20_000 + b"}", auth)

    assert answer["status"] == 413 and json.loads(answer["body"])["error"] == "payload_too_large"
    device.refresh_from_db()
    assert device.last_handshake_at is None


def test_a_flashed_development_device_is_offered_the_flash_and_reporting_it_proves_the_version(personas):
    """Cloud flash: the development device's next handshake gets the flashed version; its report
    of it ends the flash and is the proof that lets the version be released."""
    from firmware import services as firmware_services

    v7 = FirmwareFactory(product=personas.product, version=7)
    device, key = keyed_device(personas.product, development=True, firmware_version=6)
    device_services.device_flash(device=device, firmware=v7, actor=personas.developer)
    client = device_client(device, key)

    assert client.handshake(6).json()["update"]["version"] == 7
    assert client.handshake(7).json() == {"update": None}

    device.refresh_from_db()
    v7.refresh_from_db()
    assert device.flash_version is None and device.firmware_version == 7
    assert v7.first_reported_by == device.device_id
    firmware_services.firmware_release(firmware=v7, product_default=True, actor=personas.developer)
