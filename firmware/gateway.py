"""The device gateway: a device starts a session (handshake) and reports a failed update.

Served to the device-cloud gateway, which calls with a team member's token for now."""

from ninja import Router, Schema
from pydantic import Field

from console import access
from console.api.errors import error_responses
from console.api.parsing import Int, NullableInt, RequestSchema
from devices.models import Device
from firmware import services as firmware_services

router = Router()
PRODUCT = "/v1/products/{product}"


class HandshakeIn(RequestSchema):
    firmware_version: NullableInt = Field(None, ge=1, le=65535)


class UpdateOffer(Schema):
    version: int
    size: int
    sha256: str
    url: str


class HandshakeOut(Schema):
    update: UpdateOffer | None


class UpdateFailedIn(RequestSchema):
    version: Int = Field(ge=1, le=65535)
    reason: str = Field("", max_length=255)


class OkOut(Schema):
    ok: bool


@router.post(
    PRODUCT + "/devices/{device_id}/handshake",
    response={200: HandshakeOut, **error_responses(403, 404)},
    summary="(ours) A device starts a session",
)
def handshake(request, product: str, device_id: str, payload: HandshakeIn):
    """Called by the device-cloud gateway: records the running version, marks the device online,
    settles a pending update and answers the update to install, if any."""
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.visible_to(membership).get_by_device_id(device_id)
    device.product = membership.product
    firmware = firmware_services.device_handshake(device=device, firmware_version=payload.firmware_version)
    if firmware is None:
        return {"update": None}
    url = request.build_absolute_uri(f"/v1/products/{membership.product_id}/firmware/{firmware.version}/binary")
    return {"update": {"version": firmware.version, "size": firmware.size, "sha256": firmware.sha256, "url": url}}


@router.post(
    PRODUCT + "/devices/{device_id}/update_failed",
    response={200: OkOut, **error_responses(403, 404)},
    summary="(ours) A device reports a failed firmware update",
)
def update_failed(request, product: str, device_id: str, payload: UpdateFailedIn):
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.visible_to(membership).get_by_device_id(device_id)
    device.product = membership.product
    firmware_services.device_update_failed(device=device, version=payload.version, reason=payload.reason)
    return {"ok": True}
