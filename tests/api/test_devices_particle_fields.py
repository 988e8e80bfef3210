"""Particle's own fields of the product device endpoints: cloud flash, signal, quarantine
(list, approve by import, deny, dismiss), import by serial number, IMEI or ICCID, and unclaim."""

import pytest
from django.db import connection  # noqa: F401 - the skipif condition names it
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from console.models import AuditEvent
from devices import services
from devices.models import Device, QuarantinedDevice
from tests.api.conftest import error_of
from tests.factories import DeviceFactory, FirmwareFactory
from tests.gateway import device_client, keyed_device

pytestmark = pytest.mark.django_db

DEVICES = "/v1/products/acme/devices"
QUARANTINED = "c0ffee" + "0" * 18


def _flash(client, device_id, binary: bytes, **fields):
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("app.bin", binary), "latest": "true", **fields})
    return client.raw_body("PUT", f"{DEVICES}/{device_id}", body, MULTIPART_CONTENT)


@pytest.fixture
def firmware(personas):
    return FirmwareFactory(product=personas.product, version=5)  # its binary is b"firmware 5"


def test_flashing_a_product_binary_to_a_development_device_offers_it_at_the_next_handshake(personas, api, firmware):
    device, key = keyed_device(personas.product, development=True, firmware_version=3)
    client = api("developer")

    response = _flash(client, device.device_id, b"firmware 5")

    assert response.status_code == 200, response.json()
    assert response.json()["flash_version"] == 5 and response.json()["status"] == "Update pending"
    device.refresh_from_db()
    assert device.flash_version == 5
    assert AuditEvent.objects.filter(action="device.flash", details__version=5).exists()
    # The device itself, through the gateway with its key.
    offer = device_client(device, key).handshake(3).json()
    assert offer["update"]["version"] == 5
    assert device_client(device, key).handshake(5).json() == {"update": None}
    device.refresh_from_db()
    assert (device.firmware_version, device.flash_version, device.development) == (5, None, True)


def test_a_flash_and_development_in_one_call_mark_then_flash(personas, api, firmware):
    device = DeviceFactory(product=personas.product)
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("a.bin", b"firmware 5"), "development": "true"})

    response = api("developer").raw_body("PUT", f"{DEVICES}/{device.device_id}", body, MULTIPART_CONTENT)

    assert response.status_code == 200
    device.refresh_from_db()
    assert (device.development, device.flash_version) == (True, 5)


def test_flashing_a_device_not_in_development_is_refused_and_changes_nothing(personas, api, firmware):
    device = DeviceFactory(product=personas.product)

    response = _flash(api("developer"), device.device_id, b"firmware 5")

    assert response.status_code == 400
    assert "development device" in error_of(response)["error_description"]
    device.refresh_from_db()
    assert device.flash_version is None
    assert not AuditEvent.objects.filter(action="device.flash").exists()


def test_a_binary_that_is_no_product_firmware_is_refused_before_anything_changes(personas, api, firmware):
    device = DeviceFactory(product=personas.product)
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("a.bin", b"not ours"), "development": "true",
                                       "name": "renamed"})

    response = api("developer").raw_body("PUT", f"{DEVICES}/{device.device_id}", body, MULTIPART_CONTENT)

    assert response.status_code == 400
    assert "file" in error_of(response)["fields"]
    device.refresh_from_db()
    assert (device.development, device.name, device.flash_version) == (False, device.name, None)
    assert device.name != "renamed"


def test_unmarking_development_drops_a_pending_flash(personas, api, firmware):
    device = DeviceFactory(product=personas.product, development=True, flash_version=5)

    api("developer").put(f"{DEVICES}/{device.device_id}", {"development": False})

    device.refresh_from_db()
    assert device.flash_version is None


def test_signal_is_refused_as_the_device_cannot_be_reached_and_nothing_changes(personas, api):
    device = DeviceFactory(product=personas.product, online=True)

    response = api("developer").put(f"{DEVICES}/{device.device_id}", {"signal": True, "name": "renamed"})

    assert response.status_code == 400
    assert error_of(response)["error"] == "device_not_connected"
    device.refresh_from_db()
    assert device.name != "renamed"


def test_firmware_updates_forced_is_accepted(personas, api):
    device = DeviceFactory(product=personas.product)

    response = api("developer").put(f"{DEVICES}/{device.device_id}", {"firmware_updates_forced": True})

    assert response.status_code == 200
    assert response.json()["firmware_updates_forced"] is True


def test_a_field_particle_does_not_document_is_still_unknown(personas, api):
    device = DeviceFactory(product=personas.product)

    response = api("developer").put(f"{DEVICES}/{device.device_id}", {"colour": "red"})

    assert response.status_code == 400
    assert error_of(response)["fields"] == {"colour": ["Unknown field."]}


def test_devices_carry_connected_imei_and_iccid(personas, api):
    device = DeviceFactory(product=personas.product, online=True, imei="356938035643809", iccid="8934076500002587657")

    body = api("viewer").get(f"{DEVICES}/{device.device_id}").json()

    assert (body["connected"], body["imei"], body["iccid"]) == (True, "356938035643809", "8934076500002587657")


# Quarantine -----------------------------------------------------------------------------------


def test_a_device_that_gets_in_touch_without_being_imported_is_quarantined(personas):
    member = DeviceFactory(product=personas.product)

    assert services.device_contact(product=personas.product, device_id=member.device_id) == "member"
    assert services.device_contact(product=personas.product, device_id=QUARANTINED, serial_number="P0Q1") == "quarantined"
    assert QuarantinedDevice.objects.get(device_id=QUARANTINED).serial_number == "P0Q1"
    assert not Device.objects.filter(device_id=QUARANTINED).exists()


def test_the_list_of_quarantined_devices_is_asked_with_quarantined_true(personas, api):
    services.device_contact(product=personas.product, device_id=QUARANTINED, serial_number="P0Q1")
    DeviceFactory(product=personas.product)

    body = api("viewer").get(DEVICES, {"quarantined": "true"}).json()

    assert [row["id"] for row in body["devices"]] == [QUARANTINED]
    assert body["devices"][0]["quarantined"] is True and body["devices"][0]["serial_number"] == "P0Q1"
    assert body["meta"]["total"] == 1
    assert api("viewer").get(f"{DEVICES}/{QUARANTINED}").json()["quarantined"] is True


def test_a_restricted_member_sees_no_quarantined_device(personas, api):
    services.device_contact(product=personas.product, device_id=QUARANTINED)

    assert api("restricted").get(DEVICES, {"quarantined": "true"}).json()["devices"] == []
    assert api("restricted").get(f"{DEVICES}/{QUARANTINED}").status_code == 404


def test_importing_a_quarantined_device_approves_it_with_what_it_reported(personas, api):
    services.device_contact(product=personas.product, device_id=QUARANTINED, serial_number="P0Q1", imei="356938035643809")

    body = api("developer").post(DEVICES, {"id": QUARANTINED}).json()

    assert body["updatedDeviceIds"] == [QUARANTINED]
    device = Device.objects.get(device_id=QUARANTINED)
    assert (device.product, device.serial_number, device.imei) == (personas.product, "P0Q1", "356938035643809")
    assert not QuarantinedDevice.objects.exists()
    assert AuditEvent.objects.filter(action="device.approve", device_count=1).exists()


def test_importing_by_serial_number_imei_or_iccid_adds_the_device_they_name(personas, api):
    services.device_contact(product=personas.product, device_id=QUARANTINED, serial_number="P0Q1")
    services.device_contact(product=personas.product, device_id="d" * 24, imei="356938035643809")
    services.device_contact(product=personas.product, device_id="e" * 24, iccid="8934076500002587657")
    existing = DeviceFactory(product=personas.product, serial_number="P0MINE")
    DeviceFactory(product=personas.other_product, serial_number="P0THEIRS")

    body = api("developer").post(
        DEVICES, {"ids": ["P0Q1", "356938035643809", "8934076500002587657", "P0MINE", "P0THEIRS", "P0NOBODY"]}
    ).json()

    assert sorted(body["updatedDeviceIds"]) == sorted([QUARANTINED, "d" * 24, "e" * 24])
    assert body["existingDeviceIds"] == [existing.device_id]
    # Another product's device is named as it was sent: its device ID is not revealed.
    assert body["nonmemberDeviceIds"] == ["P0THEIRS"]
    assert body["invalidDeviceIds"] == ["P0NOBODY"]
    assert Device.objects.filter(product=personas.product).count() == 4


def test_a_serial_number_two_devices_share_is_invalid(personas, api):
    services.device_contact(product=personas.product, device_id=QUARANTINED, serial_number="P0TWIN")
    DeviceFactory(product=personas.other_product, serial_number="P0TWIN")

    body = api("developer").post(DEVICES, {"ids": ["P0TWIN"]}).json()

    assert body["invalidDeviceIds"] == ["P0TWIN"] and body["updated"] == 0


def test_denying_a_quarantined_device_keeps_it_out(personas, api):
    services.device_contact(product=personas.product, device_id=QUARANTINED)

    response = api("developer").client.delete(
        f"{DEVICES}/{QUARANTINED}", '{"deny": true}', content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api('developer').raw}",
    )

    assert response.status_code == 204
    assert QuarantinedDevice.objects.get(device_id=QUARANTINED).denied_at is not None
    assert api("viewer").get(DEVICES, {"quarantined": "true"}).json()["devices"] == []
    assert api("viewer").get(f"{DEVICES}/{QUARANTINED}").json()["denied"] is True
    assert services.device_contact(product=personas.product, device_id=QUARANTINED) == "denied"
    assert AuditEvent.objects.filter(action="device.deny", details__denied=[QUARANTINED]).exists()


def test_removing_a_device_with_deny_removes_it_and_refuses_it_from_then_on(personas, api):
    device = DeviceFactory(product=personas.product, serial_number="P0GONE")

    response = api("admin").delete(f"{DEVICES}/{device.device_id}?deny=true")

    assert response.status_code == 204
    assert not Device.objects.filter(pk=device.pk).exists()
    denied = QuarantinedDevice.objects.get(device_id=device.device_id)
    assert denied.denied_at is not None and denied.serial_number == "P0GONE"
    assert services.device_contact(product=personas.product, device_id=device.device_id) == "denied"


def test_removing_a_quarantined_device_without_deny_dismisses_it(personas, api):
    services.device_contact(product=personas.product, device_id=QUARANTINED)

    assert api("developer").delete(f"{DEVICES}/{QUARANTINED}").status_code == 204
    assert not QuarantinedDevice.objects.exists()
    assert services.device_contact(product=personas.product, device_id=QUARANTINED) == "quarantined"


def test_a_viewer_cannot_deny_and_an_outsider_gets_404(personas, api):
    services.device_contact(product=personas.product, device_id=QUARANTINED)

    assert api("viewer").delete(f"{DEVICES}/{QUARANTINED}?deny=true").status_code == 403
    assert api("outsider").delete(f"{DEVICES}/{QUARANTINED}?deny=true").status_code == 404
    assert QuarantinedDevice.objects.get(device_id=QUARANTINED).denied_at is None


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="SQLite batches bulk inserts by parameter count, so its count grows"
)
def test_approving_many_takes_the_same_queries_for_2_or_100(personas, django_assert_num_queries):
    for count, start in ((2, 0x100), (100, 0x200)):
        ids = [f"{n:024x}" for n in range(start, start + count)]
        for device_id in ids:
            services.device_contact(product=personas.product, device_id=device_id)
        # a savepoint; the quarantine rows, the devices INSERT, which are ours, the DELETE, the
        # event and its devices; the savepoint's release
        with django_assert_num_queries(8):
            assert services.quarantine_approve(product=personas.product, device_ids=ids, actor=personas.admin) == ids


def test_unclaiming_a_device_leaves_it_as_it_is(personas, api):
    device = DeviceFactory(product=personas.product)

    response = api("developer").delete(f"{DEVICES}/{device.device_id}/owner")

    assert response.status_code == 200 and response.json() == {"ok": True}
    assert Device.objects.filter(pk=device.pk, product=personas.product).exists()
    assert api("outsider").delete(f"{DEVICES}/{device.device_id}/owner").status_code == 404
