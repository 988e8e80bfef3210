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
    assert '<option value="europe" data-color="#0ea5e9" selected>' in html and '<option value="asia" data-color="#0ea5e9">' in html
    assert '<input type="hidden" name="shown" value="europe">' in html
    assert ">Done</button>" in html and ">Cancel</a>" in html


def test_without_javascript_edit_mode_is_the_full_device_page(personas, client_for, device):
    html = client_for(personas.developer).get(URL).content.decode()
    assert "<html" in html and ">Done</button>" in html and 'id="device-history"' in html


def test_done_sets_the_groups_creating_new_ones_and_redirects(personas, client_for, device):
    GroupFactory(product=personas.product, name="europe", devices=[device])
    GroupFactory(product=personas.product, name="asia")

    response = client_for(personas.developer).post(URL, {"shown": ["europe"], "groups": ["asia", "Night-Shift"]})

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
    client_for(personas.developer).post(URL, {"shown": ["europe"], "groups": []})
    assert groups_of(device) == []


def test_done_saves_only_what_this_editor_changed_so_a_concurrent_edit_survives(personas, client_for, device):
    """Tab A and tab B open the editor on a device in no group; A adds cold-chain and saves, then
    B adds customer-initech: the device ends in both, and B is told about A's change."""
    GroupFactory(product=personas.product, name="cold-chain")
    GroupFactory(product=personas.product, name="customer-initech")
    client = client_for(personas.developer)

    client.post(URL, {"shown": [], "groups": ["cold-chain"]}, **HTMX)
    response = client.post(URL, {"shown": [], "groups": ["customer-initech"]}, **HTMX)

    assert groups_of(device) == ["cold-chain", "customer-initech"]
    last = AuditEvent.objects.filter(action="device.groups").order_by("-id").first()
    assert last.details["added"] == ["customer-initech"] and last.details["removed"] == []
    html = response.content.decode()
    assert "Its groups were also changed elsewhere while you were editing: it is also in cold-chain." in html
    assert "it is also in cold-chain" in response.headers["HX-Trigger"]


def test_a_removal_made_elsewhere_is_not_undone_by_a_stale_editor(personas, client_for, device):
    GroupFactory(product=personas.product, name="europe", devices=[device])
    GroupFactory(product=personas.product, name="asia", devices=[device])
    client = client_for(personas.developer)

    client.post(URL, {"shown": ["asia", "europe"], "groups": ["asia"]}, **HTMX)
    html = client.post(URL, {"shown": ["asia", "europe"], "groups": ["asia", "europe", "beta"]}, **HTMX).content.decode()

    assert groups_of(device) == ["asia", "beta"]
    assert "while you were editing: it is no longer in europe." in html


def test_removing_the_last_group_warns_when_the_target_changes(personas, client_for, device):
    """Device in europe (released v4), product default v3: removing europe drops it to v3."""
    v3, v4 = FirmwareFactory(product=personas.product, version=3), FirmwareFactory(product=personas.product, version=4)
    personas.product.default_firmware = v3
    personas.product.save(update_fields=["default_firmware"])
    GroupFactory(product=personas.product, name="europe", released_firmware=v4, devices=[device])
    client = client_for(personas.developer)

    first = client.post(URL, {"shown": ["europe"], "groups": []}, **HTMX).content.decode()

    assert "from <strong>v4</strong>" in first and "to <strong>v3</strong>" in first
    assert '<input type="hidden" name="confirmed" value="-europe">' in first
    assert groups_of(device) == ["europe"]

    client.post(URL, {"shown": ["europe"], "groups": [], "confirmed": "-europe"}, **HTMX)
    assert groups_of(device) == []


def test_it_warns_before_a_change_of_firmware_target_and_saves_when_confirmed(personas, client_for, device):
    v5 = FirmwareFactory(product=personas.product, version=5)
    GroupFactory(product=personas.product, name="beta", released_firmware=v5)
    client = client_for(personas.developer)

    first = client.post(URL, {"groups": ["beta"]}, **HTMX).content.decode()

    assert "This changes the device's firmware target from <strong>none</strong>" in first
    assert "<strong>v5</strong> (Released to group beta)" in first
    assert '<input type="hidden" name="confirmed" value="+beta">' in first
    assert groups_of(device) == []

    client.post(URL, {"groups": ["beta"], "confirmed": "+beta"}, **HTMX)
    assert groups_of(device) == ["beta"]


def test_a_confirmation_for_another_change_does_not_count(personas, client_for, device):
    v5 = FirmwareFactory(product=personas.product, version=5)
    GroupFactory(product=personas.product, name="beta", released_firmware=v5)
    GroupFactory(product=personas.product, name="asia")
    html = client_for(personas.developer).post(URL, {"groups": ["beta", "asia"], "confirmed": "+beta"}).content.decode()
    assert "firmware target" in html
    assert groups_of(device) == []


@pytest.mark.parametrize("name", ["europe beta", "x" * 65, "Ümlaut"])
def test_it_rejects_invalid_new_group_names_and_changes_nothing(personas, client_for, device, name):
    GroupFactory(product=personas.product, name="europe", devices=[device])
    html = client_for(personas.developer).post(URL, {"shown": ["europe"], "groups": ["europe", name]}, **HTMX).content.decode()
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

    response = client.post(URL, {"shown": ["partner-fleet"], "groups": []}, **HTMX)
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
