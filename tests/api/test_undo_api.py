import pytest

from console.models import AuditEvent
from devices.models import Device
from groups import services
from groups.models import GroupMembership
from tests.api.conftest import error_of
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(personas):
    devices = DeviceFactory.create_batch(2, product=personas.product, firmware_version=1)
    v5 = FirmwareFactory(product=personas.product, version=5)
    europe = GroupFactory(product=personas.product, name="europe", devices=devices, released_firmware=v5)
    services.devices_edit_groups(product=personas.product, devices=Device.objects.filter(product=personas.product),
                                 remove=[europe], actor=personas.developer)
    return AuditEvent.objects.get(action="device.groups")


def test_the_preview_lists_the_memberships_and_the_firmware_impact(api, event):
    response = api("developer").get(f"/v1/products/acme/events/{event.pk}/undo")
    body = response.json()
    assert response.status_code == 200
    assert body["rejoin"] == [{"group": "europe", "devices": 2}] and body["leave"] == []
    assert body["firmware_update"]["total"] == 2 and body["kept_count"] == 0
    assert GroupMembership.objects.count() == 0


def test_post_undoes_the_edit(api, event):
    response = api("developer").post(f"/v1/products/acme/events/{event.pk}/undo")
    assert response.json() == {"ok": True, "updated": 2}
    assert GroupMembership.objects.filter(group__name="europe").count() == 2


def test_nothing_left_to_undo_is_a_400_naming_why(api, event):
    client = api("developer")
    client.post(f"/v1/products/acme/events/{event.pk}/undo")
    response = client.post(f"/v1/products/acme/events/{event.pk}/undo")
    assert response.status_code == 400 and "Nothing to undo" in error_of(response)["error_description"]


def test_outsiders_get_404_and_viewers_403(api, event):
    assert api("outsider").get(f"/v1/products/acme/events/{event.pk}/undo").status_code == 404
    assert api("viewer").post(f"/v1/products/acme/events/{event.pk}/undo").status_code == 403
    assert GroupMembership.objects.count() == 0
