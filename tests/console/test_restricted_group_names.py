"""A member restricted to groups never reads the names of groups outside their access: the device
page's "why", the API's target reason, the release confirmation and their own activity."""

import pytest

from tests.factories import DeviceFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared_device(personas):
    """A device in the restricted member's group and in `europe`, whose v5 release decides its target."""
    v5 = proven_firmware(personas.product, 5)
    device = DeviceFactory(product=personas.product, firmware_version=4)
    GroupFactory(product=personas.product, name="europe", released_firmware=v5, devices=[device])
    personas.restricted_group.memberships.create(device=device)
    return device


def test_the_device_page_says_a_group_outside_your_access_decided_the_target(client, personas, shared_device):
    client.force_login(personas.restricted)

    body = client.get(f"/products/acme/devices/{shared_device.device_id}/").content.decode()

    assert "a group outside your access" in body
    assert "europe" not in body


def test_the_device_page_names_the_group_for_an_unrestricted_member(client, personas, shared_device):
    client.force_login(personas.developer)

    body = client.get(f"/products/acme/devices/{shared_device.device_id}/").content.decode()

    assert "europe" in body
    assert "outside your access" not in body


def test_the_release_confirmation_counts_groups_outside_access_without_naming_them(client, personas, shared_device):
    client.force_login(personas.restricted)

    body = client.get("/products/acme/firmware/5/release/confirm/", {"groups": "partner-fleet"}).content.decode()

    assert "partner-fleet" in body
    assert "1 group outside your access" in body
    assert "europe" not in body


def test_a_restricted_members_own_activity_hides_other_groups(client, personas, shared_device):
    client.force_login(personas.restricted)
    client.post("/products/acme/firmware/5/release/confirm/", {"groups": "partner-fleet"})

    body = client.get("/products/acme/activity/").content.decode()

    assert "released <a" in body and "partner-fleet" in body
    assert "europe" not in body
