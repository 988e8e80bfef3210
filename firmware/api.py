"""`/v1/products/:product/firmware` and `/impact`: product firmware, through firmware.services."""

import os
from typing import Literal

from django.conf import settings
from django.http import FileResponse, Http404
from ninja import Query, Router, Schema
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status
from pydantic import ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from console.api_conventions import (
    ApiError,
    Bool,
    Int,
    NameList,
    RequestSchema,
    Timestamp,
    error_responses,
    invalid,
    product_membership,
    refuse_restricted,
    request_body,
    timestamp,
)
from devices.schemas import DeviceFilterParams, GroupNames
from devices.selection import batch_devices, device_filter
from devices.models import Device
from firmware import services
from firmware.models import Firmware
from groups import services as group_services
from groups.models import Group

router = Router()
PRODUCT = "/v1/products/{product}"

# ---------------------------------------------------------------------------------------------
# Schemas


class Uploader(Schema):
    username: str


class FirmwareOut(Schema):
    version: int
    title: str
    description: str
    name: str
    size: int
    sha256: str
    product_default: bool
    groups: list[str]
    intelligent: bool
    uploaded_on: Timestamp
    uploaded_by: Uploader | None
    device_count: int


class FirmwareUploadForm(RequestSchema):
    version: Int = Field(ge=1, le=65535)
    title: str = Field(min_length=1, max_length=64)
    description: str = ""


class FirmwareEdit(RequestSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    title: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = None


class ReleaseIn(RequestSchema):
    version: Int = Field(ge=1, le=65535)
    product_default: Bool | None = None
    groups: NameList | None = Field(None, max_length=1000, description="The complete list of groups; [] unreleases.")
    intelligent: Bool | None = None


class ImpactQuery(DeviceFilterParams):
    action: Literal["edit_groups_for_firmware", "edit_device_groups"]
    firmware_version: int | None = Field(None, ge=1, le=65535)
    product_default: bool | None = None
    devices: GroupNames | None = Field(None, description="*(ours)* edit_device_groups: device IDs, comma-separated.")
    add: GroupNames | None = Field(None, description="*(ours)* edit_device_groups: groups to add.")
    remove: GroupNames | None = Field(None, description="*(ours)* edit_device_groups: groups to remove.")


class VersionCount(Schema):
    version: int | None
    total: int


class GroupEditUpdates(Schema):
    total: int
    by_version: list[VersionCount]
    by_target_version: list[VersionCount]


class ReleaseUpdates(Schema):
    total: int
    by_version: list[VersionCount]


class ImpactDevices(Schema):
    firmware_update: GroupEditUpdates | ReleaseUpdates


class ImpactOut(Schema):
    devices: ImpactDevices


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
    PRODUCT + "/firmware", response={200: list[FirmwareOut], **error_responses(404)}, summary="List product firmware"
)
def list_firmware(request, product: str):
    """A JSON array, newest version first."""
    return _firmware_list(product_membership(request, product))


@router.get(
    PRODUCT + "/firmware/{int:version}",
    response={200: FirmwareOut, **error_responses(404)},
    summary="Get product firmware",
)
def get_firmware(request, product: str, version: int):
    membership = product_membership(request, product)
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
    membership = product_membership(request, product)
    firmware = _firmware(membership, version)
    try:
        handle = firmware.binary.open("rb")
    except (FileNotFoundError, ValueError):
        raise ApiError(404, "not_found", f"The binary of v{version} is missing from storage.") from None
    return FileResponse(
        handle,
        content_type="application/octet-stream",
        as_attachment=True,
        filename=f"{membership.product.slug}-v{firmware.version}.bin",
    )


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
    response={201: FirmwareOut, **error_responses(403, 404, 413)},
    summary="Upload product firmware",
    openapi_extra=UPLOAD_BODY,
)
def upload_firmware(request, product: str):
    """Multipart: `version`, `title`, `description` and the binary as the single file part."""
    membership = product_membership(request, product, write=True)
    refuse_restricted(membership, "upload firmware")
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.FIRMWARE_MAX_BYTES + 64 * 1024:
        raise _too_large()
    if (request.content_type or "").lower() != "multipart/form-data":
        raise invalid("binary", "Send a multipart/form-data body with version, title and the binary file.")
    fields = request_body(request)
    try:
        form = FirmwareUploadForm.model_validate(
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
    response={200: FirmwareOut, **error_responses(403, 404)},
    summary="Release product firmware",
)
def release_firmware(request, product: str, payload: ReleaseIn):
    """`groups`, when present, is the complete list of groups the version is released to;
    `product_default` true/false makes it (or stops it being) the default; absent is unchanged."""
    membership = product_membership(request, product, write=True)
    if payload.product_default is not None:
        refuse_restricted(membership, "change the product default")
    firmware = _release_firmware(membership, payload.version, field="version")
    groups = None if payload.groups is None else _named_groups(membership, payload.groups, field="groups")
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
    response={200: FirmwareOut, **error_responses(403, 404)},
    summary="Edit product firmware",
)
def edit_firmware(request, product: str, version: int, payload: FirmwareEdit):
    membership = product_membership(request, product, write=True)
    refuse_restricted(membership, "edit firmware")
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
    membership = product_membership(request, product, write=True)
    refuse_restricted(membership, "delete firmware")
    services.firmware_delete(firmware=_firmware(membership, version), actor=request.user)
    return Status(204, None)


def _release_firmware(membership, version: int, *, field: str) -> Firmware:
    firmware = Firmware.objects.filter(product_id=membership.product_id, version=version).first()
    if firmware is None:
        raise invalid(field, f"v{version} is not a firmware version of this product.")
    firmware.product = membership.product
    return firmware


def _named_groups(membership, names: list[str], *, field: str) -> list[Group]:
    visible = {group.name: group for group in Group.objects.visible_to(membership).filter(name__in=names)}
    unknown = [name for name in dict.fromkeys(names) if name not in visible]
    if unknown:
        raise invalid(field, f"Unknown group: {', '.join(unknown)}.")
    return [visible[name] for name in dict.fromkeys(names)]


# ---------------------------------------------------------------------------------------------
# Impact previews


@router.get(
    PRODUCT + "/impact", response={200: ImpactOut, **error_responses(404)}, summary="Preview the OTA impact of a change"
)
def impact(request, product: str, params: Query[ImpactQuery]):
    """`action=edit_groups_for_firmware&firmware_version=N[&groups=a,b][&product_default=...]`:
    devices a release call would target for an update (omitting `groups` simulates `[]`).
    *(ours)* `action=edit_device_groups` with `devices=` (or the list filter parameters) and
    `add=`/`remove=`: the same for a batch group edit, plus `by_target_version`."""
    membership = product_membership(request, product)
    visible = Device.objects.visible_to(membership)
    if params.action == "edit_groups_for_firmware":
        if params.firmware_version is None:
            raise invalid("firmware_version", "This field is required for edit_groups_for_firmware.")
        firmware = _release_firmware(membership, params.firmware_version, field="firmware_version")
        groups = _named_groups(membership, params.groups or [], field="groups")
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
    # Groups `add` would create have no release, so they cannot change a target: skip them.
    add = [group for group in _existing_groups(membership, add_names, field="add") if group is not None]
    remove = _named_groups(membership, remove_names, field="remove")
    result = group_services.devices_edit_groups_impact(devices=devices, add=add, remove=remove).as_json()
    return {"devices": {"firmware_update": result}}


def _existing_groups(membership, names: list[str], *, field: str) -> list[Group | None]:
    if membership.restricted_group_ids() is not None:
        return _named_groups(membership, names, field=field)
    found = {group.name: group for group in Group.objects.filter(product_id=membership.product_id, name__in=names)}
    return [found.get(name) for name in dict.fromkeys(names)]
