"""Particle's own JavaScript client (particle-api-js 12, from npm) against a live test server.

CI installs the client with `npm ci --prefix tests/clients` before running pytest.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.cache import cache

from console.models import AccessToken
from devices.models import Device
from firmware.models import Firmware
from groups.models import Group
from tests.factories import PASSWORD, DeviceFactory, make_personas

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "particle_api_js.js"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required for the particle-api-js test: install node (v18 or newer).")
    if not (HERE / "node_modules" / "particle-api-js").is_dir():
        pytest.fail("particle-api-js is not installed: run `npm ci --prefix tests/clients` first.")
    return node


@pytest.fixture
def fleet(transactional_db):
    cache.clear()
    personas = make_personas()
    devices = [DeviceFactory(product=personas.product) for _ in range(3)]
    return personas, devices


def test_particle_api_js_drives_groups_devices_and_firmware(fleet, live_server):
    personas, devices = fleet
    device = devices[0]
    run = subprocess.run(
        [_node(), str(SCRIPT), live_server.url, personas.developer.username, PASSWORD, device.device_id.upper()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)

    assert out["login"] == {"statusCode": 200, "token_type": "bearer", "expires_in": 7776000}
    assert out["badLogin"]["statusCode"] == 400
    assert out["badLogin"]["body"]["error"] == "invalid_grant"

    assert out["createGroup"]["group"]["color"] == "#22c55e"
    assert out["createFormGroup"]["group"]["description"] == "Prerelease testers"
    assert out["editGroup"]["group"]["description"] == "Testers"
    assert out["getGroup"]["group"]["name"] == "europe"
    assert [group["name"] for group in out["listGroups"]["groups"]] == ["europe"]
    assert out["deleteGroup"] == 204
    assert out["batch"] == {"ok": True, "updated": 1}

    assert [row["id"] for row in out["listDevices"]["devices"]] == [device.device_id]
    assert out["listDevices"]["meta"] == {"page": 1, "per_page": 2, "total_pages": 1, "total": 1}
    assert out["listPage2"]["meta"] == {"page": 2, "per_page": 2, "total_pages": 2, "total": 3}
    assert len(out["listPage2"]["devices"]) == 1
    assert out["updateDevice"]["name"] == "van-7"
    assert out["getDevice"]["notes"] == "Rear door sensor"
    assert out["getDevice"]["firmware_target_reason"] == {"rule": "development", "group": None}
    assert out["unknownDevice"]["statusCode"] == 404
    assert out["unknownDevice"]["body"]["ok"] is False

    assert out["upload"]["version"] == 7
    assert out["upload"]["uploaded_by"] == {"username": "developer"}
    assert out["duplicateUpload"]["statusCode"] == 400
    assert out["duplicateUpload"]["body"]["error_description"] == "Firmware version already exists"
    assert [firmware["version"] for firmware in out["listFirmware"]] == [7]
    assert out["getFirmware"]["title"] == "Door fix"
    assert out["updateFirmware"]["title"] == "Door fix 2"
    assert out["downloadMatches"] is True
    assert out["lock"]["desired_firmware_version"] == 7
    assert out["lockUnknownVersion"]["statusCode"] == 400
    assert "desired_firmware_version" in out["lockUnknownVersion"]["body"]["fields"]
    assert out["unlock"]["desired_firmware_version"] is None
    assert out["updateDevelopment"]["development"] is False
    assert out["handshake"] == {"update": None}
    assert out["release"]["groups"] == ["europe"]
    assert out["release"]["product_default"] is True
    assert out["impact"]["devices"]["firmware_update"]["total"] == 0

    assert out["revoke"] == {"ok": True}
    assert out["afterRevoke"]["statusCode"] == 401

    device.refresh_from_db()
    assert (device.name, device.notes, device.development, device.desired_firmware_version) == (
        "van-7",
        "Rear door sensor",
        False,
        7,
    )
    assert device.firmware_version == 7 and device.online
    assert list(device.groups.values_list("name", flat=True)) == ["europe"]
    firmware = Firmware.objects.get(product=personas.product, version=7)
    assert firmware.title == "Door fix 2"
    assert firmware.ever_released
    assert Group.objects.get(product=personas.product, name="europe").released_firmware == firmware
    assert not Group.objects.filter(product=personas.product, name="beta").exists()
    personas.product.refresh_from_db()
    assert personas.product.default_firmware == firmware
    assert not AccessToken.objects.filter(user=personas.developer).active().exists()
    assert Device.objects.filter(product=personas.product).count() == 3
