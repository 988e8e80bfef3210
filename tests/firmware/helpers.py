"""Small builders shared by the firmware tests."""

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import FirmwareFactory


def binary(content: bytes = b"\x7fELF firmware image", name: str = "app.bin") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def proven_firmware(product, version: int, **kwargs):
    """A version some device of the product has reported running (so it may be released)."""
    from tests.factories import DeviceFactory

    firmware = FirmwareFactory(product=product, version=version, **kwargs)
    DeviceFactory(product=product, firmware_version=version, development=True)
    return firmware
