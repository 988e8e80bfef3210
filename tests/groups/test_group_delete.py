import pytest

from console.models import AuditEvent
from groups.models import Group, GroupMembership
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.conftest import HTMX

pytestmark = pytest.mark.django_db


@pytest.fixture
def beta(personas):
    product = personas.product
    v5 = FirmwareFactory(product=product, version=5)
    devices = DeviceFactory.create_batch(3, product=product, firmware_version=5)
    return GroupFactory(product=product, name="beta", devices=devices, released_firmware=v5)


def url(group):
    return f"/products/acme/groups/{group.id}/delete/"


def test_the_confirmation_states_devices_leaving_and_firmware_targets_changing(personas, client_for):
    product = personas.product
    v2, v5 = FirmwareFactory(product=product, version=2), FirmwareFactory(product=product, version=5)
    product.default_firmware = v2
    product.save(update_fields=["default_firmware"])
    on_v5 = DeviceFactory.create_batch(2, product=product, firmware_version=5)
    on_v2 = DeviceFactory(product=product, firmware_version=2)
    group = GroupFactory(product=product, name="beta", devices=[*on_v5, on_v2], released_firmware=v5)

    html = client_for(personas.admin).get(url(group), **HTMX).content.decode()

    assert html.startswith("<dialog data-modal")
    assert "<strong>3 devices</strong> will leave the group." in html
    assert "<strong>2 devices</strong> will be targeted for an OTA firmware update: 2 to v2." in html


def test_it_deletes_the_group_and_its_memberships(personas, client_for, beta):
    response = client_for(personas.admin).post(url(beta))

    assert response.status_code == 302 and response["Location"] == "/products/acme/groups/"
    assert not Group.objects.filter(pk=beta.pk).exists()
    assert not GroupMembership.objects.filter(group_id=beta.pk).exists()
    event = AuditEvent.objects.get(action="group.delete")
    assert event.actor == personas.admin and len(event.device_ids) == 3


def test_an_htmx_delete_closes_the_modal_and_says_how_many_devices_left(personas, client_for, beta):
    response = client_for(personas.admin).post(url(beta), **HTMX)
    assert response.status_code == 204
    trigger = response.headers["HX-Trigger"]
    assert "closeModal" in trigger and "groupsChanged" in trigger and "3 devices left it." in trigger
    assert not Group.objects.filter(pk=beta.pk).exists()


@pytest.mark.parametrize("persona", ["viewer", "support", "restricted"])
def test_members_who_cannot_delete_get_403(personas, client_for, beta, persona):
    assert client_for(getattr(personas, persona)).post(url(beta)).status_code == 403
    assert Group.objects.filter(pk=beta.pk).exists()


def test_outsiders_get_404(personas, client_for, beta):
    assert client_for(personas.outsider).post(url(beta)).status_code == 404
    assert Group.objects.filter(pk=beta.pk).exists()


def test_put_is_not_allowed(personas, client_for, beta):
    assert client_for(personas.admin).put(url(beta)).status_code == 405
