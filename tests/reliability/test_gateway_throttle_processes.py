"""The device gateway's failure throttle is shared by every web process: two gunicorn servers on
one PostgreSQL database count one device's failures together."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from bench.load import _free_port, _wait_listening, stop_server
from tests.gateway import basic, keyed_device

PROJECT = Path(__file__).resolve().parents[2]
LIMIT = 4

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the servers share a PostgreSQL database"),
]


class Server:
    def __init__(self, database_url: str, log: Path):
        self.port = _free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "DATABASE_URL": database_url,
               "DEVICE_AUTH_FAILURES": str(LIMIT), "DEBUG": "0"}
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "console.wsgi:application", "--workers", "1",
                 "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"],
                cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        _wait_listening(self.port, self.process)

    def handshake(self, device_id: str, key: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/device/handshake", method="POST",
            data=json.dumps({"firmware_version": None}).encode(),
            headers={"Authorization": basic(device_id, key), "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def stop(self) -> None:
        stop_server(self.process)


@pytest.fixture
def servers(tmp_path):
    settings = connection.settings_dict
    url = f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    started = []
    try:
        for name in ("a", "b"):
            started.append(Server(url, tmp_path / f"gunicorn-{name}.log"))
        yield started
    finally:
        for server in started:
            server.stop()


def test_failures_at_two_servers_add_up_to_one_throttle(personas, servers):
    a, b = servers
    device, key = keyed_device(personas.product)
    assert a.handshake(device.device_id, key) == 200 and b.handshake(device.device_id, key) == 200

    wrong = [server.handshake(device.device_id, "wrong-key") for server in (a, b, a, b)]

    assert wrong == [401] * LIMIT
    assert a.handshake(device.device_id, key) == 429  # neither server saw LIMIT failures by itself
    assert b.handshake(device.device_id, key) == 429
    other, other_key = keyed_device(personas.product)
    assert b.handshake(other.device_id, other_key) == 200
