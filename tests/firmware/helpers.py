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


def rollout_fleet(personas, *, size: int, canary: int) -> dict:
    """A fleet of `size` devices on v4, all in group "everyone" (v4 released to it), the first
    `canary` of them also in "prerelease"; v5 proven and ready to roll out."""
    from firmware import services
    from tests.factories import DeviceFactory, GroupFactory

    product = personas.product
    v4, v5 = proven_firmware(product, 4), proven_firmware(product, 5)
    devices = [DeviceFactory(product=product, firmware_version=4) for _ in range(size)]
    everyone = GroupFactory(product=product, name="everyone", devices=devices)
    services.firmware_release(firmware=v4, groups=[everyone], actor=personas.developer)
    prerelease = GroupFactory(product=product, name="prerelease", devices=devices[:canary])
    return {"product": product, "v4": v4, "v5": v5, "devices": devices, "everyone": everyone, "canary": prerelease}
