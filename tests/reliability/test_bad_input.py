"""A catalogue of bad input, sent to the console forms and the API alike: each gets a clear
refusal naming the problem (400 or 413, never a 500) and the database is left as it was."""

import json

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from console.models import AccessToken, AuditEvent
from devices.models import Device
from firmware.models import Firmware
from groups.models import Group, GroupMembership
from tests.factories import DeviceFactory, GroupFactory

pytestmark = pytest.mark.django_db

BAD_NAMES = {
    "uppercase": "Europe",
    "spaces": "two words",
    "emoji": "fleet-\U0001f680",
    "65 characters": "x" * 65,
    "empty": "",
    "sql": "x'; DROP TABLE groups_group; --",
    "html": "<script>alert(1)</script>",
}
BAD_COLORS = ["red", "#12345", "#gggggg", "rgb(0,0,0)", "#1234567"]


def snapshot():
    return (
        sorted(Group.objects.values_list("product_id", "name", "description", "color")),
        sorted(GroupMembership.objects.values_list("group_id", "device_id")),
        sorted(Device.objects.values_list("device_id", "name", "notes", "desired_firmware_version")),
        sorted(Firmware.objects.values_list("product_id", "version", "title")),
        AuditEvent.objects.exclude(action="token.create").count(),
    )


@pytest.fixture
def world(personas):
    cache.clear()
    device = DeviceFactory(product=personas.product, device_id="0000000000000000000000aa")
    GroupFactory(product=personas.product, name="europe", devices=[device])
    return personas


@pytest.fixture
def console(world):
    client = Client()
    client.force_login(world.developer)
    return client


@pytest.fixture
def api(world):
    _token, raw, _ = AccessToken.issue(user=world.developer)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def api_json(client, method, url, body):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.generic(method, url, data, content_type="application/json")


@pytest.mark.parametrize("name", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
def test_a_bad_group_name_is_refused_everywhere_and_nothing_changes(console, api, name):
    before = snapshot()
    form = console.post("/products/acme/groups/new/", {"name": name, "color": "#112233"})
    assert form.status_code == 400
    assert "Lowercase letters, digits, - and _ only" in form.content.decode()
    response = api_json(api, "POST", "/v1/products/acme/groups", {"name": name})
    assert response.status_code == 400 and "name" in response.json()["fields"]
    batch = api_json(api, "PUT", "/v1/products/acme/devices", {
        "action": "groups", "devices": ["0000000000000000000000aa"], "metadata": {"add": [name]},
    })
    assert batch.status_code == 400
    assert snapshot() == before


@pytest.mark.parametrize("color", BAD_COLORS)
def test_a_bad_color_is_refused_everywhere(console, api, color):
    before = snapshot()
    assert console.post("/products/acme/groups/new/", {"name": "ok-name", "color": color}).status_code == 400
    response = api_json(api, "POST", "/v1/products/acme/groups", {"name": "ok-name", "color": color})
    assert response.status_code == 400 and "color" in response.json()["fields"]
    assert snapshot() == before


def test_a_duplicate_name_is_refused_everywhere(console, api):
    before = snapshot()
    form = console.post("/products/acme/groups/new/", {"name": "europe", "color": "#112233"})
    assert form.status_code == 400 and "already exists" in form.content.decode()
    response = api_json(api, "POST", "/v1/products/acme/groups", {"name": "europe"})
    assert response.status_code == 400 and "already exists" in response.json()["error_description"] + str(response.json().get("fields"))
    assert snapshot() == before


def test_unknown_groups_and_devices_are_refused(console, api):
    before = snapshot()
    assert api_json(api, "GET", "/v1/products/acme/devices?groups=nowhere", "").status_code == 400
    unknown = api_json(api, "PUT", "/v1/products/acme/devices", {
        "action": "groups", "devices": ["0000000000000000000000ff"], "metadata": {"add": ["europe"]},
    })
    assert unknown.status_code == 400 and "0000000000000000000000ff" in json.dumps(unknown.json())
    removing_unknown = api_json(api, "PUT", "/v1/products/acme/devices", {
        "action": "groups", "devices": ["0000000000000000000000aa"], "metadata": {"remove": ["nowhere"]},
    })
    assert removing_unknown.status_code == 400
    form = console.post("/products/acme/devices/edit-groups/", {"ids": ["0000000000000000000000aa"], "add": ["nowhere"]})
    assert form.status_code == 400
    assert snapshot() == before


def test_a_batch_of_1001_ids_is_refused(api):
    before = snapshot()
    ids = [f"{n:024x}" for n in range(1001)]
    response = api_json(api, "PUT", "/v1/products/acme/devices", {
        "action": "groups", "devices": ids, "metadata": {"add": ["europe"]},
    })
    assert response.status_code == 400 and "devices" in response.json()["fields"]
    assert snapshot() == before


@pytest.mark.parametrize("body", ['{"name": ', "[1, 2", "null", '"text"', "{'name': 'x'}"])
def test_malformed_json_is_a_400(api, body):
    before = snapshot()
    response = api_json(api, "POST", "/v1/products/acme/groups", body)
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert snapshot() == before


@pytest.mark.parametrize("body", [
    {"name": 7},
    {"name": ["europe"]},
    {"name": "ok-name", "description": {"a": 1}},
])
def test_wrong_types_are_a_400_naming_the_field(api, body):
    before = snapshot()
    response = api_json(api, "POST", "/v1/products/acme/groups", body)
    assert response.status_code == 400 and response.json()["fields"]
    assert snapshot() == before


@pytest.mark.parametrize("version", ["-1", "0", "65536", "99999999999999999999", "abc", "1.5"])
def test_bad_firmware_versions_are_refused_by_form_and_api(console, api, version):
    before = snapshot()
    binary = SimpleUploadedFile("fw.bin", b"\x00firmware")
    form = console.post("/products/acme/firmware/upload/", {"version": version, "title": "x", "binary": binary})
    assert form.status_code == 400
    binary.seek(0)
    response = api.post("/v1/products/acme/firmware", {"version": version, "title": "x", "binary": binary})
    assert response.status_code == 400 and "version" in response.json()["fields"]
    assert snapshot() == before


def test_an_empty_binary_is_a_400_and_an_oversize_one_a_413(console, api, settings):
    settings.FIRMWARE_MAX_BYTES = 1024
    before = snapshot()
    empty = api.post("/v1/products/acme/firmware", {"version": "3", "title": "x", "binary": SimpleUploadedFile("e.bin", b"")})
    assert empty.status_code == 400
    big = api.post("/v1/products/acme/firmware", {"version": "3", "title": "x", "binary": SimpleUploadedFile("b.bin", b"x" * 4096)})
    assert big.status_code == 413
    form = console.post("/products/acme/firmware/upload/", {"version": "3", "title": "x", "binary": SimpleUploadedFile("b.bin", b"x" * 4096)})
    assert form.status_code == 400
    assert snapshot() == before


def test_html_in_names_and_descriptions_is_escaped(world, console):
    GroupFactory(product=world.product, name="html-test", description="<script>alert('x')</script><b>bold</b>")
    page = console.get("/products/acme/groups/").content.decode()
    assert "<script>alert" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
