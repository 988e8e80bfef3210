import pytest

from console.models import AuditEvent
from devices.models import Device
from groups.models import GroupMembership
from tests.conftest import HTMX, id_lookups
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db

URL = "/products/acme/devices/edit-groups/"


def groups_of(device):
    return sorted(GroupMembership.objects.filter(device=device).values_list("group__name", flat=True))


@pytest.fixture
def fleet(personas):
    product = personas.product
    devices = DeviceFactory.create_batch(4, product=product, firmware_version=3)
    europe = GroupFactory(product=product, name="europe", devices=devices[:3])
    beta = GroupFactory(product=product, name="beta", devices=[devices[0]])
    return devices, europe, beta


def test_it_adds_one_group_and_removes_another_for_the_ticked_devices(personas, client_for, fleet):
    devices, europe, beta = fleet
    ticked = devices[:2]

    response = client_for(personas.developer).post(URL, {
        "ids": [device.device_id for device in ticked], "add": ["beta"], "remove": ["europe"],
        "next": "/products/acme/devices/?q=tracker",
    })

    assert response.status_code == 302 and response["Location"] == "/products/acme/devices/?q=tracker"
    assert [groups_of(device) for device in devices] == [["beta"], ["beta"], ["europe"], []]
    event = AuditEvent.objects.get(action="device.groups")
    assert event.actor == personas.developer
    assert sorted(event.device_ids) == sorted(device.device_id for device in ticked)
    assert (event.details["added"], event.details["removed"]) == (["beta"], ["europe"])


def test_all_matching_re_applies_the_filter_on_the_server(personas, client_for, fleet):
    devices, europe, beta = fleet

    client_for(personas.developer).post(URL, {"all": "1", "groups": "europe", "add": ["beta"]})

    assert [groups_of(device) for device in devices] == [
        ["beta", "europe"], ["beta", "europe"], ["beta", "europe"], []
    ]


def test_all_matching_with_an_invalid_filter_changes_nothing(personas, client_for, fleet):
    devices, *_ = fleet
    html = client_for(personas.developer).post(URL, {"all": "1", "groups": "nowhere", "add": ["beta"]}).content.decode()
    assert "The filter is not valid" in html
    assert groups_of(devices[3]) == []


def test_the_dialog_counts_the_selection(personas, client_for, fleet):
    devices, *_ = fleet
    client = client_for(personas.developer)

    ticked = client.get(URL, {"ids": [devices[0].device_id, devices[1].device_id]}, **HTMX).content.decode()
    matching = client.get(URL, {"all": "1", "groups": "europe"}, **HTMX).content.decode()

    assert ticked.startswith("<dialog data-modal") and "2 selected devices" in ticked
    assert "All 3 devices matching this filter" in matching
    assert '<input type="hidden" name="groups" value="europe">' in matching


def test_the_preview_states_how_many_devices_will_be_targeted_and_to_which_version(personas, client_for, fleet):
    devices, europe, beta = fleet
    v5 = FirmwareFactory(product=personas.product, version=5)
    beta.released_firmware = v5
    beta.save(update_fields=["released_firmware"])

    response = client_for(personas.developer).post(
        URL, {"ids": [device.device_id for device in devices[:3]], "add": ["beta"], "preview": "1"},
        **HTMX, HTTP_HX_TARGET="edit-groups-impact",
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<p id="edit-groups-impact"')
    # devices[0] already targets v5 through beta; the other two would newly get it.
    assert "<strong>2 devices</strong> will be targeted for an OTA firmware update (of 3): 2 to v5." in html
    assert groups_of(devices[1]) == ["europe"]


def test_without_javascript_preview_re_renders_the_page_with_the_impact(personas, client_for, fleet):
    devices, *_ = fleet
    html = client_for(personas.developer).post(
        URL, {"ids": [devices[3].device_id], "add": ["beta"], "preview": "1"}
    ).content.decode()
    assert "<html" in html and "No device will be targeted for a firmware update." in html
    assert groups_of(devices[3]) == []


def test_an_htmx_save_closes_the_modal_and_refreshes_the_devices(personas, client_for, fleet):
    devices, *_ = fleet
    response = client_for(personas.developer).post(URL, {"ids": [devices[3].device_id], "add": ["beta"]}, **HTMX)
    assert response.status_code == 204
    trigger = response.headers["HX-Trigger"]
    assert "closeModal" in trigger and "devicesChanged" in trigger and "1 device added to beta." in trigger
    assert groups_of(devices[3]) == ["beta"]


def test_it_asks_for_at_least_one_group(personas, client_for, fleet):
    devices, *_ = fleet
    response = client_for(personas.developer).post(URL, {"ids": [devices[3].device_id]}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<article class="dialog-body"')
    assert "Choose at least one group to add or to remove." in html


def test_it_refuses_a_group_both_added_and_removed(personas, client_for, fleet):
    devices, *_ = fleet
    html = client_for(personas.developer).post(
        URL, {"ids": [devices[3].device_id], "add": ["beta"], "remove": ["beta"]}
    ).content.decode()
    assert "A group cannot be both added and removed: beta." in html
    assert groups_of(devices[3]) == []


def test_it_refuses_an_unknown_group(personas, client_for, fleet):
    devices, *_ = fleet
    html = client_for(personas.developer).post(URL, {"ids": [devices[3].device_id], "add": ["nowhere"]}).content.decode()
    assert "Unknown group: nowhere." in html
    assert groups_of(devices[3]) == []


def test_it_asks_for_a_selection(personas, client_for, fleet):
    html = client_for(personas.developer).get(URL, **HTMX).content.decode()
    assert "Select at least one device first." in html


def test_it_refuses_a_malformed_device_id(personas, client_for, fleet):
    html = client_for(personas.developer).get(URL, {"ids": "not-a-device"}).content.decode()
    assert "is not a 24-character hex device ID" in html


def test_a_restricted_member_can_only_touch_their_devices_and_their_group(personas, client_for, fleet):
    devices, europe, beta = fleet
    mine = DeviceFactory(product=personas.product)
    personas.restricted_group.memberships.create(device=mine)
    client = client_for(personas.restricted)

    # Their group onto a device outside their groups: the device is not theirs to see.
    client.post(URL, {"ids": [devices[3].device_id], "add": ["partner-fleet"]})
    # Another group onto their own device: not one of their groups.
    html = client.post(URL, {"ids": [mine.device_id], "add": ["beta"]}).content.decode()

    assert groups_of(devices[3]) == []
    assert groups_of(mine) == ["partner-fleet"]
    assert "Unknown group: beta." in html


@pytest.mark.parametrize("persona", ["viewer", "support"])
def test_read_only_members_get_403(personas, client_for, fleet, persona):
    devices, *_ = fleet
    client = client_for(getattr(personas, persona))
    assert client.get(URL, {"ids": [devices[3].device_id]}).status_code == 403
    assert client.post(URL, {"ids": [devices[3].device_id], "add": ["beta"]}).status_code == 403
    assert groups_of(devices[3]) == []


def test_outsiders_get_404_and_cannot_touch_the_products_devices(personas, client_for, fleet):
    devices, *_ = fleet
    response = client_for(personas.outsider).post(URL, {"ids": [devices[3].device_id], "add": ["beta"]})
    assert response.status_code == 404
    assert groups_of(devices[3]) == []


def test_another_products_devices_are_ignored(personas, client_for, fleet):
    theirs = DeviceFactory(product=personas.other_product)
    response = client_for(personas.developer).post(URL, {"ids": [theirs.device_id], "add": ["beta"]})
    assert response.status_code == 302
    assert groups_of(theirs) == []


def test_put_is_not_allowed(personas, client_for):
    assert client_for(personas.developer).put(URL).status_code == 405


@pytest.mark.parametrize("count", [3, 60])
def test_a_batch_edit_of_ticked_devices_costs_the_same_queries_whatever_their_number(
    personas, client_for, django_assert_num_queries, count
):
    product = personas.product
    devices = DeviceFactory.create_batch(count, product=product)
    GroupFactory(product=product, name="europe", devices=devices)
    GroupFactory(product=product, name="beta")
    client = client_for(personas.developer)
    ids = [device.device_id for device in devices]
    # session, user, membership, its restriction, COUNT, add/remove choices (2), then the service:
    # savepoint, lock groups, audit row, INSERT...SELECT, DELETE (each naming its devices in the
    # audit), the audit's device count, release.
    with django_assert_num_queries(13 + id_lookups(writes=2)):
        client.post(URL, {"ids": ids, "add": ["beta"], "remove": ["europe"]}, **HTMX)
    assert GroupMembership.objects.filter(group__name="beta").count() == count
    assert not GroupMembership.objects.filter(group__name="europe").exists()


@pytest.mark.parametrize("count", [3, 60])
def test_a_batch_edit_of_all_matching_devices_costs_the_same_queries_whatever_their_number(
    personas, client_for, django_assert_num_queries, count
):
    product = personas.product
    devices = DeviceFactory.create_batch(count, product=product)
    GroupFactory(product=product, name="europe", devices=devices)
    GroupFactory(product=product, name="beta")
    client = client_for(personas.developer)
    # As above, plus the filter's groups, minus the "remove" choices and the DELETE (nothing removed).
    with django_assert_num_queries(12 + id_lookups(writes=1)):
        client.post(URL, {"all": "1", "groups": "europe", "add": ["beta"]}, **HTMX)
    assert GroupMembership.objects.filter(group__name="beta").count() == count


def test_a_thousand_ticked_devices_fit_in_one_save(personas, client_for):
    product = personas.product
    Device.objects.bulk_create(
        Device(product=product, device_id=f"{n:024x}", name=f"bulk-{n}") for n in range(1000)
    )
    GroupFactory(product=product, name="beta")
    ids = list(Device.objects.filter(product=product).values_list("device_id", flat=True))
    response = client_for(personas.developer).post(URL, {"ids": ids, "add": ["beta"]}, **HTMX)
    assert response.status_code == 204
    assert GroupMembership.objects.filter(group__name="beta").count() == 1000
