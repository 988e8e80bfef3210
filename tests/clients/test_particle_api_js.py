"""Particle's own JavaScript client (particle-api-js 12, from npm) against gunicorn serving the
test database (it streams files given by path chunked, which needs a production server).

`make test` installs the client with `npm ci --prefix tests/clients` before running pytest.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from console.models import AccessToken
from devices.models import Device, QuarantinedDevice
from firmware.models import Firmware
from groups.models import Group
from tests.clients.conftest import QUARANTINED, QUARANTINED_SERIAL
from tests.factories import PASSWORD

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "particle_api_js.js"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required for the particle-api-js test: install node (v18 or newer).")
    if not (HERE / "node_modules" / "particle-api-js").is_dir():
        pytest.fail("particle-api-js is not installed: run `npm ci --prefix tests/clients` first.")
    return node


def test_particle_api_js_drives_groups_devices_and_firmware(client_fleet, gunicorn_server, tmp_path):
    personas, devices = client_fleet
    device, flashed, removed = devices
    run = subprocess.run(
        [
            _node(), str(SCRIPT), gunicorn_server.url, personas.developer.username, PASSWORD,
            device.device_id.upper(), str(tmp_path), flashed.device_id, removed.device_id, device.serial_number,
            QUARANTINED_SERIAL, QUARANTINED[1],
        ],
        capture_output=True,
        text=True,
        timeout=180,
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
    assert out["memberHandshake"] == 401
    assert out["release"]["groups"] == ["europe"]
    assert out["release"]["product_default"] is True
    assert out["impact"]["devices"]["firmware_update"]["total"] == 0

    assert out["user"]["username"] == "developer"
    assert [product["slug"] for product in out["products"]["products"]] == ["acme"]
    assert out["product"]["product"]["groups"] == ["europe", "partner-fleet"]
    assert {member["username"] for member in out["team"]["team"]} >= {"owner", "developer", "partner"}
    assert out["serial"] == {
        "ok": True, "device_id": device.device_id, "product_id": personas.product.pk, "platform_id": 12, "iccid": "",
    }
    assert {row["id"] for row in out["myDevices"]} == {d.device_id for d in devices}
    assert "connected" in out["myDevices"][0]
    assert out["missingRoute"]["statusCode"] == 404
    assert "No such endpoint" in out["missingRoute"]["body"]["error_description"]

    # Streamed (chunked) files: a serial number approves the quarantined device it names.
    assert sorted(out["addFromFile"]["updatedDeviceIds"]) == sorted([QUARANTINED[0], "ab" * 12])
    assert out["uploadFromFile"]["version"] == 8 and out["uploadFromFile"]["size"] == len("fleet console firmware v8\n") * 500

    assert out["flashNotDevelopment"]["statusCode"] == 400
    assert out["markDevelopment"]["development"] is True
    assert (out["flash"]["flash_version"], out["flash"]["status"]) == (8, "Update pending")
    assert out["signal"]["statusCode"] == 400
    assert out["signal"]["body"]["error"] == "device_not_connected"
    assert [row["id"] for row in out["quarantinedBefore"]["devices"]] == [QUARANTINED[1]]
    assert out["deny"] == 204
    assert out["unclaim"] == {"ok": True}
    assert out["remove"] == 204

    assert out["forever"] == {"expires_in": 0}
    assert out["deleteToken"] == {"ok": True}
    assert out["afterDelete"]["statusCode"] == 401
    assert out["revoke"] == {"ok": True}
    assert out["afterRevoke"]["statusCode"] == 401
    assert out["revokeAll"]["ok"] is True
    assert out["afterRevokeAll"]["statusCode"] == 401

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
    assert set(Device.objects.filter(product=personas.product).values_list("device_id", flat=True)) == {
        device.device_id, flashed.device_id, QUARANTINED[0], "ab" * 12,
    }
    flashed.refresh_from_db()
    assert (flashed.development, flashed.flash_version) == (True, 8)
    assert QuarantinedDevice.objects.get(device_id=QUARANTINED[1]).denied_at is not None
    assert Firmware.objects.get(product=personas.product, version=8).binary.read() == b"fleet console firmware v8\n" * 500
