"""The handshake endpoint's statements: a fixed, small number per call, compiled once per process
and, on PostgreSQL, prepared once per connection."""

import pytest
from django.db import connection

from firmware import services
from firmware.models import FirmwareUpdate
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

# Token, membership and device (the endpoint's lookups); then, inside the transaction (a
# savepoint in tests), the UPDATE of the device row and the read of its target and pending update.
ON_TARGET = 3 + 4
FIRST_TARGETED = ON_TARGET + 3  # the pending FirmwareUpdate, its audit event and the device it names


@pytest.fixture
def fleet(personas):
    v5 = FirmwareFactory(product=personas.product, version=5)
    device = DeviceFactory(product=personas.product, firmware_version=4)
    GroupFactory(product=personas.product, name="beta", devices=[device], released_firmware=v5)
    return v5, device


def _handshake(client, device, version):
    return client.post(f"/v1/products/acme/devices/{device.device_id}/handshake", {"firmware_version": version})


@pytest.mark.django_db
def test_a_handshake_on_target_takes_seven_queries(fleet, api, django_assert_num_queries):
    v5, device = fleet
    client = api("developer")

    with django_assert_num_queries(ON_TARGET) as captured:
        response = _handshake(client, device, 5)

    assert response.json() == {"update": None}
    if connection.vendor == "postgresql":
        executed = [query["sql"].split("(")[0] for query in captured if query["sql"].startswith("EXECUTE")]
        assert executed == ["EXECUTE fleet_live_token", "EXECUTE fleet_handshake_record", "EXECUTE fleet_handshake_state"]


@pytest.mark.django_db
def test_a_first_targeting_handshake_adds_only_the_update_and_its_audit_event(fleet, api, django_assert_num_queries):
    v5, device = fleet
    client = api("developer")

    with django_assert_num_queries(FIRST_TARGETED):
        response = _handshake(client, device, 4)

    assert response.json()["update"]["version"] == 5
    assert FirmwareUpdate.objects.get(device=device).status == FirmwareUpdate.Status.PENDING


@pytest.mark.django_db
def test_an_offer_repeated_while_its_update_is_pending_takes_seven_queries(fleet, api, django_assert_num_queries):
    v5, device = fleet
    client = api("developer")
    _handshake(client, device, 4)

    with django_assert_num_queries(ON_TARGET):
        response = _handshake(client, device, 4)

    assert response.json()["update"]["sha256"] == v5.sha256
    assert FirmwareUpdate.objects.filter(device=device).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="statements are prepared on PostgreSQL only")
def test_a_new_database_connection_gets_the_statements_prepared_again(personas):
    v5 = FirmwareFactory(product=personas.product, version=5)
    device = DeviceFactory(product=personas.product, firmware_version=4)
    GroupFactory(product=personas.product, name="beta", devices=[device], released_firmware=v5)
    device.product = personas.product
    assert services.device_handshake(device=device, firmware_version=4) == v5

    connection.close()  # as after a database restart or CONN_MAX_AGE

    offered = services.device_handshake(device=device, firmware_version=4)

    assert offered == v5
    assert FirmwareUpdate.objects.get(device=device).status == FirmwareUpdate.Status.PENDING
