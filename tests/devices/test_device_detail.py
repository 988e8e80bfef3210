import pytest

from console.models import AuditEvent
from groups import services
from tests.conftest import HTMX
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def device(personas):
    return DeviceFactory(product=personas.product, name="truck-1", device_id="a1" * 12, firmware_version=3)


URL = "/products/acme/devices/" + "a1" * 12 + "/"


def test_it_shows_the_header_with_group_tags_and_the_firmware_section(personas, client_for, device):
    v5 = FirmwareFactory(product=personas.product, version=5)
    GroupFactory(product=personas.product, name="beta", color="#8b5cf6", devices=[device], released_firmware=v5)

    response = client_for(personas.viewer).get(URL)

    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert "truck-1" in html and 'style="--pill: #8b5cf6"' in html
    assert 'id="device-firmware"' in html and "v5" in html
    assert "HX-Request" in response["Vary"]


def test_a_writer_gets_add_groups_or_edit(personas, client_for, device):
    client = client_for(personas.developer)
    assert "+ Add groups" in client.get(URL).content.decode()
    GroupFactory(product=personas.product, devices=[device])
    html = client.get(URL).content.decode()
    assert "+ Add groups" not in html and ">Edit</a>" in html


@pytest.mark.parametrize("persona", ["viewer", "support"])
def test_read_only_members_get_no_group_controls(personas, client_for, device, persona):
    html = client_for(getattr(personas, persona)).get(URL).content.decode()
    assert "+ Add groups" not in html and f"{URL}groups/" not in html


def test_the_history_lists_group_and_firmware_changes_newest_first(personas, client_for, device):
    europe = GroupFactory(product=personas.product, name="europe")
    membership = personas.product.memberships.get(user=personas.developer)
    services.device_groups_edit(membership=membership, device=device, add=["europe"], actor=personas.developer)
    AuditEvent.record(product=personas.product, actor=None, action="firmware.update_targeted", obj=device,
                      device_ids=[device.device_id], from_version=3, to_version=5)
    AuditEvent.record(product=personas.product, actor=None, action="group.create", obj=europe)

    html = client_for(personas.viewer).get(URL).content.decode()

    assert html.index("Targeted for an OTA update to v5") < html.index("Added to europe")
    assert "by developer" in html
    assert "group.create" not in html


def test_an_empty_history_says_what_will_appear(personas, client_for, device):
    html = client_for(personas.viewer).get(URL).content.decode()
    assert "No group or firmware changes yet." in html


def test_htmx_refreshes_return_only_the_region_asked_for(personas, client_for, device):
    client = client_for(personas.viewer)
    header = client.get(URL, **HTMX, HTTP_HX_TARGET="device-header").content.decode()
    history = client.get(URL, **HTMX, HTTP_HX_TARGET="device-history").content.decode()
    assert header.lstrip().startswith('<header id="device-header"') and "<html" not in header
    assert history.lstrip().startswith('<section id="device-history"') and "<html" not in history


def test_a_history_restore_gets_the_full_page(personas, client_for, device):
    response = client_for(personas.viewer).get(
        URL, **HTMX, HTTP_HX_TARGET="device-header", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_a_restricted_member_gets_404_for_a_device_outside_their_groups(personas, client_for, device):
    assert client_for(personas.restricted).get(URL).status_code == 404
    personas.restricted_group.memberships.create(device=device)
    assert client_for(personas.restricted).get(URL).status_code == 200


def test_outsiders_and_unknown_devices_get_404(personas, client_for, device):
    assert client_for(personas.outsider).get(URL).status_code == 404
    assert client_for(personas.admin).get("/products/acme/devices/" + "b2" * 12 + "/").status_code == 404
    assert client_for(personas.outsider).get("/products/other/devices/" + "a1" * 12 + "/").status_code == 404


def test_post_is_not_allowed(personas, client_for, device):
    assert client_for(personas.admin).post(URL).status_code == 405


def test_the_query_count_does_not_grow_with_groups_or_history(personas, client_for, device, django_assert_num_queries):
    client = client_for(personas.viewer)
    client.get(URL)
    with django_assert_num_queries(7) as first:
        client.get(URL)
    for index in range(5):
        group = GroupFactory(product=personas.product, devices=[device])
        services.devices_edit_groups(product=personas.product, devices=type(device).objects.filter(pk=device.pk),
                                  remove=[group], actor=personas.developer)
        GroupFactory(product=personas.product, devices=[device])
    with django_assert_num_queries(len(first.captured_queries)):
        client.get(URL)


def test_a_restricted_member_does_not_learn_the_names_of_other_groups_from_the_history(personas, client_for, device):
    personas.restricted_group.memberships.create(device=device)
    secret = GroupFactory(product=personas.product, name="secret-customer")
    services.devices_edit_groups(product=personas.product, devices=type(device).objects.filter(pk=device.pk),
                              add=[secret], actor=personas.admin)

    restricted = client_for(personas.restricted).get(URL).content.decode()
    admin = client_for(personas.admin).get(URL).content.decode()

    assert "secret-customer" not in restricted and "Groups changed" in restricted
    assert "Added to secret-customer" in admin
