"""/products/<slug>/groups/<id>/: a group's release, version distribution, members and activity."""

import re

import pytest

from groups import services
from tests.factories import DeviceFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

pytestmark = pytest.mark.django_db


@pytest.fixture
def europe(personas):
    product = personas.product
    v5 = proven_firmware(product, 5)
    devices = [
        *DeviceFactory.create_batch(3, product=product, firmware_version=4),
        *DeviceFactory.create_batch(1, product=product, firmware_version=5),
    ]
    group = GroupFactory(product=product, name="europe", description="EU fleet")
    services.devices_edit_groups(
        product=product, devices=type(devices[0]).objects.filter(pk__in=[d.pk for d in devices]), add=[group],
        actor=personas.developer,
    )
    from firmware import services as firmware_services

    firmware_services.firmware_release(firmware=v5, groups=[group], actor=personas.developer)
    group.refresh_from_db()
    return group


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_it_shows_the_release_the_versions_run_and_targeted_and_the_history(personas, client_for, europe):
    response = client_for(personas.viewer).get(f"/products/acme/groups/{europe.id}/")

    assert response.status_code == 200
    text = _text(response)
    assert "EU fleet" in text
    assert "4 devices" in text
    assert "Released firmware: v5" in text
    # Runs: three on v4, one on v5; all four are targeted v5.
    assert re.search(r"Versions its devices run .*v5 1 25\.0% .*v4 3 75\.0%", text)
    assert re.search(r"Versions its devices are targeted .*v5 4 100\.0%", text)
    assert "developer: Released v5 to the group" in text
    assert "developer: Added devices to the group (4 devices changed by this edit)" in text
    assert "/products/acme/devices/?groups=europe" in response.content.decode()


def test_an_empty_group_says_what_to_do_next(personas, client_for):
    group = GroupFactory(product=personas.product, name="empty")

    text = _text(client_for(personas.viewer).get(f"/products/acme/groups/{group.id}/"))

    assert "No devices in this group yet." in text
    assert "Nothing has been released to this group yet." in text


def test_its_queries_do_not_grow_with_the_group(personas, client_for, europe, django_assert_num_queries):
    client = client_for(personas.viewer)
    client.get(f"/products/acme/groups/{europe.id}/")  # warm the session
    with django_assert_num_queries(11) as few:  # 10, and the live rollout the rule reads
        client.get(f"/products/acme/groups/{europe.id}/")
    more = DeviceFactory.create_batch(40, product=personas.product, firmware_version=3)
    europe.memberships.bulk_create([europe.memberships.model(group=europe, device=device) for device in more])
    with django_assert_num_queries(len(few)):
        client.get(f"/products/acme/groups/{europe.id}/")


def test_group_tags_link_to_the_group_page(personas, client_for, europe):
    client = client_for(personas.viewer)
    device = europe.devices.first()
    for path in ("/products/acme/groups/", "/products/acme/devices/", f"/products/acme/devices/{device.device_id}/"):
        assert f'href="/products/acme/groups/{europe.id}/"' in client.get(path).content.decode(), path


def test_another_products_group_is_404(personas, client_for):
    group = GroupFactory(product=personas.other_product, name="theirs")
    assert client_for(personas.developer).get(f"/products/acme/groups/{group.id}/").status_code == 404
    assert client_for(personas.outsider).get(f"/products/other/groups/{group.id}/").status_code == 200


def test_a_restricted_member_sees_their_group_only_and_no_other_groups_names(personas, client_for, europe):
    client = client_for(personas.restricted)
    partner = personas.restricted_group
    device = europe.devices.first()
    partner.memberships.create(device=device)

    assert client.get(f"/products/acme/groups/{europe.id}/").status_code == 404
    html = client.get(f"/products/acme/groups/{partner.id}/").content.decode()
    assert "partner-fleet" in html and "europe" not in html
