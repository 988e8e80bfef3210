import pytest

from console.models import AuditEvent
from devices.models import Device
from groups import services
from groups.models import GroupMembership
from tests.conftest import HTMX
from tests.factories import DeviceFactory, GroupFactory

pytestmark = pytest.mark.django_db


def groups_of(device):
    return sorted(GroupMembership.objects.filter(device=device).values_list("group__name", flat=True))


@pytest.fixture
def edited(personas):
    devices = DeviceFactory.create_batch(3, product=personas.product)
    beta = GroupFactory(product=personas.product, name="beta")
    services.devices_edit_groups(product=personas.product, devices=Device.objects.filter(product=personas.product),
                                 add=[beta], actor=personas.developer)
    return devices, AuditEvent.objects.get(action="device.groups")


def url(event):
    return f"/products/acme/activity/{event.pk}/undo/"


def test_the_activity_page_offers_undo_of_batch_edits_to_members_who_can_write(client_for, personas, edited):
    devices, event = edited
    developer = client_for(personas.developer).get("/products/acme/activity/").content.decode()
    viewer = client_for(personas.viewer).get("/products/acme/activity/").content.decode()
    assert f'hx-get="{url(event)}"' in developer
    assert url(event) not in viewer


def test_the_undo_dialog_previews_the_memberships_it_would_revert(client_for, personas, edited):
    devices, event = edited
    html = client_for(personas.developer).get(url(event), **HTMX).content.decode()
    assert html.startswith("<dialog data-modal")
    assert "<strong>3 devices</strong> leave beta" in html
    assert "No device will be targeted for a firmware update." in html
    assert [groups_of(device) for device in devices] == [["beta"]] * 3


def test_confirming_undoes_the_edit_and_refreshes_the_activity(client_for, personas, edited):
    devices, event = edited
    response = client_for(personas.developer).post(url(event), **HTMX)
    assert response.status_code == 204
    trigger = response.headers["HX-Trigger"]
    assert "activityChanged" in trigger and "Undone: 3 devices changed back." in trigger
    assert [groups_of(device) for device in devices] == [[], [], []]
    assert AuditEvent.objects.get(action="device.groups_undo").details["undoes"] == event.pk


def test_without_javascript_confirming_redirects_to_the_activity_page(client_for, personas, edited):
    devices, event = edited
    response = client_for(personas.developer).post(url(event))
    assert response.status_code == 302 and response["Location"] == "/products/acme/activity/"
    assert groups_of(devices[0]) == []


def test_undoing_twice_says_there_is_nothing_left_to_undo_and_changes_nothing(client_for, personas, edited):
    devices, event = edited
    client = client_for(personas.developer)
    client.post(url(event))
    response = client.post(url(event), follow=True)
    assert "Nothing to undo" in response.content.decode()
    assert AuditEvent.objects.filter(action="device.groups_undo").count() == 1


@pytest.mark.parametrize("persona,status", [("viewer", 403), ("support", 403), ("outsider", 404)])
def test_only_members_who_can_write_may_undo(client_for, personas, edited, persona, status):
    devices, event = edited
    client = client_for(getattr(personas, persona))
    assert client.get(url(event)).status_code == status
    assert client.post(url(event)).status_code == status
    assert groups_of(devices[0]) == ["beta"]


def test_events_that_are_not_batch_edits_cannot_be_undone(client_for, personas, edited):
    other = AuditEvent.record(product=personas.product, actor=personas.admin, action="group.create")
    assert client_for(personas.developer).get(url(other)).status_code == 404


def test_undo_answers_get_and_post_only(client_for, personas, edited):
    devices, event = edited
    assert client_for(personas.developer).delete(url(event)).status_code == 405
