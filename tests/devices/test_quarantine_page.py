"""The console's Quarantined page: devices that contacted the product without being imported,
approved or denied through the same services as the API."""

import pytest

from console.models import AuditEvent
from devices import services
from devices.models import Device, QuarantinedDevice

pytestmark = pytest.mark.django_db

PAGE = "/products/acme/devices/quarantine/"
WAITING = ["a" * 24, "b" * 24, "c" * 24]


@pytest.fixture
def waiting(personas):
    for number, device_id in enumerate(WAITING):
        services.device_contact(product=personas.product, device_id=device_id, serial_number=f"P0Q{number}")
    return WAITING


def test_the_page_lists_waiting_devices_with_approve_and_deny_for_developers(client_for, personas, waiting):
    html = client_for(personas.developer).get(PAGE).content.decode()

    for device_id in waiting:
        assert device_id in html
    assert f'name="approve" value="{waiting[0]}"' in html and f'name="deny" value="{waiting[0]}"' in html
    assert "Quarantined" in client_for(personas.developer).get("/products/acme/devices/").content.decode()


def test_a_viewer_sees_the_list_without_buttons_and_cannot_post(client_for, personas, waiting):
    client = client_for(personas.viewer)

    assert 'name="approve"' not in client.get(PAGE).content.decode()
    assert client.post(PAGE, {"approve": waiting[0]}).status_code == 403
    assert not Device.objects.filter(device_id=waiting[0]).exists()


def test_a_restricted_member_sees_none_and_an_outsider_gets_404(client_for, personas, waiting):
    assert waiting[0] not in client_for(personas.restricted).get(PAGE).content.decode()
    assert client_for(personas.outsider).get(PAGE).status_code == 404


def test_approve_makes_the_device_one_of_the_products_and_records_it(client_for, personas, waiting):
    response = client_for(personas.developer).post(PAGE, {"approve": waiting[0]}, follow=True)

    assert f"{waiting[0]} was approved" in response.content.decode()
    device = Device.objects.get(device_id=waiting[0])
    assert (device.product, device.serial_number) == (personas.product, "P0Q0")
    assert not QuarantinedDevice.objects.filter(device_id=waiting[0]).exists()
    assert AuditEvent.objects.get(action="device.approve").actor == personas.developer


def test_deny_selected_refuses_the_ticked_devices(client_for, personas, waiting):
    response = client_for(personas.admin).post(PAGE, {"action": "deny", "devices": waiting[1:]}, follow=True)

    assert "2 devices were denied" in response.content.decode()
    assert sorted(QuarantinedDevice.objects.exclude(denied_at=None).values_list("device_id", flat=True)) == waiting[1:]
    assert waiting[1] not in client_for(personas.admin).get(PAGE).content.decode()
    assert not Device.objects.filter(device_id__in=waiting).exists()
    assert AuditEvent.objects.get(action="device.deny").details["denied"] == waiting[1:]


def test_nothing_ticked_is_an_error_that_changes_nothing(client_for, personas, waiting):
    response = client_for(personas.admin).post(PAGE, {"action": "approve"}, follow=True)

    assert "Tick the devices" in response.content.decode()
    assert QuarantinedDevice.objects.waiting().count() == 3
