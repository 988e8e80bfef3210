"""The device gateway's failure throttle is shared by every web process: two gunicorn servers (of
two workers each) on one PostgreSQL database count one device's failures together."""

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection  # noqa: F401 - the skipif condition names it

from tests.gateway import basic, keyed_device
from tests.gunicorn import GunicornServer

LIMIT = 4

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the servers share a PostgreSQL database"),
]


class Server(GunicornServer):
    """gunicorn on the test database (tests/gunicorn.py), with a small failure limit."""

    def __init__(self, log: Path):
        super().__init__(media_root=log.parent / "media", log_path=log)
        self.env["DEVICE_AUTH_FAILURES"] = str(LIMIT)

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


@pytest.fixture
def servers(tmp_path):
    started = []
    try:
        for name in ("a", "b"):
            started.append(Server(tmp_path / f"gunicorn-{name}.log").start())
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
