"""/v1/products/:product/devices: list, detail, update, batch group edit, import, remove."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from console.models import AuditEvent
from devices.models import Device
from groups.models import Group, GroupMembership
from tests.api.conftest import error_of
from tests.conftest import id_lookups
from tests.firmware.helpers import proven_firmware
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db

DEVICES = "/v1/products/acme/devices"


def _groups_of(device) -> list[str]:
    return sorted(device.groups.values_list("name", flat=True))


# -- list --------------------------------------------------------------------------------------


def test_the_list_answers_devices_customers_and_meta_in_particles_shape(personas, api):
    seen = timezone.now().replace(microsecond=123456)
    device = DeviceFactory(
        product=personas.product,
        name="van-1",
        serial_number="SN-1",
        firmware_version=2,
        last_handshake_at=seen,
        online=True,
        notes="n",
    )
    GroupFactory(product=personas.product, name="europe", devices=[device])
    GroupFactory(product=personas.product, name="beta", devices=[device])
    DeviceFactory(product=personas.other_product)

    response = api("viewer").get(DEVICES)

    assert response.status_code == 200
    body = response.json()
    assert body["customers"] == []
    assert body["meta"] == {"page": 1, "per_page": 25, "total_pages": 1, "total": 1}
    assert body["devices"] == [
        {
            "id": device.device_id,
            "name": "van-1",
            "serial_number": "SN-1",
            "product_id": personas.product.id,
            "platform_id": 12,
            "online": True,
            "last_handshake_at": seen.strftime("%Y-%m-%dT%H:%M:%S.123Z"),
            "last_heard": seen.strftime("%Y-%m-%dT%H:%M:%S.123Z"),
            "groups": ["beta", "europe"],
            "firmware_version": 2,
            "desired_firmware_version": None,
            "targeted_firmware_release_version": None,
            "development": False,
            "quarantined": False,
            "denied": False,
            "notes": "n",
            "connected": True,
            "imei": "",
            "iccid": "",
            "firmware_target_reason": {"rule": "none", "group": None},
        }
    ]


def test_the_list_filters_by_any_of_the_groups_or_all_of_them(personas, api):
    a, b, both, _none = (DeviceFactory(product=personas.product, name=name) for name in ("a", "b", "both", "none"))
    GroupFactory(product=personas.product, name="europe", devices=[a, both])
    GroupFactory(product=personas.product, name="beta", devices=[b, both])
    client = api("viewer")

    def names(params):
        return sorted(device["name"] for device in client.get(DEVICES, params).json()["devices"])

    assert names({"groups": "europe,beta"}) == ["a", "b", "both"]
    assert names({"groups": ["europe", "beta"]}) == ["a", "b", "both"]
    assert names({"groups": "europe,beta", "groups_match": "all"}) == ["both"]


def test_the_list_filters_by_id_name_and_serial_substrings(personas, api):
    DeviceFactory(product=personas.product, device_id="abcdef" + "0" * 18, name="Truck 7", serial_number="ZED-1")
    DeviceFactory(product=personas.product, name="van", serial_number="S-2")
    client = api("viewer")

    for params in ({"deviceId": "ABCDEF"}, {"deviceName": "truck"}, {"serialNumber": "zed"}):
        assert [device["name"] for device in client.get(DEVICES, params).json()["devices"]] == ["Truck 7"]


def test_the_list_sorts_by_last_connection_newest_first_by_default_and_by_name(personas, api):
    now = timezone.now()
    for name, minutes in (("b", 1), ("a", 2), ("c", 3)):
        DeviceFactory(product=personas.product, name=name, last_handshake_at=now - timedelta(minutes=minutes))
    client = api("viewer")

    def names(params):
        return [device["name"] for device in client.get(DEVICES, params).json()["devices"]]

    assert names({}) == ["b", "a", "c"]
    assert names({"sortAttr": "lastConnection", "sortDir": "asc"}) == ["c", "a", "b"]
    assert names({"sortAttr": "deviceName", "sortDir": "asc"}) == ["a", "b", "c"]
    assert names({"sortAttr": "deviceName"}) == ["c", "b", "a"]


def test_the_list_pages_with_per_page_or_perPage(personas, api):
    for n in range(5):
        DeviceFactory(product=personas.product, name=f"d{n}")
    client = api("viewer")

    page = client.get(DEVICES, {"page": 2, "per_page": 2}).json()
    same = client.get(DEVICES, {"page": 2, "perPage": 2}).json()
    beyond = client.get(DEVICES, {"page": 9, "perPage": 2}).json()

    assert page["meta"] == {"page": 2, "per_page": 2, "total_pages": 3, "total": 5}
    assert len(page["devices"]) == 2
    assert same == page
    assert beyond["devices"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"groups": "nowhere"}, "groups"),
        ({"groups_match": "some"}, "groups_match"),
        ({"sortAttr": "color"}, "sortAttr"),
        ({"sortDir": "up"}, "sortDir"),
        ({"page": 0}, "page"),
        ({"page": "two"}, "page"),
        ({"perPage": 101}, "perPage"),
        ({"per_page": 0}, "per_page"),
        ({"deviceName": "a\u0000b"}, "deviceName"),
    ],
)
def test_invalid_list_parameters_are_a_400_naming_them(personas, api, params, field):
    response = api("viewer").get(DEVICES, params)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_the_list_takes_the_same_queries_whatever_the_page_size(personas, api, django_assert_num_queries):
    devices = [DeviceFactory(product=personas.product) for _ in range(60)]
    GroupFactory(product=personas.product, name="europe", devices=devices)
    GroupFactory(product=personas.product, name="beta", devices=devices[::2])
    client = api("viewer")

    # token, membership, restricted groups, visible groups, count, page with targets, group names
    with django_assert_num_queries(6):
        assert len(client.get(DEVICES, {"perPage": 5, "groups": "europe,beta"}).json()["devices"]) == 5
    with django_assert_num_queries(6):
        assert len(client.get(DEVICES, {"perPage": 50, "groups": "europe,beta"}).json()["devices"]) == 50


def test_a_restricted_member_lists_only_devices_of_their_groups_and_sees_only_those_groups(personas, api):
    inside, _outside = DeviceFactory(product=personas.product), DeviceFactory(product=personas.product)
    personas.restricted_group.memberships.create(device=inside)
    GroupFactory(product=personas.product, name="europe", devices=[inside])
    client = api("restricted")

    body = client.get(DEVICES).json()

    assert [(device["id"], device["groups"]) for device in body["devices"]] == [(inside.device_id, ["partner-fleet"])]
    assert client.get(DEVICES, {"groups": "europe"}).status_code == 400


def test_another_products_device_list_is_404(api):
    assert api("admin").get("/v1/products/other/devices").status_code == 404


def test_the_list_without_a_token_is_401(api):
    assert api(None).get(DEVICES).status_code == 401


# -- detail ------------------------------------------------------------------------------------


def test_one_device_with_its_target_and_why(personas, api):
    device = DeviceFactory(product=personas.product, firmware_version=1)
    firmware = FirmwareFactory(product=personas.product, version=5)
    GroupFactory(product=personas.product, name="europe", devices=[device], released_firmware=firmware)

    response = api("viewer").get(f"{DEVICES}/{device.device_id.upper()}")

    assert response.status_code == 200
    body = response.json()
    assert body["targeted_firmware_release_version"] == 5
    assert body["firmware_target_reason"] == {"rule": "group", "group": "europe"}
    assert body["groups"] == ["europe"]


def test_another_products_device_is_404_even_by_its_id(personas, api):
    theirs = DeviceFactory(product=personas.other_product)
    assert api("admin").get(f"{DEVICES}/{theirs.device_id}").status_code == 404
    assert api("admin").get(f"/v1/products/other/devices/{theirs.device_id}").status_code == 404


def test_a_device_outside_a_restricted_members_groups_is_404(personas, api):
    device = DeviceFactory(product=personas.product)
    assert api("restricted").get(f"{DEVICES}/{device.device_id}").status_code == 404


# -- update ------------------------------------------------------------------------------------


def test_updating_name_notes_development_lock_and_groups_stores_them_in_one_call(personas, api):
    device = DeviceFactory(product=personas.product)
    FirmwareFactory(product=personas.product, version=3)
    GroupFactory(product=personas.product, name="old", devices=[device])

    response = api("developer").put(
        f"{DEVICES}/{device.device_id}",
        {
            "name": "van-9",
            "notes": "spare",
            "development": True,
            "desired_firmware_version": 3,
            "flash": False,
            "groups": ["europe", "partner-fleet"],
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "updated_at", "name", "notes", "development", "desired_firmware_version", "groups"}
    assert body["groups"] == ["europe", "partner-fleet"]
    device.refresh_from_db()
    assert (device.name, device.notes, device.development, device.desired_firmware_version) == (
        "van-9",
        "spare",
        True,
        3,
    )
    assert _groups_of(device) == ["europe", "partner-fleet"]
    assert Group.objects.filter(product=personas.product, name="europe").exists()
    assert body["updated_at"].endswith("Z")


def test_null_unlocks_and_the_answer_holds_only_what_was_set(personas, api):
    device = DeviceFactory(product=personas.product, desired_firmware_version=3)
    FirmwareFactory(product=personas.product, version=3)

    response = api("developer").put(f"{DEVICES}/{device.device_id}", {"desired_firmware_version": None})

    assert response.json() == {
        "id": device.device_id,
        "updated_at": response.json()["updated_at"],
        "desired_firmware_version": None,
    }
    device.refresh_from_db()
    assert device.desired_firmware_version is None


def test_an_update_can_be_form_encoded_with_qs_style_lists(personas, api):
    device = DeviceFactory(product=personas.product)

    response = api("developer").form(
        "PUT", f"{DEVICES}/{device.device_id}", "groups[0]=europe&groups[1]=beta&development=true&name=form"
    )

    assert response.status_code == 200
    device.refresh_from_db()
    assert (_groups_of(device), device.development, device.name) == (["beta", "europe"], True, "form")


def test_an_empty_groups_list_removes_every_group(personas, api):
    device = DeviceFactory(product=personas.product)
    GroupFactory(product=personas.product, name="europe", devices=[device])

    assert api("developer").put(f"{DEVICES}/{device.device_id}", {"groups": []}).status_code == 200
    assert _groups_of(device) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "n" * 65}, "name"),
        ({"notes": "n" * 1001}, "notes"),
        ({"development": "maybe"}, "development"),
        ({"development": 1}, "development"),
        ({"desired_firmware_version": 99}, "desired_firmware_version"),
        ({"desired_firmware_version": "three"}, "desired_firmware_version"),
        ({"groups": ["Bad Name"]}, "groups"),
        ({"groups": "europe"}, "groups"),
        ({"name": None}, "name"),
        ({"colour": "red"}, "colour"),
        ({}, "body"),
    ],
)
def test_an_invalid_update_is_a_400_naming_the_field_and_changes_nothing(personas, api, body, field):
    device = DeviceFactory(product=personas.product, name="before")

    response = api("developer").put(f"{DEVICES}/{device.device_id}", {"notes": "changed", **body} if body else {})

    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    device.refresh_from_db()
    assert (device.name, device.notes, device.development) == ("before", "", False)
    assert not Group.objects.filter(product=personas.product).exclude(name="partner-fleet").exists()


def test_a_failing_lock_rolls_back_the_rename_made_in_the_same_call(personas, api):
    device = DeviceFactory(product=personas.product, name="before")

    response = api("developer").put(
        f"{DEVICES}/{device.device_id}", {"name": "after", "groups": ["new-group"], "desired_firmware_version": 42}
    )

    assert response.status_code == 400
    device.refresh_from_db()
    assert device.name == "before"
    assert not Group.objects.filter(name="new-group").exists()
    assert not AuditEvent.objects.exists()


def test_a_view_only_token_cannot_update_a_device(personas, api):
    device = DeviceFactory(product=personas.product, name="before")
    assert api("viewer").put(f"{DEVICES}/{device.device_id}", {"name": "after"}).status_code == 403
    device.refresh_from_db()
    assert device.name == "before"


def test_updating_another_products_device_is_404(personas, api):
    theirs = DeviceFactory(product=personas.other_product, name="before")
    assert api("admin").put(f"{DEVICES}/{theirs.device_id}", {"name": "after"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "before"


def test_a_restricted_member_replaces_only_their_own_groups_and_cannot_create_any(personas, api):
    device = DeviceFactory(product=personas.product)
    personas.restricted_group.memberships.create(device=device)
    GroupFactory(product=personas.product, name="europe", devices=[device])
    client = api("restricted")

    refused = client.put(f"{DEVICES}/{device.device_id}", {"groups": ["brand-new"]})
    emptied = client.put(f"{DEVICES}/{device.device_id}", {"groups": []})

    assert refused.status_code == 400
    assert not Group.objects.filter(name="brand-new").exists()
    assert emptied.status_code == 200
    assert _groups_of(device) == ["europe"]


# -- batch -------------------------------------------------------------------------------------


def test_a_batch_adds_and_removes_groups_of_listed_devices(personas, api):
    devices = [DeviceFactory(product=personas.product) for _ in range(3)]
    GroupFactory(product=personas.product, name="old", devices=devices[:1])

    response = api("developer").put(
        DEVICES,
        {
            "action": "groups",
            "devices": [device.device_id.upper() for device in devices],
            "metadata": {"add": ["europe"], "remove": ["old"]},
        },
    )

    assert response.status_code == 200
    assert response.json() == {"ok": True, "updated": 3}
    assert [_groups_of(device) for device in devices] == [["europe"]] * 3
    event = AuditEvent.objects.get(action="device.groups")
    assert sorted(event.device_ids) == sorted(device.device_id for device in devices)


def test_a_batch_by_filter_changes_every_matching_device(personas, api):
    tagged = [DeviceFactory(product=personas.product) for _ in range(4)]
    untouched = DeviceFactory(product=personas.product)
    GroupFactory(product=personas.product, name="europe", devices=tagged)

    response = api("developer").put(
        DEVICES,
        {
            "action": "groups",
            "filter": {"groups": "europe"},
            "metadata": {"add": ["beta"]},
        },
    )

    assert response.json() == {"ok": True, "updated": 4}
    assert GroupMembership.objects.filter(group__name="beta").count() == 4
    assert _groups_of(untouched) == []


def test_a_batch_with_an_unknown_device_lists_it_and_changes_nothing(personas, api):
    mine = DeviceFactory(product=personas.product)
    theirs = DeviceFactory(product=personas.other_product)

    response = api("developer").put(
        DEVICES,
        {
            "action": "groups",
            "devices": [mine.device_id, theirs.device_id, "nonsense"],
            "metadata": {"add": ["europe"]},
        },
    )

    assert response.status_code == 400
    body = error_of(response)
    assert theirs.device_id in body["error_description"] and "nonsense" in body["error_description"]
    assert mine.device_id not in body["error_description"]
    assert body["fields"]["devices"] == [f"Unknown device ID: {theirs.device_id}", "Unknown device ID: nonsense"]
    assert not Group.objects.filter(name="europe").exists()
    assert _groups_of(mine) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "rename", "devices": [], "metadata": {}}, "action"),
        ({"action": "groups", "metadata": {}}, "devices"),
        ({"action": "groups", "devices": [], "filter": {}, "metadata": {}}, "devices"),
        ({"action": "groups", "devices": ["a" * 24] * 1001, "metadata": {}}, "devices"),
        ({"action": "groups", "devices": [], "metadata": {"remove": ["nowhere"]}}, "metadata.remove"),
        ({"action": "groups", "devices": [], "metadata": {"add": ["Bad Name"]}}, "metadata.add"),
        ({"action": "groups", "devices": [], "metadata": {"add": [], "move": []}}, "metadata.move"),
        ({"action": "groups", "filter": {"groups": "nowhere"}, "metadata": {}}, "filter.groups"),
        ({"action": "groups", "devices": [], "metadata": {"add": [1]}}, "metadata.add"),
        ({"action": "groups", "devices": "x", "metadata": {}}, "devices"),
    ],
)
def test_an_invalid_batch_is_a_400_naming_the_field(personas, api, body, field):
    response = api("developer").put(DEVICES, body)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert list(Group.objects.values_list("name", flat=True)) == ["partner-fleet"]


def test_a_batch_takes_the_same_queries_for_3_or_300_devices(personas, api, django_assert_num_queries):
    few = [DeviceFactory(product=personas.product) for _ in range(3)]
    many = [DeviceFactory(product=personas.product) for _ in range(300)]
    GroupFactory(product=personas.product, name="europe")
    GroupFactory(product=personas.product, name="old", devices=few + many)
    client = api("developer")

    for devices in (few, many):
        body = {
            "action": "groups",
            "devices": [d.device_id for d in devices],
            "metadata": {"add": ["europe"], "remove": ["old"]},
        }
        # token, membership, restricted groups, known ids, two groups_resolve, lock groups,
        # audit event, insert, delete (each naming its devices in the event), the event's device
        # count, and the savepoints of the nested atomics
        with django_assert_num_queries(18 + id_lookups(writes=2)):
            assert client.put(DEVICES, body).json() == {"ok": True, "updated": len(devices)}


def test_a_batch_by_filter_takes_the_same_queries_whatever_matches(personas, api, django_assert_num_queries):
    devices = [DeviceFactory(product=personas.product) for _ in range(200)]
    GroupFactory(product=personas.product, name="europe", devices=devices)
    GroupFactory(product=personas.product, name="beta", devices=devices[:2])
    client = api("developer")

    for source in ("beta", "europe"):
        # as above, with the filter's group lookup and a created group instead of known ids
        with django_assert_num_queries(22 + id_lookups(writes=1)):
            client.put(
                DEVICES, {"action": "groups", "filter": {"groups": source}, "metadata": {"add": [f"to-{source}"]}}
            )
    assert GroupMembership.objects.filter(group__name="to-europe").count() == 200


def test_a_view_only_token_cannot_batch_edit(personas, api):
    device = DeviceFactory(product=personas.product)
    response = api("support").put(
        DEVICES, {"action": "groups", "devices": [device.device_id], "metadata": {"add": ["x"]}}
    )
    assert response.status_code == 403
    assert _groups_of(device) == []


def test_a_restricted_member_batches_only_their_devices_and_groups(personas, api):
    inside, outside = DeviceFactory(product=personas.product), DeviceFactory(product=personas.product)
    personas.restricted_group.memberships.create(device=inside)
    GroupFactory(product=personas.product, name="europe")
    client = api("restricted")

    outside_call = client.put(
        DEVICES, {"action": "groups", "devices": [outside.device_id], "metadata": {"add": ["partner-fleet"]}}
    )
    foreign_group = client.put(
        DEVICES, {"action": "groups", "devices": [inside.device_id], "metadata": {"add": ["europe"]}}
    )
    by_filter = client.put(DEVICES, {"action": "groups", "filter": {}, "metadata": {"remove": ["partner-fleet"]}})

    assert outside_call.status_code == 400
    assert foreign_group.status_code == 400
    assert by_filter.json() == {"ok": True, "updated": 1}
    assert _groups_of(outside) == [] and _groups_of(inside) == []


# -- import ------------------------------------------------------------------------------------


def test_importing_ids_adds_new_devices_and_sorts_the_rest(personas, api):
    existing = DeviceFactory(product=personas.product)
    theirs = DeviceFactory(product=personas.other_product)
    new = "ABCDEF0123456789ABCDEF01"

    response = api("developer").post(DEVICES, {"ids": [new, existing.device_id, theirs.device_id, "short"]})

    assert response.status_code == 200
    assert response.json() == {
        "updated": 1,
        "updatedDeviceIds": [new.lower()],
        "existingDeviceIds": [existing.device_id],
        "invalidDeviceIds": ["short"],
        "nonmemberDeviceIds": [theirs.device_id],
    }
    assert Device.objects.get(device_id=new.lower()).product == personas.product
    assert Device.objects.get(device_id=theirs.device_id).product == personas.other_product
    assert AuditEvent.objects.get(action="device.import").device_ids == [new.lower()]


def test_importing_one_id(personas, api):
    response = api("developer").post(DEVICES, {"id": "a" * 24})
    assert response.json()["updatedDeviceIds"] == ["a" * 24]


def test_importing_form_encoded_ids(personas, api):
    response = api("developer").form("POST", DEVICES, f"ids[]={'a' * 24}&ids[]={'b' * 24}")

    assert response.status_code == 200
    assert sorted(Device.objects.filter(product=personas.product).values_list("device_id", flat=True)) == [
        "a" * 24,
        "b" * 24,
    ]


def test_importing_a_file_with_one_id_per_line(personas, api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("ids.txt", b"aaaaaaaaaaaaaaaaaaaaaaaa\n\nBBBBBBBBBBBBBBBBBBBBBBBB\nnope\n")

    response = api("developer").multipart(DEVICES, {"file": upload})

    assert response.status_code == 200
    assert response.json()["updatedDeviceIds"] == ["a" * 24, "b" * 24]
    assert response.json()["invalidDeviceIds"] == ["nope"]
    assert Device.objects.filter(product=personas.product).count() == 2


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite splits a bulk insert into batches of 999 parameters"
)
def test_importing_takes_the_same_queries_for_2_or_200_ids(personas, api, django_assert_num_queries):
    client = api("developer")
    for count, start in ((2, 0), (200, 1000)):
        ids = [f"{n:024x}" for n in range(start, start + count)]
        # ... the audit event, and the devices it names in one statement; one more asks the
        # quarantine for the new ones (an approval)
        with django_assert_num_queries(10):
            assert client.post(DEVICES, {"ids": ids}).json()["updated"] == count


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "ids"),
        ({"ids": "a" * 24}, "ids"),
        ({"ids": ["a" * 24], "id": "b" * 24}, "ids"),
        ({"ids": ["a" * 24] * 10_001}, "ids"),
        ({"device": "a" * 24}, "device"),
    ],
)
def test_an_invalid_import_is_a_400_naming_the_field_and_adds_nothing(personas, api, body, field):
    response = api("developer").post(DEVICES, body)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert not Device.objects.exists()


def test_a_view_only_or_restricted_token_cannot_import(personas, api):
    assert api("viewer").post(DEVICES, {"id": "a" * 24}).status_code == 403
    assert api("restricted").post(DEVICES, {"id": "a" * 24}).status_code == 403
    assert not Device.objects.exists()


def test_importing_into_another_product_is_404(personas, api):
    assert api("admin").post("/v1/products/other/devices", {"id": "a" * 24}).status_code == 404
    assert not Device.objects.exists()


# -- remove ------------------------------------------------------------------------------------


def test_removing_a_device_deletes_it_from_the_product_and_records_it(personas, api):
    device = DeviceFactory(product=personas.product)
    GroupFactory(product=personas.product, name="europe", devices=[device])

    response = api("developer").delete(f"{DEVICES}/{device.device_id}")

    assert response.status_code == 204
    assert not Device.objects.filter(pk=device.pk).exists()
    event = AuditEvent.objects.get(action="device.remove")
    assert (event.device_count, event.details["device_id"]) == (1, device.device_id)


def test_a_view_only_token_cannot_remove_a_device(personas, api):
    device = DeviceFactory(product=personas.product)
    assert api("viewer").delete(f"{DEVICES}/{device.device_id}").status_code == 403
    assert Device.objects.filter(pk=device.pk).exists()


def test_removing_another_products_device_is_404(personas, api):
    theirs = DeviceFactory(product=personas.other_product)
    assert api("admin").delete(f"{DEVICES}/{theirs.device_id}").status_code == 404
    assert Device.objects.filter(pk=theirs.pk).exists()


def test_the_target_reason_hides_a_group_outside_a_restricted_tokens_access(personas, api):
    v5 = proven_firmware(personas.product, 5)
    device = DeviceFactory(product=personas.product, firmware_version=4)
    GroupFactory(product=personas.product, name="europe", released_firmware=v5, devices=[device])
    personas.restricted_group.memberships.create(device=device)

    restricted = api("restricted").get(f"/v1/products/acme/devices/{device.device_id}").json()
    developer = api("developer").get(f"/v1/products/acme/devices/{device.device_id}").json()

    assert restricted["firmware_target_reason"] == {"rule": "group", "group": None}
    assert developer["firmware_target_reason"] == {"rule": "group", "group": "europe"}
    assert restricted["targeted_firmware_release_version"] == 5
