"""Uploading, editing and deleting firmware versions."""

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from console.models import AuditEvent
from devices.models import Device
from firmware.models import Firmware

TITLE_MAX = 64
VERSION_MIN, VERSION_MAX = 1, 65535


class FirmwareTooLarge(ValidationError):
    """The binary exceeds settings.FIRMWARE_MAX_BYTES (the API answers 413)."""


def clean_version(version) -> int:
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise ValidationError({"version": ["Enter a whole number from 1 to 65535."]}) from None
    if not VERSION_MIN <= version <= VERSION_MAX:
        raise ValidationError({"version": [f"Use a version from 1 to 65535 (got {version})."]})
    return version


def _clean_title(title) -> str:
    title = title.strip() if isinstance(title, str) else ""
    if not title:
        raise ValidationError({"title": ["Give the firmware a title, for example “Battery fix”."]})
    if len(title) > TITLE_MAX:
        raise ValidationError({"title": [f"Use at most {TITLE_MAX} characters (this has {len(title)})."]})
    return title


def _max_bytes_text() -> str:
    limit = settings.FIRMWARE_MAX_BYTES
    return f"{limit / 1024 / 1024:g} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


def _digest(binary) -> tuple[int, str]:
    """Size and sha256 of an uploaded file, read in chunks."""
    sha = hashlib.sha256()
    size = 0
    if hasattr(binary, "seek"):
        binary.seek(0)
    for chunk in binary.chunks() if hasattr(binary, "chunks") else iter(lambda: binary.read(65536), b""):
        size += len(chunk)
        sha.update(chunk)
        if size > settings.FIRMWARE_MAX_BYTES:
            break
    if hasattr(binary, "seek"):
        binary.seek(0)
    return size, sha.hexdigest()


def _duplicate_version() -> ValidationError:
    return ValidationError({"version": ["Firmware version already exists"]})


@transaction.atomic
def firmware_upload(*, product, version: int, title: str, description: str = "", binary, actor) -> Firmware:
    version = clean_version(version)
    title = _clean_title(title)
    description = (description or "").strip()
    declared = getattr(binary, "size", None) if binary is not None else None
    if binary is None or declared == 0:
        raise ValidationError({"binary": ["Choose a firmware binary (.bin); the file must not be empty."]})
    if declared is not None and declared > settings.FIRMWARE_MAX_BYTES:
        raise FirmwareTooLarge({"binary": [f"The binary is larger than the {_max_bytes_text()} limit."]})
    size, sha256 = _digest(binary)
    if size == 0:
        raise ValidationError({"binary": ["Choose a firmware binary (.bin); the file must not be empty."]})
    if size > settings.FIRMWARE_MAX_BYTES:
        raise FirmwareTooLarge({"binary": [f"The binary is larger than the {_max_bytes_text()} limit."]})
    if Firmware.objects.filter(product=product, version=version).exists():
        raise _duplicate_version()

    firmware = Firmware(
        product=product, version=version, title=title, description=description,
        size=size, sha256=sha256, uploaded_by=actor if getattr(actor, "pk", None) else None,
    )
    firmware.binary.save(getattr(binary, "name", None) or "firmware.bin", binary, save=False)
    stored = firmware.binary.name
    try:
        with transaction.atomic():
            firmware.save()
        AuditEvent.record(
            product=product, actor=actor, action="firmware.upload", obj=firmware,
            version=version, size=size, sha256=sha256,
        )
    except IntegrityError:
        # Lost a race with a concurrent upload of the same version.
        firmware.binary.storage.delete(stored)
        raise _duplicate_version() from None
    except BaseException:
        firmware.binary.storage.delete(stored)
        raise
    return firmware


@transaction.atomic
def firmware_edit(*, firmware: Firmware, title: str | None = None, description: str | None = None, actor) -> Firmware:
    changes = {}
    if title is not None and title.strip() != firmware.title:
        changes["title"] = _clean_title(title)
    if description is not None and description.strip() != firmware.description:
        changes["description"] = description.strip()
    if not changes:
        return firmware
    before = {field: getattr(firmware, field) for field in changes}
    for field, value in changes.items():
        setattr(firmware, field, value)
    firmware.save(update_fields=list(changes))
    AuditEvent.record(
        product=firmware.product, actor=actor, action="firmware.edit", obj=firmware, before=before, after=changes
    )
    return firmware


def firmware_locked_devices(firmware: Firmware):
    """The devices locked to this version: while there are any, it cannot be deleted."""
    return Device.objects.filter(product_id=firmware.product_id, desired_firmware_version=firmware.version)


def locked_message(version: int, count: int) -> str:
    return f"{count:,} device{'s are' if count != 1 else ' is'} locked to v{version}; unlock them first."


@transaction.atomic
def firmware_delete(*, firmware: Firmware, actor) -> None:
    current = Firmware.objects.select_for_update().filter(pk=firmware.pk).first()
    if current is None:
        raise ValidationError({"version": [f"v{firmware.version} no longer exists."]})
    if current.ever_released:
        raise ValidationError(
            {"version": [f"v{current.version} has been released, so it stays for the record and cannot be deleted."]}
        )
    locked = firmware_locked_devices(current).count()
    if locked:
        raise ValidationError({"version": [locked_message(current.version, locked)]})
    storage, name = current.binary.storage, current.binary.name
    AuditEvent.record(
        product=current.product, actor=actor, action="firmware.delete", obj=current,
        version=current.version, sha256=current.sha256,
    )
    current.delete()
    if name:
        transaction.on_commit(lambda: storage.delete(name))
