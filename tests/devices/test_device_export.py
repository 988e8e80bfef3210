import csv
import io

import pytest
from django.test import Client

from console.models import AccessToken

from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db


def rows_of(response):
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def api_client_for():
    def make(user):
        _token, raw, _refresh = AccessToken.issue(user=user)
        return Client(headers={"authorization": f"Bearer {raw}"})

    return make


@pytest.fixture
def fleet(personas):
    product = personas.product
    v5 = FirmwareFactory(product=product, version=5)
    a = DeviceFactory(product=product, name="=cmd", serial_number="SN-A", firmware_version=4, device_id="a" * 24)
    b = DeviceFactory(product=product, name="truck", serial_number="SN-B", device_id="b" * 24)
    DeviceFactory(product=product, name="other", device_id="c" * 24)
    GroupFactory(product=product, name="europe", devices=[a, b], released_firmware=v5)
    GroupFactory(product=product, name="beta", devices=[a])
    return a, b


def test_the_console_exports_the_filtered_list_with_groups_and_targets(client_for, personas, fleet):
    response = client_for(personas.viewer).get("/products/acme/devices/export.csv", {"groups": "europe", "sort": "device_id"})
    assert response["Content-Disposition"] == 'attachment; filename="acme-devices.csv"'
    assert rows_of(response) == [
        ["ID", "name", "serial", "groups", "running", "target", "why"],
        ["a" * 24, "'=cmd", "SN-A", "beta europe", "4", "5", "Released to group europe"],
        ["b" * 24, "truck", "SN-B", "europe", "", "5", "Released to group europe"],
    ]


def test_the_export_reads_a_bounded_number_of_queries(client_for, personas, fleet, django_assert_num_queries):
    DeviceFactory.create_batch(20, product=personas.product)
    client = client_for(personas.viewer)
    response = client.get("/products/acme/devices/export.csv")
    with django_assert_num_queries(2):  # the devices, then their groups (one query per chunk)
        assert len(rows_of(response)) == 24


def test_a_restricted_member_exports_only_their_devices_and_groups(client_for, personas, fleet):
    a, b = fleet
    personas.restricted_group.memberships.create(device=a)
    rows = rows_of(client_for(personas.restricted).get("/products/acme/devices/export.csv"))
    assert [row[:4] for row in rows[1:]] == [["a" * 24, "'=cmd", "SN-A", "partner-fleet"]]


def test_an_invalid_filter_is_a_400_saying_why(client_for, personas, fleet):
    response = client_for(personas.viewer).get("/products/acme/devices/export.csv", {"groups": "nowhere"})
    assert response.status_code == 400 and "Unknown group: nowhere." in response.content.decode()


def test_outsiders_get_404(client_for, personas, fleet):
    assert client_for(personas.outsider).get("/products/acme/devices/export.csv").status_code == 404


def test_the_api_exports_the_same_csv(api_client_for, personas, fleet):
    response = api_client_for(personas.viewer).get(
        "/v1/products/acme/devices.csv", {"groups": "beta"}
    )
    assert rows_of(response)[1][:4] == ["a" * 24, "'=cmd", "SN-A", "beta europe"]


# Paste a list ----------------------------------------------------------------------------------


def test_a_pasted_list_of_ids_and_serials_filters_the_list_and_names_the_unknown(client_for, personas, fleet):
    response = client_for(personas.viewer).get(
        "/products/acme/devices/", {"paste": f"{'A' * 24}\nSN-B, nope {'f' * 24}"}
    )
    html = response.content.decode()
    assert {device.device_id for device in response.context["devices"]} == {"a" * 24, "b" * 24}
    assert f"2 pasted entries match no device: <span class=\"mono\">nope, {'f' * 24}</span>" in html


def test_more_than_a_thousand_pasted_entries_are_refused(client_for, personas, fleet):
    response = client_for(personas.viewer).get("/products/acme/devices/", {"paste": " ".join(["x"] * 1001 + [str(i) for i in range(1001)])})
    assert "Paste at most 1,000 device IDs or serial numbers." in response.content.decode()


def test_the_api_list_takes_a_pasted_list_too(api_client_for, personas, fleet):
    body = api_client_for(personas.viewer).get("/v1/products/acme/devices", {"paste": "SN-A,SN-B"}).json()
    assert sorted(device["id"] for device in body["devices"]) == ["a" * 24, "b" * 24]
