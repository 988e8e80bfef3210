"""/v1/products/:product/groups."""

import pytest

from console.models import AuditEvent
from groups.models import Group, GroupMembership
from tests.api.conftest import error_of
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db

GROUPS = "/v1/products/acme/groups"


# -- list and detail ---------------------------------------------------------------------------


def test_the_list_gives_every_group_sorted_with_counts_and_released_version(personas, api):
    devices = [DeviceFactory(product=personas.product) for _ in range(3)]
    firmware = FirmwareFactory(product=personas.product, version=4)
    GroupFactory(
        product=personas.product,
        name="europe",
        description="EU",
        color="#22c55e",
        devices=devices,
        released_firmware=firmware,
    )
    GroupFactory(product=personas.other_product, name="elsewhere")

    response = api("viewer").get(GROUPS)

    assert response.status_code == 200
    assert response.json() == {
        "groups": [
            {"name": "europe", "description": "EU", "color": "#22c55e", "fw_version": 4, "device_count": 3},
            {"name": "partner-fleet", "description": "", "color": "#0ea5e9", "fw_version": None, "device_count": 0},
        ]
    }


def test_the_list_filters_by_name_substring(personas, api):
    GroupFactory(product=personas.product, name="europe-beta")
    GroupFactory(product=personas.product, name="asia")

    response = api("viewer").get(GROUPS, {"name": "beta"})

    assert [group["name"] for group in response.json()["groups"]] == ["europe-beta"]


def test_the_list_takes_the_same_number_of_queries_whatever_the_number_of_groups(
    personas, api, django_assert_num_queries
):
    client = api("viewer")
    for _ in range(3):
        GroupFactory(product=personas.product, devices=[DeviceFactory(product=personas.product)])
    with django_assert_num_queries(3):
        assert len(client.get(GROUPS).json()["groups"]) == 4
    for _ in range(20):
        GroupFactory(product=personas.product)
    with django_assert_num_queries(3):
        assert len(client.get(GROUPS).json()["groups"]) == 24


def test_a_restricted_member_lists_only_their_groups(personas, api):
    GroupFactory(product=personas.product, name="europe")

    response = api("restricted").get(GROUPS)

    assert [group["name"] for group in response.json()["groups"]] == ["partner-fleet"]


def test_one_group_by_name(personas, api):
    GroupFactory(product=personas.product, name="europe", description="EU")

    response = api("viewer").get(f"{GROUPS}/europe")

    assert response.status_code == 200
    assert response.json()["group"]["description"] == "EU"


def test_an_unknown_group_is_404(api):
    response = api("viewer").get(f"{GROUPS}/nowhere")
    assert response.status_code == 404
    assert error_of(response)["error"] == "not_found"


def test_another_products_groups_are_404_by_slug_and_by_id(personas, api):
    GroupFactory(product=personas.other_product, name="theirs")
    client = api("admin")

    assert client.get("/v1/products/other/groups").status_code == 404
    assert client.get(f"/v1/products/{personas.other_product.id}/groups/theirs").status_code == 404
    assert client.get("/v1/products/99999999999999999999999/groups").status_code == 404


def test_the_product_may_be_named_by_its_id(personas, api):
    response = api("viewer").get(f"/v1/products/{personas.product.id}/groups")
    assert [group["name"] for group in response.json()["groups"]] == ["partner-fleet"]


def test_listing_without_a_token_is_401(api):
    assert api(None).get(GROUPS).status_code == 401


# -- create ------------------------------------------------------------------------------------


def test_creating_a_group_stores_it_and_answers_201(personas, api):
    response = api("developer").post(GROUPS, {"name": "europe", "description": "EU fleet", "color": "#22C55E"})

    assert response.status_code == 201
    assert response.json() == {
        "group": {
            "name": "europe",
            "description": "EU fleet",
            "color": "#22c55e",
            "fw_version": None,
            "device_count": 0,
        }
    }
    group = Group.objects.get(product=personas.product, name="europe")
    assert (group.description, group.color) == ("EU fleet", "#22c55e")
    assert AuditEvent.objects.get(action="group.create").token is not None


def test_a_group_without_a_color_gets_one_from_the_palette(personas, api):
    response = api("developer").post(GROUPS, {"name": "europe"})

    assert response.status_code == 201
    assert Group.objects.get(name="europe").color.startswith("#")


def test_a_group_can_be_created_from_a_form_body(personas, api):
    response = api("developer").form("POST", GROUPS, "name=europe&description=From+a+form")

    assert response.status_code == 201
    assert Group.objects.get(name="europe").description == "From a form"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Europe Beta"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({}, "name"),
        ({"name": "europe", "description": "d" * 256}, "description"),
        ({"name": "europe", "color": "green"}, "color"),
        ({"name": "europe", "colour": "#22c55e"}, "colour"),
        ({"name": "euro\u0000pe"}, "name"),
    ],
)
def test_an_invalid_group_is_a_400_naming_the_field_and_nothing_is_stored(personas, api, body, field):
    response = api("developer").post(GROUPS, body)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert list(Group.objects.filter(product=personas.product).values_list("name", flat=True)) == ["partner-fleet"]


def test_a_duplicate_name_is_a_400_that_says_so(personas, api):
    response = api("developer").post(GROUPS, {"name": "partner-fleet"})

    assert response.status_code == 400
    assert "already exists" in error_of(response)["fields"]["name"][0]
    assert Group.objects.filter(name="partner-fleet").count() == 1


def test_malformed_json_is_a_400_and_nothing_is_stored(personas, api):
    response = api("developer").raw_body("POST", GROUPS, "{name: europe", "application/json")

    assert response.status_code == 400
    assert "not valid JSON" in error_of(response)["error_description"]
    assert not Group.objects.filter(name="europe").exists()


def test_a_json_array_body_is_a_400(personas, api):
    response = api("developer").raw_body("POST", GROUPS, '["europe"]', "application/json")
    assert response.status_code == 400


def test_a_view_only_token_cannot_create_groups(personas, api):
    for persona in ("viewer", "support"):
        response = api(persona).post(GROUPS, {"name": "europe"})
        assert response.status_code == 403
        assert error_of(response)["error"] == "forbidden"
    assert not Group.objects.filter(name="europe").exists()


def test_a_restricted_member_cannot_create_groups(personas, api):
    assert api("restricted").post(GROUPS, {"name": "europe"}).status_code == 403


def test_an_outsider_creating_a_group_gets_404(personas, api):
    assert api("outsider").post(GROUPS, {"name": "europe"}).status_code == 404
    assert not Group.objects.filter(name="europe").exists()


# -- edit --------------------------------------------------------------------------------------


def test_editing_renames_and_recolors_a_group(personas, api):
    GroupFactory(product=personas.product, name="europe")

    response = api("developer").put(f"{GROUPS}/europe", {"name": "europe-west", "color": "#ef4444"})

    assert response.status_code == 200
    assert response.json()["group"]["name"] == "europe-west"
    group = Group.objects.get(product=personas.product, name="europe-west")
    assert group.color == "#ef4444"
    assert AuditEvent.objects.filter(action="group.edit").count() == 1


def test_an_edit_with_nothing_to_change_is_a_400(personas, api):
    GroupFactory(product=personas.product, name="europe")
    response = api("developer").put(f"{GROUPS}/europe", {})
    assert response.status_code == 400
    assert "body" in error_of(response)["fields"]


def test_renaming_onto_an_existing_name_is_a_400_and_changes_nothing(personas, api):
    GroupFactory(product=personas.product, name="europe", description="EU")

    response = api("developer").put(f"{GROUPS}/europe", {"name": "partner-fleet", "description": "changed"})

    assert response.status_code == 400
    assert "name" in error_of(response)["fields"]
    assert Group.objects.get(name="europe").description == "EU"


def test_a_view_only_token_cannot_edit_groups(personas, api):
    assert api("viewer").put(f"{GROUPS}/partner-fleet", {"description": "x"}).status_code == 403
    assert Group.objects.get(name="partner-fleet").description == ""


def test_editing_another_products_group_is_404(personas, api):
    GroupFactory(product=personas.other_product, name="theirs")
    assert api("admin").put("/v1/products/other/groups/theirs", {"description": "x"}).status_code == 404


# -- delete ------------------------------------------------------------------------------------


def test_deleting_a_group_takes_its_devices_out_and_answers_204(personas, api):
    devices = [DeviceFactory(product=personas.product) for _ in range(2)]
    GroupFactory(product=personas.product, name="europe", devices=devices)

    response = api("developer").delete(f"{GROUPS}/europe")

    assert response.status_code == 204
    assert not Group.objects.filter(name="europe").exists()
    assert not GroupMembership.objects.filter(device__in=devices).exists()
    assert sorted(AuditEvent.objects.get(action="group.delete").device_ids) == sorted(d.device_id for d in devices)


def test_a_view_only_token_cannot_delete_groups(personas, api):
    assert api("viewer").delete(f"{GROUPS}/partner-fleet").status_code == 403
    assert Group.objects.filter(name="partner-fleet").exists()


def test_a_restricted_member_cannot_delete_their_group(personas, api):
    assert api("restricted").delete(f"{GROUPS}/partner-fleet").status_code == 403
    assert Group.objects.filter(name="partner-fleet").exists()


def test_deleting_an_unknown_group_is_404(api):
    assert api("developer").delete(f"{GROUPS}/nowhere").status_code == 404
