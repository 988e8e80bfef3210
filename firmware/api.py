"""`/v1/products/:product/firmware` and `/impact`: product firmware, through firmware.services."""

import os

from django.conf import settings
from django.http import FileResponse, Http404
from ninja import Query, Router
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status
from pydantic import ValidationError as PydanticValidationError

from console import access
from console.api.errors import ApiError, error_responses, invalid
from console.api.parsing import request_body, timestamp
from devices.selection import batch_devices, device_filter
from devices.models import Device
from firmware import lint, schemas, services
from firmware.models import Firmware
from groups import services as group_services
from groups.models import Group

router = Router()
PRODUCT = "/v1/products/{product}"

# ---------------------------------------------------------------------------------------------
# Reading


def _firmware_list(membership):
    """Firmware objects of the product, newest first, in three queries whatever their number."""
    firmware = list(
        Firmware.objects.filter(product_id=membership.product_id).select_related("uploaded_by").order_by("-version")
    )
    return _firmware_json(membership, firmware)


def _firmware_json(membership, firmware: list[Firmware]) -> list[dict]:
    if not firmware:
        return []
    groups: dict[int, list[str]] = {}
    released = (
        Group.objects.visible_to(membership).filter(released_firmware__in=[fw.pk for fw in firmware]).order_by("name")
    )
    for firmware_id, name in released.values_list("released_firmware_id", "name"):
        groups.setdefault(firmware_id, []).append(name)
    running = Firmware.objects.filter(pk__in=[fw.pk for fw in firmware]).running_counts(Device.objects.visible_to(membership))
    default_id = membership.product.default_firmware_id
    return [
        {
            "version": fw.version,
            "title": fw.title,
            "description": fw.description,
            "name": os.path.basename(fw.binary.name) if fw.binary else "",
            "size": fw.size,
            "sha256": fw.sha256,
            "product_default": fw.pk == default_id,
            "current": fw.pk == default_id,
            "groups": groups.get(fw.pk, []),
            "intelligent": fw.intelligent,
            "uploaded_on": timestamp(fw.uploaded_at),
            "uploaded_by": {"username": fw.uploaded_by.get_username()} if fw.uploaded_by else None,
            "device_count": running.get(fw.version, 0),
        }
        for fw in firmware
    ]


def _firmware(membership, version: int) -> Firmware:
    firmware = (
        Firmware.objects.filter(product_id=membership.product_id, version=version).select_related("uploaded_by").first()
    )
    if firmware is None:
        raise Http404("No such firmware")
    firmware.product = membership.product
    return firmware


@router.get(
    PRODUCT + "/firmware", response={200: list[schemas.FirmwareOut], **error_responses(404)}, summary="List product firmware"
)
def list_firmware(request, product: str):
    """A JSON array, newest version first."""
    return _firmware_list(access.membership_for(request.user, product))


@router.get(
    PRODUCT + "/firmware/{int:version}",
    response={200: schemas.FirmwareOut, **error_responses(404)},
    summary="Get product firmware",
)
def get_firmware(request, product: str, version: int):
    membership = access.membership_for(request.user, product)
    return _firmware_json(membership, [_firmware(membership, version)])[0]


BINARY_RESPONSE = {
    "responses": {
        "200": {
            "description": "The firmware binary.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


@router.get(
    PRODUCT + "/firmware/{int:version}/binary",
    response=error_responses(404),
    summary="Download a firmware binary",
    openapi_extra=BINARY_RESPONSE,
)
def download_firmware(request, product: str, version: int):
    membership = access.membership_for(request.user, product)
    firmware = _firmware(membership, version)
    return binary_response(firmware, filename=f"{membership.product.slug}-v{firmware.version}.bin")


def binary_response(firmware, *, filename: str) -> FileResponse:
    """The firmware's binary as a download (also the device gateway's)."""
    try:
        handle = firmware.binary.open("rb")
    except (FileNotFoundError, ValueError):
        raise ApiError(404, "not_found", f"The binary of v{firmware.version} is missing from storage.") from None
    return FileResponse(handle, content_type="application/octet-stream", as_attachment=True, filename=filename)


# ---------------------------------------------------------------------------------------------
# Changing


UPLOAD_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "version": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "title": {"type": "string", "minLength": 1, "maxLength": 64},
                        "description": {"type": "string"},
                        "binary": {
                            "type": "string",
                            "format": "binary",
                            "description": "Any file part name is accepted.",
                        },
                    },
                    "required": ["version", "title", "binary"],
                }
            }
        },
        "required": True,
    }
}


def _too_large() -> ApiError:
    limit = settings.FIRMWARE_MAX_BYTES
    return ApiError(
        413,
        "payload_too_large",
        f"The binary is larger than the {limit / 1024 / 1024:g} MiB limit.",
        {"binary": [f"Use a binary of at most {limit} bytes."]},
    )


@router.post(
    PRODUCT + "/firmware",
    response={201: schemas.FirmwareOut, **error_responses(403, 404, 413)},
    summary="Upload product firmware",
    openapi_extra=UPLOAD_BODY,
)
def upload_firmware(request, product: str):
    """Multipart: `version`, `title`, `description` and the binary as the single file part."""
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.FIRMWARE_MAX_BYTES + 64 * 1024:
        raise _too_large()
    if (request.content_type or "").lower() != "multipart/form-data":
        raise invalid("binary", "Send a multipart/form-data body with version, title and the binary file.")
    fields = request_body(request)
    try:
        form = schemas.FirmwareUploadForm.model_validate(
            {key: value for key, value in fields.items()}, context={"request": request}
        )
    except PydanticValidationError as error:
        raise NinjaValidationError(
            [{**item, "loc": ("form", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None
    files = list(request.FILES.values())
    if len(files) > 1:
        raise invalid("binary", "Send exactly one file part (the binary).")
    try:
        firmware = services.firmware_upload(
            product=membership.product,
            version=form.version,
            title=form.title,
            description=form.description,
            binary=files[0] if files else None,
            actor=request.user,
        )
    except services.FirmwareTooLarge:
        raise _too_large() from None
    return Status(201, _firmware_json(membership, [_firmware(membership, firmware.version)])[0])


@router.put(
    PRODUCT + "/firmware/release",
    response={200: schemas.FirmwareOut, **error_responses(403, 404)},
    summary="Release product firmware",
)
def release_firmware(request, product: str, payload: schemas.ReleaseIn):
    """`groups`, when present, is the complete list of groups the version is released to;
    `product_default` true/false makes it (or stops it being) the default; absent is unchanged."""
    membership = access.membership_for(request.user, product, write=True)
    firmware = _release_firmware(membership, payload.version, field="version")
    groups = None if payload.groups is None else group_services.groups_resolve(
        membership=membership, names=payload.groups, actor=request.user, create_missing=False
    )
    services.firmware_release(
        firmware=firmware,
        groups=groups,
        product_default=payload.product_default,
        intelligent=payload.intelligent,
        membership=membership,
        actor=request.user,
    )
    membership.product.refresh_from_db(fields=["default_firmware"])
    return _firmware_json(membership, [_firmware(membership, firmware.version)])[0]


@router.put(
    PRODUCT + "/firmware/{int:version}",
    response={200: schemas.FirmwareOut, **error_responses(403, 404)},
    summary="Edit product firmware",
)
def edit_firmware(request, product: str, version: int, payload: schemas.FirmwareEdit):
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    firmware = _firmware(membership, version)
    given = payload.model_fields_set
    if not given:
        raise invalid("body", "Send title and/or description.")
    if "title" in given and payload.title is None:
        raise invalid("title", "Give the firmware a title (it cannot be null).")
    services.firmware_edit(
        firmware=firmware,
        title=payload.title,
        description=(payload.description or "") if "description" in given else None,
        actor=request.user,
    )
    return _firmware_json(membership, [_firmware(membership, version)])[0]


@router.delete(
    PRODUCT + "/firmware/{int:version}",
    response={204: None, **error_responses(403, 404)},
    summary="Delete product firmware",
)
def delete_firmware(request, product: str, version: int):
    """Only a version that was never released can be deleted."""
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    services.firmware_delete(firmware=_firmware(membership, version), actor=request.user)
    return Status(204, None)


def _release_firmware(membership, version: int, *, field: str) -> Firmware:
    firmware = Firmware.objects.filter(product_id=membership.product_id, version=version).first()
    if firmware is None:
        raise invalid(field, f"v{version} is not a firmware version of this product.")
    firmware.product = membership.product
    return firmware


@router.get(
    PRODUCT + "/release_lint", response={200: schemas.LintOut, **error_responses(404)}, summary="Check the releases"
)
def release_lint(request, product: str):
    """*(ours)* Releases that cannot do what they seem to: a group release that decides no device,
    one older than the product default, devices in several released groups, releases to empty
    groups. A member restricted to groups gets the warnings about their groups."""
    membership = access.membership_for(request.user, product)
    warnings = lint.release_lint(product=membership.product, membership=membership)
    return {
        "warnings": [
            {"kind": warning.kind, "message": warning.message, "devices": warning.devices, "groups": list(warning.groups)}
            for warning in warnings
        ]
    }


# ---------------------------------------------------------------------------------------------
# Impact previews


@router.get(
    PRODUCT + "/impact", response={200: schemas.ImpactOut, **error_responses(404)}, summary="Preview the OTA impact of a change"
)
def impact(request, product: str, params: Query[schemas.ImpactQuery]):
    """`action=edit_groups_for_firmware&firmware_version=N[&groups=a,b][&product_default=...]`:
    devices a release call would target for an update (omitting `groups` simulates `[]`).
    *(ours)* `action=edit_device_groups` with `devices=` (or the list filter parameters) and
    `add=`/`remove=`: the same for a batch group edit, plus `by_target_version`."""
    membership = access.membership_for(request.user, product)
    visible = Device.objects.visible_to(membership)
    if params.action == "edit_groups_for_firmware":
        if params.firmware_version is None:
            raise invalid("firmware_version", "This field is required for edit_groups_for_firmware.")
        firmware = _release_firmware(membership, params.firmware_version, field="firmware_version")
        groups = group_services.groups_resolve(
            membership=membership, names=params.groups or [], actor=request.user, create_missing=False
        )
        restricted = membership.restricted_group_ids() is not None
        plan = services.release_plan(
            firmware=firmware, groups=groups, product_default=params.product_default, membership=membership
        )
        result = plan.impact(visible if restricted else None).as_json()
        del result["by_target_version"]
        return {"devices": {"firmware_update": result}}

    if params.devices is not None:
        devices = batch_devices(membership, params.devices, None)
    else:
        devices = device_filter(membership, params).qs
    add_names, remove_names = params.add or [], params.remove or []
    # Groups `add` would create have no release, so they cannot change a target: leave them out.
    add = group_services.groups_resolve(
        membership=membership, names=add_names, actor=request.user, create_missing=True, preview=True, field="add"
    )
    remove = group_services.groups_resolve(
        membership=membership, names=remove_names, actor=request.user, create_missing=False, field="remove"
    )
    result = group_services.devices_edit_groups_impact(devices=devices, add=add, remove=remove).as_json()
    return {"devices": {"firmware_update": result}}
