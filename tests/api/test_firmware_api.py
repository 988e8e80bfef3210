"""/v1/products/:product/firmware and /impact (the device gateway is in test_gateway.py)."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from console.models import AuditEvent
from devices.models import Device
from firmware.models import Firmware, FirmwareUpdate
from groups.models import Group
from tests.api.conftest import error_of
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

pytestmark = pytest.mark.django_db

FIRMWARE = "/v1/products/acme/firmware"
BINARY = b"\x7fELF firmware bytes" * 10


def _upload(client, version="7", title="Door fix", name="firmware.bin", content=BINARY, **extra):
    data = {"version": version, "title": title, **extra}
    if content is not None:
        data[name] = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.multipart(FIRMWARE, data)


# -- upload ------------------------------------------------------------------------------------


def test_uploading_stores_the_binary_with_its_digest_and_answers_201(personas, api):
    response = _upload(api("developer"), description="Fixes the door")

    assert response.status_code == 201
    body = response.json()
    assert {
        key: body[key]
        for key in (
            "version",
            "title",
            "description",
            "size",
            "product_default",
            "current",
            "groups",
            "intelligent",
            "uploaded_by",
            "device_count",
        )
    } == {
        "version": 7,
        "title": "Door fix",
        "description": "Fixes the door",
        "size": len(BINARY),
        "product_default": False,
        "current": False,
        "groups": [],
        "intelligent": False,
        "uploaded_by": {"username": "developer"},
        "device_count": 0,
    }
    firmware = Firmware.objects.get(product=personas.product, version=7)
    assert firmware.sha256 == hashlib.sha256(BINARY).hexdigest() == body["sha256"]
    assert firmware.binary.read() == BINARY
    assert body["uploaded_on"].endswith("Z")


def test_any_file_part_name_is_accepted(personas, api):
    assert _upload(api("developer"), name="binary").status_code == 201
    assert Firmware.objects.filter(version=7).exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"version": "0"}, "version"),
        ({"version": "65536"}, "version"),
        ({"version": "seven"}, "version"),
        ({"title": ""}, "title"),
        ({"title": "t" * 65}, "title"),
        ({"content": None}, "binary"),
        ({"content": b""}, "binary"),
    ],
)
def test_an_invalid_upload_is_a_400_naming_the_field_and_stores_nothing(personas, api, kwargs, field):
    response = _upload(api("developer"), **kwargs)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert not Firmware.objects.exists()


def test_a_duplicate_version_is_a_400_saying_it_exists(personas, api):
    FirmwareFactory(product=personas.product, version=7, title="First")

    response = _upload(api("developer"))

    assert response.status_code == 400
    assert error_of(response)["error_description"] == "Firmware version already exists"
    assert Firmware.objects.get(version=7).title == "First"


def test_an_oversize_binary_is_a_413(personas, api, settings):
    settings.FIRMWARE_MAX_BYTES = 100

    response = _upload(api("developer"), content=b"x" * 101)

    assert response.status_code == 413
    assert error_of(response)["error"] == "payload_too_large"
    assert not Firmware.objects.exists()


def test_a_json_upload_is_a_400(personas, api):
    response = api("developer").post(FIRMWARE, {"version": 7, "title": "x"})
    assert response.status_code == 400
    assert "binary" in error_of(response)["fields"]


def test_view_only_and_restricted_tokens_cannot_upload(personas, api):
    assert _upload(api("viewer")).status_code == 403
    assert _upload(api("restricted")).status_code == 403
    assert not Firmware.objects.exists()


def test_uploading_to_another_product_is_404(personas, api):
    response = api("admin").multipart(
        "/v1/products/other/firmware", {"version": "7", "title": "x", "file": SimpleUploadedFile("f.bin", BINARY)}
    )
    assert response.status_code == 404
    assert not Firmware.objects.exists()


# -- list, detail, binary ----------------------------------------------------------------------


def test_the_list_is_an_array_newest_first_with_groups_default_and_running_counts(personas, api):
    old, new = (
        FirmwareFactory(product=personas.product, version=2),
        FirmwareFactory(product=personas.product, version=5),
    )
    GroupFactory(product=personas.product, name="europe", released_firmware=new)
    personas.product.default_firmware = old
    personas.product.save()
    for _ in range(2):
        DeviceFactory(product=personas.product, firmware_version=2)
    FirmwareFactory(product=personas.other_product, version=9)

    response = api("viewer").get(FIRMWARE)

    assert response.status_code == 200
    rows = [(fw["version"], fw["groups"], fw["product_default"], fw["device_count"]) for fw in response.json()]
    assert rows == [(5, ["europe"], False, 0), (2, [], True, 2)]


def test_the_list_takes_the_same_queries_whatever_the_number_of_versions(personas, api, django_assert_num_queries):
    client = api("viewer")
    for version in (1, 2):
        FirmwareFactory(product=personas.product, version=version)
    # token, membership, firmware, restricted groups, released groups, running counts
    with django_assert_num_queries(5):
        assert len(client.get(FIRMWARE).json()) == 2
    for version in range(3, 20):
        FirmwareFactory(product=personas.product, version=version)
    with django_assert_num_queries(5):
        assert len(client.get(FIRMWARE).json()) == 19


def test_one_version(personas, api):
    FirmwareFactory(product=personas.product, version=3, title="Three")
    response = api("viewer").get(f"{FIRMWARE}/3")
    assert response.status_code == 200
    assert response.json()["title"] == "Three"


def test_an_unknown_or_foreign_version_is_404(personas, api):
    FirmwareFactory(product=personas.other_product, version=3)
    assert api("admin").get(f"{FIRMWARE}/3").status_code == 404
    assert api("admin").get("/v1/products/other/firmware/3").status_code == 404


def test_the_binary_downloads_as_octet_stream(personas, api):
    _upload(api("developer"))

    response = api("viewer").get(f"{FIRMWARE}/7/binary")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert b"".join(response.streaming_content) == BINARY


def test_another_products_binary_is_404(personas, api):
    FirmwareFactory(product=personas.other_product, version=3)
    assert api("admin").get("/v1/products/other/firmware/3/binary").status_code == 404


# -- edit and delete ---------------------------------------------------------------------------


def test_editing_changes_title_and_description(personas, api):
    FirmwareFactory(product=personas.product, version=3, title="Old")

    response = api("developer").put(f"{FIRMWARE}/3", {"title": "New", "description": "Better"})

    assert response.status_code == 200
    firmware = Firmware.objects.get(version=3)
    assert (firmware.title, firmware.description) == ("New", "Better")
    assert AuditEvent.objects.filter(action="firmware.edit").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"title": "t" * 65}, "title"),
        ({"name": "x"}, "name"),
    ],
)
def test_an_invalid_edit_is_a_400_and_changes_nothing(personas, api, body, field):
    FirmwareFactory(product=personas.product, version=3, title="Old")
    response = api("developer").put(f"{FIRMWARE}/3", body)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert Firmware.objects.get(version=3).title == "Old"


def test_a_view_only_token_cannot_edit_firmware(personas, api):
    FirmwareFactory(product=personas.product, version=3, title="Old")
    assert api("viewer").put(f"{FIRMWARE}/3", {"title": "New"}).status_code == 403
    assert Firmware.objects.get(version=3).title == "Old"


def test_deleting_a_never_released_version_answers_204(personas, api):
    FirmwareFactory(product=personas.product, version=3)
    assert api("developer").delete(f"{FIRMWARE}/3").status_code == 204
    assert not Firmware.objects.exists()


def test_deleting_a_released_version_is_a_400_saying_so(personas, api):
    FirmwareFactory(product=personas.product, version=3, ever_released=True)

    response = api("developer").delete(f"{FIRMWARE}/3")

    assert response.status_code == 400
    assert "released" in error_of(response)["error_description"]
    assert Firmware.objects.filter(version=3).exists()


def test_a_view_only_token_cannot_delete_firmware(personas, api):
    FirmwareFactory(product=personas.product, version=3)
    assert api("viewer").delete(f"{FIRMWARE}/3").status_code == 403
    assert Firmware.objects.filter(version=3).exists()


# -- release -----------------------------------------------------------------------------------


def _proven(product, version):
    return proven_firmware(product, version)


def test_releasing_to_groups_and_as_default_stores_both(personas, api):
    firmware = _proven(personas.product, 4)
    GroupFactory(product=personas.product, name="europe")

    response = api("developer").put(
        f"{FIRMWARE}/release", {"version": 4, "groups": ["europe"], "product_default": True, "intelligent": True}
    )

    assert response.status_code == 200
    assert (response.json()["groups"], response.json()["product_default"]) == (["europe"], True)
    assert response.json()["current"] is True  # Particle's older name for the product default
    personas.product.refresh_from_db()
    firmware.refresh_from_db()
    assert personas.product.default_firmware == firmware
    assert firmware.intelligent and firmware.ever_released
    assert Group.objects.get(name="europe").released_firmware == firmware


def test_groups_is_the_complete_list_so_an_empty_list_unreleases(personas, api):
    firmware = _proven(personas.product, 4)
    GroupFactory(product=personas.product, name="europe", released_firmware=firmware)

    response = api("developer").put(f"{FIRMWARE}/release", {"version": 4, "groups": []})

    assert response.json()["groups"] == []
    assert Group.objects.get(name="europe").released_firmware is None


def test_a_release_can_be_form_encoded_with_a_groups_list(personas, api):
    _proven(personas.product, 4)
    GroupFactory(product=personas.product, name="europe")

    response = api("developer").form("PUT", f"{FIRMWARE}/release", "version=4&groups[]=europe&groups[]=partner-fleet")

    assert response.status_code == 200
    assert sorted(Group.objects.filter(released_firmware__version=4).values_list("name", flat=True)) == [
        "europe",
        "partner-fleet",
    ]


def test_a_version_no_device_has_run_cannot_be_released(personas, api):
    FirmwareFactory(product=personas.product, version=4)

    response = api("developer").put(f"{FIRMWARE}/release", {"version": 4, "product_default": True})

    assert response.status_code == 400
    assert "reported running" in error_of(response)["error_description"]
    personas.product.refresh_from_db()
    assert personas.product.default_firmware is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": 9}, "version"),
        ({"version": "four"}, "version"),
        ({}, "version"),
        ({"version": 4, "groups": ["nowhere"]}, "groups"),
        ({"version": 4, "product_default": "yes"}, "product_default"),
        ({"version": 4, "intelligent": 0}, "intelligent"),
        ({"version": 4, "group": ["europe"]}, "group"),
    ],
)
def test_an_invalid_release_is_a_400_naming_the_field_and_releases_nothing(personas, api, body, field):
    _proven(personas.product, 4)

    response = api("developer").put(f"{FIRMWARE}/release", body)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert not Firmware.objects.get(version=4).ever_released


def test_view_only_tokens_cannot_release_and_restricted_ones_not_as_product_default(personas, api):
    _proven(personas.product, 4)
    assert api("support").put(f"{FIRMWARE}/release", {"version": 4, "groups": ["partner-fleet"]}).status_code == 403
    assert api("restricted").put(f"{FIRMWARE}/release", {"version": 4, "product_default": True}).status_code == 403
    assert not Firmware.objects.get(version=4).ever_released


def test_a_restricted_token_cannot_flip_the_product_wide_intelligent_flag(personas, api):
    v4 = _proven(personas.product, 4)
    GroupFactory(product=personas.product, name="europe", released_firmware=v4)

    response = api("restricted").put(f"{FIRMWARE}/release", {"version": 4, "intelligent": True})

    assert response.status_code == 403
    assert "whole product" in error_of(response)["error_description"]
    v4.refresh_from_db()
    assert v4.intelligent is False
    assert not AuditEvent.objects.filter(action="firmware.release").exists()


def test_a_restricted_tokens_release_to_its_group_leaves_the_intelligent_flag_alone(personas, api):
    v4 = _proven(personas.product, 4)
    Firmware.objects.filter(pk=v4.pk).update(intelligent=True)

    response = api("restricted").put(f"{FIRMWARE}/release", {"version": 4, "groups": ["partner-fleet"]})

    assert response.status_code == 200
    v4.refresh_from_db()
    assert v4.intelligent is True


def test_a_restricted_token_releases_to_its_group_and_leaves_the_others_alone(personas, api):
    v4 = _proven(personas.product, 4)
    europe = GroupFactory(product=personas.product, name="europe", released_firmware=v4)
    response = api("restricted").put(f"{FIRMWARE}/release", {"version": 4, "groups": ["partner-fleet"]})
    assert response.status_code == 200
    personas.restricted_group.refresh_from_db()
    europe.refresh_from_db()
    assert personas.restricted_group.released_firmware == v4
    assert europe.released_firmware == v4
    assert api("restricted").put(f"{FIRMWARE}/release", {"version": 4, "groups": ["europe"]}).status_code == 400


def test_releasing_in_another_product_is_404(personas, api):
    _proven(personas.other_product, 4)
    assert api("admin").put("/v1/products/other/firmware/release", {"version": 4}).status_code == 404


# -- impact ------------------------------------------------------------------------------------


def test_the_release_impact_counts_devices_by_the_version_they_run(personas, api):
    _proven(personas.product, 4)
    devices = [DeviceFactory(product=personas.product, firmware_version=v) for v in (1, 1, 2, None, 4)]
    GroupFactory(product=personas.product, name="europe", devices=devices)

    response = api("viewer").get(
        "/v1/products/acme/impact", {"action": "edit_groups_for_firmware", "firmware_version": 4, "groups": "europe"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "devices": {
            "firmware_update": {
                "total": 4,
                "by_version": [{"version": 2, "total": 1}, {"version": 1, "total": 2}, {"version": None, "total": 1}],
            }
        }
    }


def test_omitting_groups_simulates_unreleasing_from_every_group(personas, api):
    firmware = _proven(personas.product, 4)
    personas.product.default_firmware = _proven(personas.product, 2)
    personas.product.save()
    GroupFactory(
        product=personas.product,
        name="europe",
        released_firmware=firmware,
        devices=[DeviceFactory(product=personas.product, firmware_version=1)],
    )
    client = api("viewer")

    omitted = client.get("/v1/products/acme/impact", {"action": "edit_groups_for_firmware", "firmware_version": 4})
    kept = client.get(
        "/v1/products/acme/impact", {"action": "edit_groups_for_firmware", "firmware_version": 4, "groups": "europe"}
    )

    # Without its group release the device falls back to the default, v2.
    assert omitted.json() == {"devices": {"firmware_update": {"total": 1, "by_version": [{"version": 1, "total": 1}]}}}
    assert kept.json()["devices"]["firmware_update"]["total"] == 0


def test_a_restricted_tokens_release_impact_keeps_the_groups_it_cannot_see_as_the_release_does(personas, api):
    from groups.models import GroupMembership

    v4 = _proven(personas.product, 4)
    personas.product.default_firmware = _proven(personas.product, 2)
    personas.product.save()
    shared = DeviceFactory(product=personas.product, firmware_version=1)
    GroupMembership.objects.create(group=personas.restricted_group, device=shared)
    GroupFactory(product=personas.product, name="europe", released_firmware=v4, devices=[shared])

    response = api("restricted").get(
        "/v1/products/acme/impact", {"action": "edit_groups_for_firmware", "firmware_version": 4}
    )

    # Unreleasing v4 from its own groups leaves europe's release, so the shared device keeps v4.
    assert response.json()["devices"]["firmware_update"]["total"] == 0


def test_the_group_edit_impact_previews_a_batch_with_target_versions(personas, api):
    firmware = _proven(personas.product, 4)
    GroupFactory(product=personas.product, name="europe", released_firmware=firmware)
    devices = [DeviceFactory(product=personas.product, firmware_version=1) for _ in range(3)]
    ids = ",".join(device.device_id for device in devices[:2])

    by_ids = api("viewer").get(
        "/v1/products/acme/impact", {"action": "edit_device_groups", "devices": ids, "add": "europe"}
    )
    by_filter = api("viewer").get("/v1/products/acme/impact", {"action": "edit_device_groups", "add": "europe,new-one"})

    assert by_ids.json() == {
        "devices": {
            "firmware_update": {
                "total": 2,
                "by_version": [{"version": 1, "total": 2}],
                "by_target_version": [{"version": 4, "total": 2}],
            }
        }
    }
    assert by_filter.json()["devices"]["firmware_update"]["total"] == 3
    assert not Group.objects.filter(name="new-one").exists()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "explode"}, "action"),
        ({}, "action"),
        ({"action": "edit_groups_for_firmware"}, "firmware_version"),
        ({"action": "edit_groups_for_firmware", "firmware_version": 9}, "firmware_version"),
        ({"action": "edit_groups_for_firmware", "firmware_version": 4, "groups": "nowhere"}, "groups"),
        (
            {"action": "edit_groups_for_firmware", "firmware_version": 4, "product_default": "perhaps"},
            "product_default",
        ),
        ({"action": "edit_device_groups", "devices": "f" * 24}, "devices"),
        ({"action": "edit_device_groups", "remove": "nowhere"}, "remove"),
        ({"action": "edit_device_groups", "groups": "nowhere"}, "groups"),
    ],
)
def test_invalid_impact_parameters_are_a_400_naming_them(personas, api, params, field):
    _proven(personas.product, 4)
    response = api("viewer").get("/v1/products/acme/impact", params)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_the_impact_of_another_product_is_404(personas, api):
    _proven(personas.other_product, 4)
    response = api("admin").get(
        "/v1/products/other/impact", {"action": "edit_groups_for_firmware", "firmware_version": 4}
    )
    assert response.status_code == 404


def test_the_impact_takes_the_same_queries_for_few_or_many_devices(personas, api, django_assert_num_queries):
    firmware = _proven(personas.product, 4)
    GroupFactory(product=personas.product, name="europe", released_firmware=firmware)
    client = api("viewer")
    for count in (2, 60):
        devices = [DeviceFactory(product=personas.product, firmware_version=1) for _ in range(count)]
        ids = ",".join(device.device_id for device in devices)
        # token, membership, known ids, add groups, versions released to groups, the live
        # rollout (none) the rule reads, impact
        with django_assert_num_queries(7):
            client.get("/v1/products/acme/impact", {"action": "edit_device_groups", "devices": ids, "add": "europe"})
