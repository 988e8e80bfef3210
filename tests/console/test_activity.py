import pytest

from console.models import AuditEvent
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_the_activity_page_lists_changes_newest_first_and_filters_them(client, personas):
    device = DeviceFactory(product=personas.product)
    AuditEvent.record(product=personas.product, actor=personas.admin, action="group.create", obj=None)
    AuditEvent.record(product=personas.product, actor=personas.developer, action="device.groups",
                      device_ids=[device.device_id], added=["europe"])
    AuditEvent.record(product=personas.other_product, actor=personas.outsider, action="group.create")
    client.force_login(personas.viewer)

    everything = client.get("/products/acme/activity/").context["page"].object_list
    assert [e.action for e in everything] == ["device.groups", "group.create"]
    by_device = client.get("/products/acme/activity/", {"device": device.device_id}).context["page"].object_list
    assert [e.actor.username for e in by_device] == ["developer"]
    by_actor = client.get("/products/acme/activity/", {"actor": "administrator"}).context["page"].object_list
    assert [e.action for e in by_actor] == ["group.create"]
    by_kind = client.get("/products/acme/activity/", {"kind": "device"}).context["page"].object_list
    assert [e.action for e in by_kind] == ["device.groups"]


def test_an_outsider_gets_404_on_the_activity_page(client, personas):
    client.force_login(personas.outsider)
    assert client.get("/products/acme/activity/").status_code == 404


def test_the_activity_page_has_a_bounded_number_of_queries(client, personas, django_assert_max_num_queries):
    for n in range(30):
        AuditEvent.record(product=personas.product, actor=personas.admin, action="group.edit")
    client.force_login(personas.viewer)
    with django_assert_max_num_queries(8):
        assert client.get("/products/acme/activity/").status_code == 200


@pytest.mark.parametrize("params", [{"device": "not-a-device"}, {"device": "\x00"}, {"actor": "\x00"}])
def test_bad_activity_filters_are_explained_not_an_error(client, personas, params):
    AuditEvent.record(product=personas.product, actor=personas.admin, action="group.create")
    client.force_login(personas.viewer)
    response = client.get("/products/acme/activity/", params)
    assert response.status_code == 200
    if "device" in params:
        assert list(response.context["page"].object_list) == []
        assert "A device ID is 24 hexadecimal characters" in response.content.decode()


def test_events_read_as_sentences_with_a_link_to_the_devices_they_changed(client, personas):
    from devices.models import Device
    from groups import services as group_services
    from tests.factories import DeviceFactory, GroupFactory

    devices = DeviceFactory.create_batch(3, product=personas.product)
    cold = GroupFactory(product=personas.product, name="cold-chain")
    group_services.devices_edit_groups(
        product=personas.product, devices=Device.objects.filter(pk__in=[d.pk for d in devices]), add=[cold],
        actor=personas.developer,
    )
    client.force_login(personas.viewer)

    body = client.get("/products/acme/activity/").content.decode()
    event = AuditEvent.objects.get(action="device.groups")
    listed = client.get("/products/acme/devices/", {"event": event.pk}).content.decode()

    assert "added 3 devices to <strong>cold-chain</strong>" in body
    assert "device.groups" not in body
    assert f'href="/products/acme/devices/?event={event.pk}"' in body
    assert all(device.device_id in listed for device in devices)
    assert "Showing the devices changed by one" in listed


def test_the_activity_filters_by_object(client, personas):
    from groups import services as group_services

    group_services.group_create(product=personas.product, name="europe", actor=personas.developer)
    group_services.group_create(product=personas.product, name="asia", actor=personas.developer)
    client.force_login(personas.viewer)

    body = client.get("/products/acme/activity/", {"object": "euro"}).content.decode()

    assert "created group <strong>europe</strong>" in body and "asia" not in body
