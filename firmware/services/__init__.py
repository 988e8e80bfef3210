"""Firmware services, one module per concern: uploads, releases, a device's firmware.

The console views, the API and the admin all call these, so each rule lives here once. Every
write is one transaction and records an AuditEvent. Targets always come from the one rule in
`firmware.targeting`, never from a second copy. Other apps import this package
(`firmware_services.device_lock(...)`), so it re-exports the public functions.
"""

from firmware.services.device_firmware import (
    device_development_set,
    device_handshake,
    device_lock,
    device_target_preview,
    device_update_failed,
)
from firmware.services.releases import (
    UNPROVEN_MESSAGE,
    ReleasePlan,
    ever_reported_running,
    firmware_release,
    release_plan,
)
from firmware.services.uploads import (
    FirmwareTooLarge,
    firmware_delete,
    firmware_edit,
    firmware_locked_devices,
    firmware_upload,
)

__all__ = [
    "UNPROVEN_MESSAGE",
    "FirmwareTooLarge",
    "ReleasePlan",
    "device_development_set",
    "device_handshake",
    "device_lock",
    "device_target_preview",
    "device_update_failed",
    "ever_reported_running",
    "firmware_delete",
    "firmware_locked_devices",
    "firmware_edit",
    "firmware_release",
    "firmware_upload",
    "release_plan",
]
