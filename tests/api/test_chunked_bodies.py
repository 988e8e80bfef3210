"""Bodies sent with `Transfer-Encoding: chunked` (as Particle's clients stream a file given by
path), under gunicorn as production runs it: read whole up to the size limits, a 413 past them."""

import http.client
import json
import uuid
from urllib.parse import urlparse

import pytest
from django.core.cache import cache

from console.models import AccessToken
from devices.models import Device
from firmware.models import Firmware
from groups.models import Group
from tests.factories import make_personas

pytestmark = pytest.mark.django_db(transaction=True)


def _chunks(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _send(server, method: str, path: str, body: bytes, content_type: str, token: str):
    """One request whose body goes out chunked (no Content-Length)."""
    url = urlparse(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type, "Transfer-Encoding": "chunked"}
    conn.request(method, path, body=_chunks(body), headers=headers, encode_chunked=True)
    response = conn.getresponse()
    status, raw = response.status, response.read()
    conn.close()
    return status, json.loads(raw) if raw else None


def _multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def token(gunicorn_server):
    cache.clear()
    personas = make_personas()
    return personas, AccessToken.issue(user=personas.developer)[1]


def test_a_chunked_file_of_device_ids_imports_every_device(gunicorn_server, token):
    personas, raw = token
    ids = [f"{n:024x}" for n in range(0xC00, 0xC00 + 300)]
    body, content_type = _multipart({}, {"file": ("ids.txt", "\n".join(ids).encode())})

    status, answer = _send(gunicorn_server, "POST", "/v1/products/acme/devices", body, content_type, raw)

    assert status == 200, answer
    assert answer["updated"] == 300
    assert Device.objects.filter(product=personas.product, device_id__in=ids).count() == 300


def test_a_chunked_firmware_upload_stores_the_whole_binary(gunicorn_server, token):
    personas, raw = token
    binary = bytes(range(256)) * 4000  # about 1 MB: spooled to disk, not kept in memory
    body, content_type = _multipart({"version": "9", "title": "Streamed"}, {"file": ("fw.bin", binary)})

    status, answer = _send(gunicorn_server, "POST", "/v1/products/acme/firmware", body, content_type, raw)

    assert status == 201, answer
    firmware = Firmware.objects.get(product=personas.product, version=9)
    assert firmware.size == len(binary)
    assert firmware.binary.read() == binary


def test_a_chunked_json_body_is_read(gunicorn_server, token):
    personas, raw = token
    body = json.dumps({"name": "streamed", "description": "sent in chunks"}).encode()

    status, answer = _send(gunicorn_server, "POST", "/v1/products/acme/groups", body, "application/json", raw)

    assert status == 201, answer
    assert Group.objects.get(product=personas.product, name="streamed").description == "sent in chunks"


def test_a_chunked_body_past_the_largest_limit_is_a_413_and_stores_nothing(gunicorn_server, token):
    personas, raw = token
    binary = b"\0" * (11 * 1024 * 1024)  # past both the 10 MiB body and the 8 MiB firmware limits
    body, content_type = _multipart({"version": "9", "title": "Too big"}, {"file": ("fw.bin", binary)})

    try:
        status, answer = _send(gunicorn_server, "POST", "/v1/products/acme/firmware", body, content_type, raw)
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("the server closed the connection without answering 413")

    assert status == 413
    assert answer["error"] == "payload_too_large"
    assert not Firmware.objects.filter(product=personas.product).exists()


def test_a_chunked_firmware_past_its_own_limit_gets_the_firmware_413(gunicorn_server, token):
    personas, raw = token
    binary = b"\0" * (8 * 1024 * 1024 + 100 * 1024)  # past 8 MiB, within the 10 MiB of any body
    body, content_type = _multipart({"version": "9", "title": "Too big"}, {"file": ("fw.bin", binary)})

    status, answer = _send(gunicorn_server, "POST", "/v1/products/acme/firmware", body, content_type, raw)

    assert status == 413
    assert "binary" in answer["fields"]
    assert not Firmware.objects.filter(product=personas.product).exists()
