"""Every endpoint: 401 without, with a bad and with an expired token; 403 for view-only tokens on
writes; 404 for another product's objects. Nothing changes in any of these cases."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.models import AccessToken, AuditEvent
from devices.models import Device
from firmware.models import Firmware
from groups.models import Group
from tests.api.conftest import error_of
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db

DEVICE = "0000000000000000000000aa"
THEIR_DEVICE = "0000000000000000000000bb"

READS = [
    ("get", "/v1/products/{p}/groups", None),
    ("get", "/v1/products/{p}/groups/europe", None),
    ("get", "/v1/products/{p}/devices", None),
    ("get", "/v1/products/{p}/devices/{d}", None),
    ("get", "/v1/products/{p}/firmware", None),
    ("get", "/v1/products/{p}/firmware/3", None),
    ("get", "/v1/products/{p}/firmware/3/binary", None),
    ("get", "/v1/products/{p}/impact?action=edit_groups_for_firmware&firmware_version=3", None),
]
WRITES = [
    ("post", "/v1/products/{p}/groups", {"name": "new-group"}),
    ("put", "/v1/products/{p}/groups/europe", {"description": "changed"}),
    ("delete", "/v1/products/{p}/groups/europe", None),
    ("put", "/v1/products/{p}/devices/{d}", {"name": "changed"}),
    ("put", "/v1/products/{p}/devices", {"action": "groups", "devices": ["{d}"], "metadata": {"add": ["x"]}}),
    ("post", "/v1/products/{p}/devices", {"id": "0000000000000000000000cc"}),
    ("delete", "/v1/products/{p}/devices/{d}", None),
    ("post", "/v1/products/{p}/devices/{d}/key", None),
    ("put", "/v1/products/{p}/firmware/3", {"title": "changed"}),
    ("delete", "/v1/products/{p}/firmware/3", None),
    ("put", "/v1/products/{p}/firmware/release", {"version": 3, "product_default": True}),
]


@pytest.fixture
def fleet(personas):
    for product, device_id in ((personas.product, DEVICE), (personas.other_product, THEIR_DEVICE)):
        device = DeviceFactory(product=product, device_id=device_id, name="before", firmware_version=3)
        GroupFactory(product=product, name="europe", devices=[device])
        FirmwareFactory(product=product, version=3)
    return personas


def _call(client, method, template, body, *, product="acme", device=DEVICE, headers=None):
    url = template.format(p=product, d=device)
    if body is not None:
        body = {
            key: [device if item == "{d}" else item for item in value] if isinstance(value, list) else value
            for key, value in body.items()
        }
    if method == "get":
        return client.get(url, **(headers or {}))
    if method == "delete":
        return client.delete(url, **(headers or {}))
    return getattr(client, method)(url, json.dumps(body), content_type="application/json", **(headers or {}))


def _state():
    return (
        sorted(Device.objects.values_list("device_id", "name", "online")),
        sorted(Group.objects.values_list("name", "description")),
        sorted(Firmware.objects.values_list("version", "title", "ever_released")),
        AuditEvent.objects.exclude(action="token.create").count(),
    )


@pytest.mark.parametrize(("method", "template", "body"), READS + WRITES)
def test_without_a_token_every_endpoint_is_401(fleet, method, template, body):
    before = _state()
    response = _call(Client(), method, template, body)
    assert response.status_code == 401
    assert error_of(response)["error"] == "invalid_token"
    assert _state() == before


@pytest.mark.parametrize(("method", "template", "body"), READS + WRITES)
def test_with_an_unknown_token_every_endpoint_is_401(fleet, method, template, body):
    before = _state()
    response = _call(Client(), method, template, body, headers={"HTTP_AUTHORIZATION": "Bearer not-a-token"})
    assert response.status_code == 401
    assert _state() == before


@pytest.mark.parametrize(("method", "template", "body"), READS + WRITES)
def test_with_an_expired_token_every_endpoint_is_401(fleet, method, template, body):
    token, raw, _ = AccessToken.issue(user=fleet.admin)
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    before = _state()
    response = _call(Client(), method, template, body, headers={"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    assert response.status_code == 401
    assert _state() == before


@pytest.mark.parametrize("persona", ["viewer", "support"])
@pytest.mark.parametrize(("method", "template", "body"), WRITES)
def test_a_view_only_token_gets_403_on_every_write(fleet, persona, method, template, body):
    _token, raw, _ = AccessToken.issue(user=getattr(fleet, persona))
    before = _state()
    response = _call(Client(), method, template, body, headers={"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    assert response.status_code == 403
    assert error_of(response)["error"] == "forbidden"
    assert _state() == before


@pytest.mark.parametrize("product_ref", ["other", "id"])
@pytest.mark.parametrize(("method", "template", "body"), READS + WRITES)
def test_another_products_objects_are_404_on_every_endpoint(fleet, product_ref, method, template, body):
    _token, raw, _ = AccessToken.issue(user=fleet.admin)
    product = fleet.other_product.slug if product_ref == "other" else str(fleet.other_product.id)
    before = _state()
    response = _call(
        Client(), method, template, body, product=product, device=THEIR_DEVICE,
        headers={"HTTP_AUTHORIZATION": f"Bearer {raw}"},
    )  # fmt: skip
    assert response.status_code == 404
    assert error_of(response)["error"] == "not_found"
    assert _state() == before


@pytest.mark.parametrize(("method", "template", "body"), READS)
def test_a_view_only_token_reads_every_endpoint(fleet, method, template, body):
    _token, raw, _ = AccessToken.issue(user=fleet.viewer)
    response = _call(Client(), method, template, body, headers={"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    assert response.status_code == 200
