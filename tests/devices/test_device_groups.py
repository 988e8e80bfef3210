import pytest

from console.models import AuditEvent
from groups.models import Group, GroupMembership
from tests.conftest import HTMX
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db

DEVICE_ID = "c3" * 12
URL = f"/products/acme/devices/{DEVICE_ID}/groups/"


@pytest.fixture
def device(personas):
    return DeviceFactory(product=personas.product, name="truck-1", device_id=DEVICE_ID, firmware_version=3)


def groups_of(device):
    return sorted(GroupMembership.objects.filter(device=device).values_list("group__name", flat=True))


def test_edit_mode_is_a_searchable_multi_select_that_can_create_groups(personas, client_for, device):
    GroupFactory(product=personas.product, name="europe", devices=[device])
    GroupFactory(product=personas.product, name="asia")

    response = client_for(personas.developer).get(URL, **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<header id="device-header"') and "<html" not in html
    assert "data-tom-select data-create" in html
    assert '<option value="europe" selected>' in html and '<option value="asia">' in html
    assert ">Done</button>" in html and ">Cancel</a>" in html


def test_without_javascript_edit_mode_is_the_full_device_page(personas, client_for, device):
    html = client_for(personas.developer).get(URL).content.decode()
    assert "<html" in html and ">Done</button>" in html and 'id="device-history"' in html


def test_done_sets_the_groups_creating_new_ones_and_redirects(personas, client_for, device):
    GroupFactory(product=personas.product, name="europe", devices=[device])
    GroupFactory(product=personas.product, name="asia")

    response = client_for(personas.developer).post(URL, {"groups": ["asia", "Night-Shift"]})

    assert response.status_code == 302 and response["Location"] == f"/products/acme/devices/{DEVICE_ID}/"
    assert groups_of(device) == ["asia", "night-shift"]
    assert Group.objects.filter(product=personas.product, name="night-shift").exists()
    event = AuditEvent.objects.get(action="device.groups")
    assert event.actor == personas.developer and event.device_ids == [DEVICE_ID]
    assert sorted(event.details["added"]) == ["asia", "night-shift"] and event.details["removed"] == ["europe"]


def test_an_htmx_done_returns_the_header_in_view_mode_and_announces_the_change(personas, client_for, device):
    response = client_for(personas.developer).post(URL, {"groups": ["fresh"]}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<header id="device-header"') and ">fresh</a>" in html and "Done" not in html
    trigger = response.headers["HX-Trigger"]
    assert "devicesChanged" in trigger and "groupsChanged" in trigger and "firmwareChanged" in trigger
    assert groups_of(device) == ["fresh"]


def test_removing_every_group_leaves_the_device_in_none(personas, client_for, device):
    GroupFactory(product=personas.product, name="europe", devices=[device])
    client_for(personas.developer).post(URL, {"groups": []})
    assert groups_of(device) == []


def test_it_warns_before_a_change_of_firmware_target_and_saves_when_confirmed(personas, client_for, device):
    v5 = FirmwareFactory(product=personas.product, version=5)
    GroupFactory(product=personas.product, name="beta", released_firmware=v5)
    client = client_for(personas.developer)

    first = client.post(URL, {"groups": ["beta"]}, **HTMX).content.decode()

    assert "This changes the device's firmware target from <strong>none</strong>" in first
    assert "<strong>v5</strong> (Released to group beta)" in first
    assert '<input type="hidden" name="confirmed" value="beta">' in first
    assert groups_of(device) == []

    client.post(URL, {"groups": ["beta"], "confirmed": "beta"}, **HTMX)
    assert groups_of(device) == ["beta"]


def test_a_confirmation_for_another_change_does_not_count(personas, client_for, device):
    v5 = FirmwareFactory(product=personas.product, version=5)
    GroupFactory(product=personas.product, name="beta", released_firmware=v5)
    GroupFactory(product=personas.product, name="asia")
    html = client_for(personas.developer).post(URL, {"groups": ["beta", "asia"], "confirmed": "beta"}).content.decode()
    assert "firmware target" in html
    assert groups_of(device) == []


@pytest.mark.parametrize("name", ["europe beta", "x" * 65, "Ümlaut"])
def test_it_rejects_invalid_new_group_names_and_changes_nothing(personas, client_for, device, name):
    GroupFactory(product=personas.product, name="europe", devices=[device])
    html = client_for(personas.developer).post(URL, {"groups": ["europe", name]}, **HTMX).content.decode()
    assert "is not a valid group name" in html and 'aria-invalid="true"' in html
    assert groups_of(device) == ["europe"]
    assert Group.objects.filter(product=personas.product).count() == 2


def test_a_restricted_member_edits_only_their_group_and_keeps_the_others(personas, client_for, device):
    personas.restricted_group.memberships.create(device=device)
    GroupFactory(product=personas.product, name="secret", devices=[device])
    client = client_for(personas.restricted)

    edit_mode = client.get(URL, **HTMX).content.decode()
    refused = client.post(URL, {"groups": ["partner-fleet", "brand-new"]}, **HTMX).content.decode()

    assert "secret" not in edit_mode and "data-create" not in edit_mode
    assert "Unknown group: brand-new." in refused
    assert not Group.objects.filter(name="brand-new").exists()

    response = client.post(URL, {"groups": []}, **HTMX)
    assert groups_of(device) == ["secret"]
    # The device left the member's only group, so they can no longer see it.
    assert response.headers["HX-Redirect"] == "/products/acme/devices/"


@pytest.mark.parametrize("persona", ["viewer", "support"])
def test_read_only_members_get_403(personas, client_for, device, persona):
    client = client_for(getattr(personas, persona))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"groups": ["fresh"]}).status_code == 403
    assert groups_of(device) == []


def test_outsiders_get_404(personas, client_for, device):
    assert client_for(personas.outsider).post(URL, {"groups": ["fresh"]}).status_code == 404
    assert groups_of(device) == []


def test_put_is_not_allowed(personas, client_for, device):
    assert client_for(personas.developer).put(URL).status_code == 405
