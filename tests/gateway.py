"""Devices as the gateway sees them: a device with its own key, and a client that speaks for it."""

import base64
import json

from django.test import Client
from django.utils import timezone

from devices import keys
from tests.factories import DeviceFactory


def keyed_device(product, **fields):
    """A device of the product with a device key: (device, raw key)."""
    raw = keys.new_key()
    device = DeviceFactory(product=product, key_hash=keys.key_hash(raw), key_rotated_at=timezone.now(), **fields)
    return device, raw


def basic(device_id: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{device_id}:{key}".encode()).decode()


class DeviceClient:
    """Django's test client with a device's HTTP Basic credentials."""

    def __init__(self, device_id: str, key: str, client: Client | None = None):
        self.client = client or Client()
        self.authorization = basic(device_id, key)

    def handshake(self, version):
        return self.post("/v1/device/handshake", {"firmware_version": version})

    def update_failed(self, version, reason=""):
        return self.post("/v1/device/update_failed", {"version": version, "reason": reason})

    def post(self, url, data):
        return self.client.post(url, json.dumps(data), content_type="application/json",
                                HTTP_AUTHORIZATION=self.authorization)

    def get(self, url):
        return self.client.get(url, HTTP_AUTHORIZATION=self.authorization)


def device_client(device, key) -> DeviceClient:
    return DeviceClient(device.device_id, key)
