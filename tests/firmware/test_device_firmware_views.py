"""The device page's firmware section: /products/<slug>/firmware/devices/<id>/(lock|unlock|development)/."""

import json

import pytest
from django.template.loader import render_to_string

from console.models import Membership
from devices.models import Device
from groups.models import GroupMembership
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db
DEVICE_ID = "0123456789abcdef01234567"


@pytest.fixture
def device(personas):
    product = personas.product
    FirmwareFactory(product=product, version=3)
    v5 = FirmwareFactory(product=product, version=5)
    device = DeviceFactory(product=product, device_id=DEVICE_ID, firmware_version=3)
    GroupFactory(product=product, name="beta", devices=[device], released_firmware=v5)
    return device


def section(personas, user, device):
    membership = Membership.objects.get(user=user, product=personas.product)
    annotated = Device.objects.with_target().get(pk=device.pk)
    return render_to_string("firmware/device_firmware.html", {"device": annotated, "membership": membership, "product": personas.product})


def test_the_section_shows_running_target_and_which_group_decided(personas, device):
    html = section(personas, personas.developer, device)

    assert "<strong>v3</strong>" in html and "<strong>v5</strong>" in html
    assert 'data-rule="group"' in html and "beta" in html
    assert "Lock to a version" in html and "Mark as development device" in html


def test_read_only_members_see_the_section_without_controls(personas, device):
    html = section(personas, personas.viewer, device)

    assert "<strong>v5</strong>" in html
    assert "Lock to a version" not in html and "Mark as development" not in html


def test_the_section_refreshes_as_a_fragment_for_htmx(client, personas, device):
    client.force_login(personas.viewer)

    response = client.get(f"/products/acme/firmware/devices/{DEVICE_ID}/", headers={"HX-Request": "true"})

    body = response.content.decode()
    assert body.lstrip().startswith('<section id="device-firmware"') and "<html" not in body


def test_choosing_a_version_previews_the_change_of_target(client, personas, device):
    client.force_login(personas.developer)

    response = client.get(f"/products/acme/firmware/devices/{DEVICE_ID}/lock/?version=3", headers={"HX-Request": "true"})

    body = response.content.decode()
    assert '<strong id="target-after">v3</strong>' in body
    assert "Released to group beta" in body and "Locked to this version" in body
    device.refresh_from_db()
    assert device.desired_firmware_version is None


def test_locking_stores_the_version_and_answers_with_events(client, personas, device):
    client.force_login(personas.developer)

    response = client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/lock/", {"version": "3"}, headers={"HX-Request": "true"})

    assert response.status_code == 204
    assert {"closeModal", "firmwareChanged"} <= set(json.loads(response["HX-Trigger"]))
    device.refresh_from_db()
    assert device.desired_firmware_version == 3


def test_locking_to_an_unknown_version_is_refused_inline(client, personas, device):
    client.force_login(personas.developer)

    response = client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/lock/", {"version": "8"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    device.refresh_from_db()
    assert device.desired_firmware_version is None


def test_unlocking_previews_then_clears_the_lock(client, personas, device):
    Device.objects.filter(pk=device.pk).update(desired_firmware_version=3)
    client.force_login(personas.developer)

    preview = client.get(f"/products/acme/firmware/devices/{DEVICE_ID}/unlock/", headers={"HX-Request": "true"})
    response = client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/unlock/", headers={"HX-Request": "true"})

    assert '<strong id="target-after">v5</strong>' in preview.content.decode()
    assert "targeted for an OTA update to <strong>v5</strong>" in preview.content.decode()
    assert response.status_code == 204
    device.refresh_from_db()
    assert device.desired_firmware_version is None


def test_marking_development_previews_then_stores_the_flag(client, personas, device):
    client.force_login(personas.developer)

    preview = client.get(f"/products/acme/firmware/devices/{DEVICE_ID}/development/", headers={"HX-Request": "true"})
    response = client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/development/", {"development": "true"})

    assert '<strong id="target-after">None</strong>' in preview.content.decode()
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.development is True


def test_unmarking_development_stores_the_flag(client, personas, device):
    Device.objects.filter(pk=device.pk).update(development=True)
    client.force_login(personas.developer)

    response = client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/development/", {"development": "false"}, headers={"HX-Request": "true"})

    assert response.status_code == 204
    device.refresh_from_db()
    assert device.development is False


@pytest.mark.parametrize("action", ["lock", "unlock", "development"])
def test_read_only_members_get_403(client, personas, device, action):
    client.force_login(personas.support)

    assert client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/{action}/", {"version": "3", "development": "true"}).status_code == 403
    device.refresh_from_db()
    assert (device.desired_firmware_version, device.development) == (None, False)


def test_outsiders_get_404(client, personas, device):
    client.force_login(personas.outsider)

    assert client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/lock/", {"version": "3"}).status_code == 404


def test_a_restricted_member_gets_404_for_a_device_outside_their_groups(client, personas, device):
    client.force_login(personas.restricted)

    assert client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/lock/", {"version": "3"}).status_code == 404
    GroupMembership.objects.create(group=personas.restricted_group, device=device)
    assert client.post(f"/products/acme/firmware/devices/{DEVICE_ID}/lock/", {"version": "3"}).status_code == 302


def test_delete_is_not_allowed_on_the_lock_view(client, personas, device):
    client.force_login(personas.developer)

    assert client.delete(f"/products/acme/firmware/devices/{DEVICE_ID}/lock/").status_code == 405
