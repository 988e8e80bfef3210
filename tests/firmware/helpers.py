"""Small builders shared by the firmware tests."""

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import FirmwareFactory


def binary(content: bytes = b"\x7fELF firmware image", name: str = "app.bin") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def proven_firmware(product, version: int, **kwargs):
    """A version a development device of the product has reported running through the gateway
    (so it may be released)."""
    from firmware.gateway import Credentials, gateway_handshake
    from tests.gateway import keyed_device

    firmware = FirmwareFactory(product=product, version=version, **kwargs)
    device, _key = keyed_device(product, development=True)
    gateway_handshake(credentials=Credentials(device.device_id, device.key_hash), firmware_version=version)
    firmware.refresh_from_db(fields=["first_reported_at", "first_reported_by", "last_reported_at", "last_reported_by"])
    return firmware
