"""firmware_upload, firmware_edit and firmware_delete: stored rows and files."""

import hashlib

import pytest
from django.core.exceptions import ValidationError

from console.models import AuditEvent
from firmware import services
from firmware.models import Firmware
from tests.factories import DeviceFactory, FirmwareFactory
from tests.firmware.helpers import binary

pytestmark = pytest.mark.django_db


def stored_files(settings):
    root = settings.MEDIA_ROOT
    return sorted(path.name for path in root.rglob("*") if path.is_file()) if root.exists() else []


def test_an_upload_stores_the_binary_its_size_and_sha256(personas, settings):
    content = b"\x00\x01firmware-bytes" * 10

    firmware = services.firmware_upload(
        product=personas.product, version=7, title=" Battery fix ", description="Fixes drain",
        binary=binary(content), actor=personas.developer,
    )

    firmware.refresh_from_db()
    assert (firmware.version, firmware.title, firmware.size) == (7, "Battery fix", len(content))
    assert firmware.sha256 == hashlib.sha256(content).hexdigest()
    assert firmware.uploaded_by == personas.developer
    assert firmware.binary.read() == content
    assert AuditEvent.objects.filter(action="firmware.upload", product=personas.product).exists()


def test_a_duplicate_version_is_refused_and_leaves_no_file(personas, settings):
    FirmwareFactory(product=personas.product, version=7)
    before = stored_files(settings)

    with pytest.raises(ValidationError) as raised:
        services.firmware_upload(product=personas.product, version=7, title="Again", binary=binary(), actor=personas.developer)

    assert raised.value.message_dict == {"version": ["Firmware version already exists"]}
    assert stored_files(settings) == before
    assert Firmware.objects.filter(product=personas.product).count() == 1


def test_an_empty_binary_is_refused(personas, settings):
    with pytest.raises(ValidationError) as raised:
        services.firmware_upload(product=personas.product, version=1, title="Empty", binary=binary(b""), actor=personas.developer)

    assert "binary" in raised.value.message_dict
    assert not Firmware.objects.exists()
    assert stored_files(settings) == []


def test_a_binary_over_the_limit_raises_firmware_too_large(personas, settings):
    settings.FIRMWARE_MAX_BYTES = 16

    with pytest.raises(services.FirmwareTooLarge):
        services.firmware_upload(product=personas.product, version=1, title="Big", binary=binary(b"x" * 17), actor=personas.developer)

    assert not Firmware.objects.exists()
    assert stored_files(settings) == []


@pytest.mark.parametrize("version", [0, 65536, "abc"])
def test_a_version_outside_1_to_65535_is_refused(personas, version):
    with pytest.raises(ValidationError) as raised:
        services.firmware_upload(product=personas.product, version=version, title="T", binary=binary(), actor=personas.developer)

    assert "version" in raised.value.message_dict
    assert not Firmware.objects.exists()


def test_a_title_over_64_characters_is_refused(personas):
    with pytest.raises(ValidationError) as raised:
        services.firmware_upload(product=personas.product, version=1, title="t" * 65, binary=binary(), actor=personas.developer)

    assert "title" in raised.value.message_dict
    assert not Firmware.objects.exists()


def test_an_edit_changes_title_and_description(personas):
    firmware = FirmwareFactory(product=personas.product, version=3, title="Old")

    services.firmware_edit(firmware=firmware, title="New", description="Notes", actor=personas.developer)

    firmware.refresh_from_db()
    assert (firmware.title, firmware.description) == ("New", "Notes")
    assert AuditEvent.objects.get(action="firmware.edit").details["before"] == {"title": "Old", "description": ""}


def test_deleting_a_never_released_version_removes_row_and_file(personas, settings, django_capture_on_commit_callbacks):
    firmware = services.firmware_upload(product=personas.product, version=3, title="T", binary=binary(), actor=personas.developer)
    assert stored_files(settings)

    with django_capture_on_commit_callbacks(execute=True):
        services.firmware_delete(firmware=firmware, actor=personas.developer)

    assert not Firmware.objects.exists()
    assert stored_files(settings) == []
    assert AuditEvent.objects.filter(action="firmware.delete").exists()


def test_a_version_that_was_ever_released_cannot_be_deleted(personas):
    firmware = FirmwareFactory(product=personas.product, version=3, ever_released=True)

    with pytest.raises(ValidationError):
        services.firmware_delete(firmware=firmware, actor=personas.developer)

    assert Firmware.objects.filter(pk=firmware.pk).exists()


def test_a_version_devices_are_locked_to_cannot_be_deleted(personas):
    firmware = FirmwareFactory(product=personas.product, version=3)
    DeviceFactory(product=personas.product, desired_firmware_version=3)

    with pytest.raises(ValidationError) as raised:
        services.firmware_delete(firmware=firmware, actor=personas.developer)

    assert "locked" in raised.value.message_dict["version"][0]
    assert Firmware.objects.filter(pk=firmware.pk).exists()
