"""Release lint: releases that cannot do what they seem to, with counts and links to the devices."""

import pytest
from django.core.cache import cache

from console.models import AccessToken
from devices.models import Device
from firmware.lint import release_lint
from groups import services as groups_services
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def fleet(personas):
    """europe has v4, prerelease v5, the default is v5; 3 devices in europe only, 2 in both,
    1 locked device in europe only, and an empty group `lab` with v5."""
    product = personas.product
    v4, v5 = FirmwareFactory(product=product, version=4), FirmwareFactory(product=product, version=5)
    product.default_firmware = v5
    product.save(update_fields=["default_firmware"])
    only_europe = DeviceFactory.create_batch(3, product=product)
    both = DeviceFactory.create_batch(2, product=product)
    locked = DeviceFactory(product=product, desired_firmware_version=4)
    europe = GroupFactory(product=product, name="europe", released_firmware=v4, devices=[*only_europe, *both, locked])
    prerelease = GroupFactory(product=product, name="prerelease", released_firmware=v5, devices=both)
    lab = GroupFactory(product=product, name="lab", released_firmware=v5)
    return product, europe, prerelease, lab


def _messages(warnings) -> dict[str, str]:
    return {warning.kind: warning.message for warning in warnings}


def test_it_names_old_releases_several_groups_and_empty_groups_in_numbers(personas, fleet):
    product, europe, prerelease, lab = fleet

    warnings = release_lint(product=product)

    assert _messages(warnings) == {
        "empty_group": "lab has v5 released to it but no devices.",
        "older_than_default": "europe keeps 3 devices on v4 while the product default is v5.",
        "several_groups": "2 devices are in europe (v4) and prerelease (v5); they get v5.",
    }
    several = next(warning for warning in warnings if warning.kind == "several_groups")
    assert several.devices_url == "/products/acme/devices/?groups=europe%2Cprerelease&groups_match=all"


def test_a_release_that_decides_no_device_is_named(personas, fleet):
    product, europe, prerelease, lab = fleet
    # Every europe-only device joins prerelease too, and the locked one stays locked.
    prerelease.memberships.bulk_create(
        [prerelease.memberships.model(group=prerelease, device=device)
         for device in Device.objects.filter(memberships__group=europe).exclude(memberships__group=prerelease)]
    )
    europe.refresh_from_db()

    warning = next(w for w in release_lint(product=product) if "europe" in w.groups and w.kind != "several_groups")

    assert warning.kind == "never_wins"
    assert warning.message == (
        "v4 released to europe decides no device: each of its 6 devices is in a group with a higher release, "
        "locked or a development device."
    )


def test_its_queries_do_not_grow_with_the_fleet_and_a_product_change_recomputes_it(
    personas, fleet, django_assert_num_queries
):
    product, europe, prerelease, lab = fleet
    # the released groups, the product's state, the aggregate; then the aggregate comes from the cache
    with django_assert_num_queries(3):
        release_lint(product=product)
    with django_assert_num_queries(2):
        release_lint(product=product)
    more = DeviceFactory.create_batch(20, product=product)
    groups_services.devices_edit_groups(
        product=product, devices=Device.objects.filter(pk__in=[d.pk for d in more]), add=[prerelease, europe],
        actor=personas.developer,
    )
    with django_assert_num_queries(3):
        warnings = release_lint(product=product)
    assert "22 devices are in europe (v4) and prerelease (v5); they get v5." in [w.message for w in warnings]


def test_a_restricted_member_gets_only_warnings_about_their_groups(personas, fleet):
    product, *_ = fleet
    personas.restricted_group.released_firmware = product.default_firmware
    personas.restricted_group.save(update_fields=["released_firmware"])
    membership = personas.restricted.memberships.get(product=product)

    warnings = release_lint(product=product, membership=membership)

    assert [(w.kind, w.groups) for w in warnings] == [("empty_group", ("partner-fleet",))]


def test_the_firmware_page_loads_the_checks_and_the_group_page_only_its_own(client, personas, fleet):
    client.force_login(personas.viewer)
    europe = fleet[1]

    page = client.get("/products/acme/firmware/").content.decode()
    checks = client.get("/products/acme/firmware/lint/").content.decode()
    for_group = client.get("/products/acme/firmware/lint/", {"group": "lab"}).content.decode()

    assert 'hx-get="/products/acme/firmware/lint/"' in page
    assert "europe keeps 3 devices on v4 while the product default is v5." in checks
    assert 'href="/products/acme/devices/?groups=europe"' in checks
    assert "lab has v5 released to it but no devices." in for_group and "europe" not in for_group
    assert f"/products/acme/firmware/lint/?group=europe" in client.get(f"/products/acme/groups/{europe.id}/").content.decode()


def test_the_api_answers_the_same_warnings(client, personas, fleet):
    _token, raw, _refresh = AccessToken.issue(user=personas.viewer)

    response = client.get("/v1/products/acme/release_lint", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 200
    kinds = {warning["kind"]: warning for warning in response.json()["warnings"]}
    assert kinds["several_groups"] == {
        "kind": "several_groups", "message": "2 devices are in europe (v4) and prerelease (v5); they get v5.",
        "devices": 2, "groups": ["europe", "prerelease"],
    }
