"""Particle's command line client, particle-cli, from npm, against gunicorn serving the test
database, as a migrating Particle user would run it: its own throwaway HOME, pointed at the server
with `particle config set apiUrl` (the newest particle-cli whose engines allow Node.js 20 is 3.43).

`make test` installs it with `npm ci --prefix tests/clients` (tests/clients/package.json).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from console.models import AccessToken
from devices.models import Device, QuarantinedDevice
from tests.clients.conftest import QUARANTINED, QUARANTINED_SERIAL
from tests.factories import PASSWORD, FirmwareFactory, GroupFactory

HERE = Path(__file__).resolve().parent
PARTICLE = HERE / "node_modules" / ".bin" / "particle"


@pytest.fixture
def cli(gunicorn_server, tmp_path):
    """Runs `particle ...` with its own HOME, pointed at the server; fails on a non-zero exit."""
    if shutil.which("node") is None or not PARTICLE.exists():
        pytest.fail("particle-cli is not installed: run `make clients` (npm ci --prefix tests/clients).")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "PARTICLE_DISABLE_UPDATE": "1", "NO_COLOR": "1", "FORCE_COLOR": "0"}

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(PARTICLE), *args], input=stdin, capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
        if ok:
            assert done.returncode == 0, f"particle {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done

    run("config", "set", "apiUrl", gunicorn_server.url)
    run.home = home
    return run


def test_particle_cli_logs_in_manages_tokens_and_product_devices_and_flashes(client_fleet, cli, tmp_path):
    personas, devices = client_fleet
    device, flashed, removed = devices
    GroupFactory(product=personas.product, name="europe", devices=[device])
    firmware = FirmwareFactory(product=personas.product, version=6)  # its binary is b"firmware 6"

    # Login by password; whoami asks the server.
    assert "Successfully completed login" in cli("login", "--username", "developer", "--password", PASSWORD).stdout
    assert "developer" in cli("whoami").stdout
    profile = json.loads((cli.home / ".particle" / "particle.config.json").read_text())
    assert AccessToken.objects.authenticate(profile["access_token"]).user == personas.developer

    # Tokens: one that never expires and one that does; the CLI asks for the password.
    forever = cli("token", "create", "--never-expires", stdin=f"{PASSWORD}\n").stdout
    assert "never expires" in forever
    forever_raw = re.search(r"\b([0-9a-f]{40})\b", forever).group(1)
    expiring = cli("token", "create", "--expires-in", "3600", stdin=f"{PASSWORD}\n").stdout
    expiring_raw = re.search(r"\b([0-9a-f]{40})\b", expiring).group(1)
    assert AccessToken.objects.authenticate(forever_raw).expires_at is None

    # Login by token (what CI does), then revoke the other token.
    cli("logout", stdin="y\n", ok=False)
    cli("login", "--token", forever_raw)
    assert "developer" in cli("whoami").stdout
    assert "Successfully revoked" in cli("token", "revoke", expiring_raw).stdout
    assert AccessToken.objects.authenticate(expiring_raw) is None
    assert AccessToken.objects.authenticate(forever_raw) is not None

    # Product devices: list with a group filter, add by ID, add from a file (an ID and a serial
    # number that names a quarantined device), remove.
    listed = json.loads(cli("product", "device", "list", "acme", "--groups", "europe", "--json").stdout)
    assert [row["id"] for row in listed["data"]] == [device.device_id]
    assert listed["data"][0]["groups"] == ["europe"]
    new_id = "ab" * 12
    assert "Success" in cli("product", "device", "add", "acme", new_id).stdout
    ids_file = tmp_path / "devices.txt"
    ids_file.write_text(f"{'cd' * 12}\n{QUARANTINED_SERIAL}\n")
    assert "Success" in cli("product", "device", "add", "acme", "--file", str(ids_file)).stdout
    assert "Success" in cli("product", "device", "remove", "acme", removed.device_id).stdout

    # Cloud flash of a product device: marked development, then offered the flashed version.
    binary = tmp_path / "app.bin"
    binary.write_bytes(b"firmware 6")
    flash = cli("cloud", "flash", flashed.device_id, str(binary), "--product", "acme").stdout
    assert "Flash success" in flash

    assert set(Device.objects.filter(product=personas.product).values_list("device_id", flat=True)) == {
        device.device_id, flashed.device_id, new_id, "cd" * 12, QUARANTINED[0],
    }
    assert not QuarantinedDevice.objects.filter(device_id=QUARANTINED[0]).exists()
    flashed.refresh_from_db()
    assert (flashed.development, flashed.flash_version) == (True, firmware.version)
