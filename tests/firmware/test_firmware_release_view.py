"""/products/<slug>/firmware/<version>/release/ → confirm → release, and unrelease."""

import json

import pytest

from console.models import AuditEvent
from groups.models import Group, GroupMembership
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(personas):
    product = personas.product
    v5 = proven_firmware(product, 5)
    devices = DeviceFactory.create_batch(37, product=product, firmware_version=4)
    beta = GroupFactory(product=product, name="beta", devices=devices)
    GroupFactory(product=product, name="europe")
    return product, v5, beta


def test_the_release_dialog_preselects_the_current_groups(client, personas, setup):
    product, v5, beta = setup
    beta.released_firmware = v5
    beta.save(update_fields=["released_firmware"])
    client.force_login(personas.developer)

    response = client.get("/products/acme/firmware/5/release/", headers={"HX-Request": "true"})

    body = response.content.decode()
    assert body.lstrip().startswith("<dialog data-modal")
    assert '<option value="beta" selected data-color="#0ea5e9">' in body
    assert "Product default" in body and "Intelligent" in body


def test_next_shows_the_impacted_device_count_by_running_version_and_changes_nothing(client, personas, setup):
    product, v5, beta = setup
    client.force_login(personas.developer)

    response = client.get("/products/acme/firmware/5/release/confirm/?groups=beta", headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200
    assert '<strong id="impact-total">37</strong>' in body
    assert "devices will be targeted for an OTA update to v5" in body
    assert "<td>v4</td><td class=\"num\">37</td>" in body
    assert "Release this firmware" in body
    beta.refresh_from_db()
    assert beta.released_firmware is None


def test_confirming_releases_to_the_group_and_answers_with_events(client, personas, setup):
    product, v5, beta = setup
    client.force_login(personas.developer)

    response = client.post(
        "/products/acme/firmware/5/release/confirm/", {"groups": ["beta"], "intelligent": "on"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 204
    assert {"closeModal", "firmwareChanged"} <= set(json.loads(response["HX-Trigger"]))
    beta.refresh_from_db()
    v5.refresh_from_db()
    assert beta.released_firmware == v5 and v5.intelligent is True and v5.ever_released is True
    assert AuditEvent.objects.get(action="firmware.release").details["impacted"] == 37


def test_without_javascript_confirming_redirects_to_the_list(client, personas, setup):
    client.force_login(personas.developer)

    response = client.post("/products/acme/firmware/5/release/confirm/", {"groups": ["beta"], "product_default": "on"})

    assert response.status_code == 302 and response["Location"] == "/products/acme/firmware/"
    personas.product.refresh_from_db()
    assert personas.product.default_firmware.version == 5


def test_unreleasing_goes_through_the_same_preview(client, personas, setup):
    product, v5, beta = setup
    beta.released_firmware = v5
    beta.save(update_fields=["released_firmware"])
    client.force_login(personas.developer)

    preview = client.get("/products/acme/firmware/5/release/confirm/?unrelease=1", headers={"HX-Request": "true"})
    assert "Unrelease this firmware" in preview.content.decode()
    assert "No longer released to: beta" in preview.content.decode()

    response = client.post("/products/acme/firmware/5/release/confirm/", {}, headers={"HX-Request": "true"})

    assert response.status_code == 204
    beta.refresh_from_db()
    assert beta.released_firmware is None


def test_a_version_no_device_ran_is_refused_with_advice_and_nothing_changes(client, personas, setup):
    FirmwareFactory(product=personas.product, version=9)
    client.force_login(personas.developer)

    preview = client.get("/products/acme/firmware/9/release/confirm/?groups=beta", headers={"HX-Request": "true"})
    response = client.post("/products/acme/firmware/9/release/confirm/", {"groups": ["beta"]}, headers={"HX-Request": "true"})

    for answer in (preview, response):
        assert answer.status_code == 200
        assert "development device first" in answer.content.decode()
    assert Group.objects.get(name="beta").released_firmware is None


def test_an_unknown_group_is_refused_inline(client, personas, setup):
    client.force_login(personas.developer)

    response = client.get("/products/acme/firmware/5/release/confirm/?groups=nope", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert 'id="id_groups_error"' in response.content.decode()


def test_a_restricted_member_only_changes_their_groups_and_sees_their_devices(client, personas, setup):
    product, v5, beta = setup
    beta.released_firmware = v5
    beta.save(update_fields=["released_firmware"])
    partner = personas.restricted_group
    GroupMembership.objects.bulk_create(
        GroupMembership(group=partner, device=device) for device in DeviceFactory.create_batch(2, product=product, firmware_version=4)
    )
    client.force_login(personas.restricted)

    preview = client.get("/products/acme/firmware/5/release/confirm/?groups=partner-fleet", headers={"HX-Request": "true"})
    response = client.post("/products/acme/firmware/5/release/confirm/", {"groups": ["partner-fleet"], "product_default": "on"})

    assert '<strong id="impact-total">2</strong>' in preview.content.decode()
    assert response.status_code == 302
    assert sorted(group.name for group in v5.released_groups.all()) == ["beta", "partner-fleet"]
    product.refresh_from_db()
    assert product.default_firmware is None


@pytest.mark.parametrize("persona", ["support", "viewer"])
def test_read_only_members_get_403(client, personas, setup, persona):
    client.force_login(getattr(personas, persona))

    assert client.get("/products/acme/firmware/5/release/").status_code == 403
    assert client.post("/products/acme/firmware/5/release/confirm/", {"groups": ["beta"]}).status_code == 403
    assert Group.objects.get(name="beta").released_firmware is None


def test_outsiders_get_404(client, personas, setup):
    client.force_login(personas.outsider)

    assert client.post("/products/acme/firmware/5/release/confirm/", {"groups": ["beta"]}).status_code == 404


def test_an_unknown_version_is_404(client, personas, setup):
    client.force_login(personas.developer)

    assert client.get("/products/acme/firmware/77/release/").status_code == 404


def test_the_release_dialog_does_not_accept_post(client, personas, setup):
    client.force_login(personas.developer)

    assert client.post("/products/acme/firmware/5/release/").status_code == 405


def test_the_preview_takes_the_same_number_of_queries_for_any_fleet_size(client, personas, setup, django_assert_num_queries):
    product, v5, beta = setup
    client.force_login(personas.developer)
    for size in (0, 50):
        GroupMembership.objects.bulk_create(
            GroupMembership(group=beta, device=device) for device in DeviceFactory.create_batch(size, product=product)
        )
        # session, user, membership, firmware (with its proof), form choices, groups before (the
        # plan), the live rollout (none: a release waits for one), versions released to groups,
        # the live rollout's stages for the rule (none), impact
        with django_assert_num_queries(10):
            client.get("/products/acme/firmware/5/release/confirm/?groups=beta", headers={"HX-Request": "true"})


def test_a_restricted_member_cannot_set_the_intelligent_flag_through_the_confirmation(client, personas, setup):
    product, v5, beta = setup
    client.force_login(personas.restricted)

    dialog = client.get("/products/acme/firmware/5/release/", headers={"HX-Request": "true"}).content.decode()
    response = client.post("/products/acme/firmware/5/release/confirm/", {"intelligent": "on"})

    assert 'name="intelligent"' not in dialog
    assert response.status_code == 302  # a release of nothing to their groups, the flag ignored
    v5.refresh_from_db()
    assert v5.intelligent is False
    assert AuditEvent.objects.get(action="firmware.release").details["intelligent"] is False
