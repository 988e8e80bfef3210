"""`/v1/products/:product/devices`: product devices, through the devices and groups services and
the firmware device services; the devices a call chooses come from `devices.selection`."""

from django.db import transaction
from ninja import Query, Router
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status
from pydantic import ValidationError as PydanticValidationError

from console import access
from console.api.errors import ApiError, error_responses, invalid
from console.api.parsing import request_body, timestamp
from devices import schemas, selection, services
from devices.models import Device
from firmware import services as firmware_services
from groups import services as group_services
from groups.models import Group

router = Router()
PRODUCT = "/v1/products/{product}"

MAX_IMPORT_FILE_BYTES = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Reading devices


def device_json(device: Device, groups: list[str], membership) -> dict:
    """A device annotated by `with_target()`, as the member may read it."""
    return {
        "id": device.device_id,
        "name": device.name,
        "serial_number": device.serial_number,
        "product_id": device.product_id,
        "platform_id": device.platform_id,
        "online": device.online,
        "last_handshake_at": timestamp(device.last_handshake_at),
        "last_heard": timestamp(device.last_handshake_at),
        "groups": groups,
        "firmware_version": device.firmware_version,
        "desired_firmware_version": device.desired_firmware_version,
        "targeted_firmware_release_version": device.target_version,
        "development": device.development,
        "quarantined": False,
        "denied": False,
        "notes": device.notes,
        "firmware_target_reason": {
            "rule": device.target_rule, "group": access.shown_group_name(membership, device.target_group, hidden=None)
        },
    }


def _group_names(devices, membership) -> dict[int, list[str]]:
    tags = Group.objects.visible_to(membership).by_device(devices)
    return {pk: [group.name for group in groups] for pk, groups in tags.items()}


@router.get(
    PRODUCT + "/devices", response={200: schemas.DeviceList, **error_responses(404)}, summary="List product devices"
)
def list_devices(request, product: str, params: Query[schemas.DeviceListQuery]):
    membership = access.membership_for(request.user, product)
    per_page = params.perPage or params.per_page or 25
    matching = selection.device_filter(membership, params, sort=selection.sort_key(params.sortAttr, params.sortDir))
    devices, total = matching.qs, matching.count()
    offset = (params.page - 1) * per_page
    rows = list(devices.with_target()[offset : offset + per_page]) if offset < total else []
    names = _group_names(rows, membership) if rows else {}
    return {
        "devices": [device_json(device, names.get(device.pk, []), membership) for device in rows],
        "customers": [],
        "meta": {"page": params.page, "per_page": per_page, "total_pages": -(-total // per_page), "total": total},
    }


@router.get(
    PRODUCT + "/devices/{device_id}",
    response={200: schemas.DeviceOut, **error_responses(404)},
    summary="Get a product device",
)
def get_device(request, product: str, device_id: str):
    membership = access.membership_for(request.user, product)
    device = Device.objects.visible_to(membership).with_target().get_by_device_id(device_id)
    return device_json(device, _group_names([device], membership).get(device.pk, []), membership)


# ---------------------------------------------------------------------------------------------
# Changing devices

NOT_NULL = {"name": "text", "notes": "text", "development": "true or false", "groups": "a list of group names"}


@router.put(
    PRODUCT + "/devices/{device_id}",
    response={200: schemas.DeviceEditOut, **error_responses(403, 404)},
    summary="Update a product device",
    exclude_unset=True,
)
@transaction.atomic
def update_device(request, product: str, device_id: str, payload: schemas.DeviceEdit):
    """Any of: `groups` (replaces them; unknown names are created), `desired_firmware_version`
    (lock; null unlocks; `flash` is accepted), `development`, `name`, `notes`. One transaction."""
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.visible_to(membership).get_by_device_id(device_id)
    device.product = membership.product
    given = payload.model_fields_set - {"flash"}
    if not given:
        raise ApiError(
            400,
            "invalid_request",
            "Send at least one of groups, desired_firmware_version, development, name and notes.",
            {"body": ["Nothing to change."]},
        )
    for field, expected in NOT_NULL.items():
        if field in given and getattr(payload, field) is None:
            raise invalid(field, f"Use {expected}; null is only for desired_firmware_version.")

    user = request.user
    if "name" in given or "notes" in given:
        services.device_edit(device=device, name=payload.name, notes=payload.notes, actor=user)
    if "development" in given:
        firmware_services.device_development_set(device=device, development=payload.development, actor=user)
    if "desired_firmware_version" in given:
        firmware_services.device_lock(device=device, version=payload.desired_firmware_version, actor=user)
    answer_groups = None
    if "groups" in given:
        groups = group_services.device_groups_replace(
            membership=membership, device=device, names=payload.groups, actor=user
        )
        answer_groups = sorted(group.name for group in groups)

    device.refresh_from_db(fields=["updated_at", "name", "notes", "development", "desired_firmware_version"])
    answer = {"id": device.device_id, "updated_at": timestamp(device.updated_at)}
    for field in ("desired_firmware_version", "development", "name", "notes"):
        if field in given:
            answer[field] = getattr(device, field)
    if answer_groups is not None:
        answer["groups"] = answer_groups
    return answer


@router.put(
    PRODUCT + "/devices",
    response={200: schemas.BatchOut, **error_responses(403, 404)},
    summary="Edit groups of many devices",
)
@transaction.atomic
def devices_edit_groups(request, product: str, payload: schemas.BatchEdit):
    """"Edit groups": `devices` (at most 1,000 IDs; any unknown ID rejects the call) or *(ours)*
    `filter` (every matching device, no limit). Names in `metadata.add` that do not exist are
    created; names in `metadata.remove` must exist. Set-based: the queries do not grow with the
    devices."""
    membership = access.membership_for(request.user, product, write=True)
    devices = selection.batch_devices(membership, payload.devices, payload.filter)
    add = group_services.groups_resolve(
        membership=membership, names=payload.metadata.add, actor=request.user, create_missing=True,
        field="metadata.add",
    )
    remove = group_services.groups_resolve(
        membership=membership, names=payload.metadata.remove, actor=request.user, create_missing=False,
        field="metadata.remove",
    )
    updated = group_services.devices_edit_groups(
        product=membership.product, devices=devices, add=add, remove=remove, actor=request.user
    )
    return {"ok": True, "updated": updated}


IMPORT_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": schemas.DeviceImport.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "One device ID per line."}
                    },
                    "required": ["file"],
                }
            },
        },
        "required": True,
    }
}


def _import_ids(request) -> list:
    if (request.content_type or "").lower() == "multipart/form-data":
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_IMPORT_FILE_BYTES + 64 * 1024:
            raise ApiError(
                413, "payload_too_large", f"Send at most {MAX_IMPORT_FILE_BYTES // 1024} KiB of device IDs per call."
            )
        upload = next(iter(request.FILES.values()), None)
    else:
        upload = None
    if upload is not None:
        if upload.size > MAX_IMPORT_FILE_BYTES:
            raise ApiError(
                413, "payload_too_large", f"Send at most {MAX_IMPORT_FILE_BYTES // 1024} KiB of device IDs per call."
            )
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise invalid("file", "The file must be UTF-8 text with one device ID per line.") from None
        ids = [line.split(",")[0].strip() for line in text.splitlines() if line.strip()]
        if len(ids) > schemas.MAX_IMPORT_IDS:
            raise invalid("file", f"Import at most {schemas.MAX_IMPORT_IDS} device IDs per call.")
        return ids or _missing_ids("file")
    # JSON, or the same fields form-encoded.
    body = request_body(request)
    try:
        payload = schemas.DeviceImport.model_validate(body if body is not None else {}, context={"request": request})
    except PydanticValidationError as error:
        raise NinjaValidationError(
            [{**item, "loc": ("body", "payload", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None
    if payload.ids is not None and payload.id is not None:
        raise invalid("ids", "Send ids or id, not both.")
    if payload.ids is not None:
        return payload.ids
    if payload.id is not None:
        return [payload.id]
    return _missing_ids()


def _missing_ids(field: str = "ids"):
    raise invalid(field, "Send ids (a list of device IDs), id, or a file with one device ID per line.")


@router.post(
    PRODUCT + "/devices",
    response={200: schemas.ImportOut, **error_responses(403, 404, 413)},
    summary="Import devices into the product",
    openapi_extra=IMPORT_BODY,
)
def import_devices(request, product: str):
    """`{"ids": [...]}`, `{"id": "..."}` or a multipart `file` with one ID per line. IDs are 24 hex
    characters (upper case is accepted and stored lower case)."""
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    ids = _import_ids(request)
    return services.devices_import(product=membership.product, ids=ids, actor=request.user)


@router.delete(
    PRODUCT + "/devices/{device_id}",
    response={204: None, **error_responses(403, 404)},
    summary="Remove a device from the product",
)
def remove_device(request, product: str, device_id: str):
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    device = Device.objects.visible_to(membership).get_by_device_id(device_id)
    device.product = membership.product
    services.device_remove(device=device, actor=request.user)
    return Status(204, None)
