"""`/v1/products/:product/devices`: product devices, through the devices and groups services and
the firmware device services; the devices a call chooses come from `devices.selection`."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from ninja import Query, Router
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status
from pydantic import ValidationError as PydanticValidationError

from console import access
from console.api.errors import ApiError, OkOut, error_responses, from_service_error, invalid
from console.api.parsing import form_files, request_body, timestamp
from console.models import Membership
from devices import export, schemas, selection, services
from devices.models import Device, QuarantinedDevice, normalize_device_id
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
        "connected": device.online,
        "imei": device.imei,
        "iccid": device.iccid,
        "firmware_target_reason": {
            "rule": device.target_rule, "group": access.shown_group_name(membership, device.target_group, hidden=None)
        },
    }


def quarantined_json(entry: QuarantinedDevice) -> dict:
    """A device waiting in quarantine (or denied), in the device object's shape: it is in no
    group, runs nothing the product knows of and is targeted for nothing."""
    return {
        "id": entry.device_id,
        "name": "",
        "serial_number": entry.serial_number,
        "product_id": entry.product_id,
        "platform_id": entry.platform_id,
        "online": False,
        "last_handshake_at": None,
        "last_heard": timestamp(entry.last_contact_at),
        "groups": [],
        "firmware_version": None,
        "desired_firmware_version": None,
        "targeted_firmware_release_version": None,
        "development": False,
        "quarantined": entry.denied_at is None,
        "denied": entry.denied_at is not None,
        "notes": "",
        "connected": False,
        "imei": entry.imei,
        "iccid": entry.iccid,
        "firmware_target_reason": {"rule": "none", "group": None},
    }


def _quarantine_entry(membership, device_id: str) -> QuarantinedDevice:
    """A device of the product's quarantine (waiting or denied), for members who see the whole
    product; 404 otherwise, like any device they cannot see."""
    normalized = normalize_device_id(device_id)
    entry = None
    if normalized and membership.restricted_group_ids() is None:
        entry = QuarantinedDevice.objects.filter(product_id=membership.product_id, device_id=normalized).first()
    if entry is None:
        raise Http404("No such device")
    return entry


def _group_names(devices, membership) -> dict[int, list[str]]:
    tags = Group.objects.visible_to(membership).by_device(devices)
    return {pk: [group.name for group in groups] for pk, groups in tags.items()}


@router.get(
    PRODUCT + "/devices", response={200: schemas.DeviceList, **error_responses(404)}, summary="List product devices"
)
def list_devices(request, product: str, params: Query[schemas.DeviceListQuery]):
    """The product's devices, filtered, sorted and paginated; `quarantined=true` lists the
    devices waiting in quarantine instead."""
    membership = access.membership_for(request.user, product)
    per_page = params.perPage or params.per_page or 25
    if params.quarantined:
        return _list_quarantined(membership, params, per_page)
    matching = selection.device_filter(membership, params, sort=selection.sort_key(params.sortAttr, params.sortDir))
    total = matching.count()
    devices = matching.page_qs(total)
    offset = (params.page - 1) * per_page
    rows = list(devices.with_target()[offset : offset + per_page]) if offset < total else []
    names = _group_names(rows, membership) if rows else {}
    return {
        "devices": [device_json(device, names.get(device.pk, []), membership) for device in rows],
        "customers": [],
        "meta": {"page": params.page, "per_page": per_page, "total_pages": -(-total // per_page), "total": total},
    }


def _list_quarantined(membership, params, per_page: int) -> dict:
    entries = QuarantinedDevice.objects.none()
    # Quarantined devices are in no group: a member restricted to groups sees none of them.
    if membership.restricted_group_ids() is None and not params.groups:
        entries = QuarantinedDevice.objects.waiting().filter(product_id=membership.product_id)
        if params.deviceId:
            entries = entries.filter(device_id__icontains=params.deviceId)
        if params.serialNumber:
            entries = entries.filter(serial_number__icontains=params.serialNumber)
        if params.deviceName:
            entries = entries.none()  # they have no name yet
    total = entries.count()
    offset = (params.page - 1) * per_page
    rows = list(entries[offset : offset + per_page]) if offset < total else []
    return {
        "devices": [quarantined_json(entry) for entry in rows],
        "customers": [],
        "meta": {"page": params.page, "per_page": per_page, "total_pages": -(-total // per_page), "total": total},
    }


@router.get(
    PRODUCT + "/devices.csv",
    response={200: None, **error_responses(404)},
    summary="Export product devices as CSV",
    openapi_extra={"responses": {"200": {"description": "CSV: ID, name, serial, groups, running, target, why.",
                                         "content": {"text/csv": {"schema": {"type": "string"}}}}}},
)
def export_devices(request, product: str, params: Query[schemas.DeviceListQuery]):
    """*(ours)* Every device matching the list parameters (no pages), streamed as CSV in the
    list's order: device ID, name, serial number, groups (space-separated), running version,
    target version and why it is the target."""
    membership = access.membership_for(request.user, product)
    matching = selection.device_filter(membership, params, sort=selection.sort_key(params.sortAttr, params.sortDir))
    return export.devices_csv_response(matching.qs, membership)


@router.get(
    PRODUCT + "/devices/{device_id}",
    response={200: schemas.DeviceOut, **error_responses(404)},
    summary="Get a product device",
)
def get_device(request, product: str, device_id: str):
    """One of the product's devices, or one waiting in quarantine (`quarantined: true`) or denied."""
    membership = access.membership_for(request.user, product)
    try:
        device = Device.objects.visible_to(membership).with_target().get_by_device_id(device_id)
    except Http404:
        return quarantined_json(_quarantine_entry(membership, device_id))
    return device_json(device, _group_names([device], membership).get(device.pk, []), membership)


# ---------------------------------------------------------------------------------------------
# Changing devices

NOT_NULL = {"name": "text", "notes": "text", "development": "true or false", "groups": "a list of group names"}
# Fields that only shape a flash (or a lock's `flash`): on their own they change nothing.
FLASH_OPTIONS = {"flash", "file_type", "latest", "build_target_version"}
EDITS = "groups, desired_firmware_version, development, name, notes, or a binary to flash as the file part `file`"


def _flash_binary(request, given: set):
    """The binary a cloud flash sends (the multipart file part `file`), or None."""
    files = form_files(request)
    if not files:
        if given & {"file_type", "latest", "build_target_version"}:
            raise invalid("file", "Send the binary to flash as a multipart file part named file.")
        return None
    names = list(files.keys())
    if len(names) > 1 or len(files.getlist(names[0])) > 1:
        raise invalid(
            "file", "Send one binary as the file part file: Fleet Console flashes firmware binaries and compiles no source."
        )
    return files[names[0]]


FLASH_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "description": "Cloud flash: the binary, a firmware version of the product, as the file part `file`.",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "file_type": {"type": "string", "enum": ["binary"]},
                        "latest": {"type": "string", "enum": ["true", "false"]},
                        "build_target_version": {"type": "string", "maxLength": 32},
                    },
                    "required": ["file"],
                }
            }
        }
    }
}


@router.put(
    PRODUCT + "/devices/{device_id}",
    response={200: schemas.DeviceEditOut, **error_responses(403, 404)},
    summary="Update a product device",
    exclude_unset=True,
    openapi_extra=FLASH_BODY,
)
@transaction.atomic
def update_device(request, product: str, device_id: str, payload: schemas.DeviceEdit):
    """Any of: `groups` (replaces them; unknown names are created), `desired_firmware_version`
    (lock; null unlocks; `flash` is accepted), `development`, `name`, `notes`, and Particle's
    cloud flash: a multipart body with the binary as the file part `file` (plus `latest` or
    `build_target_version`, ignored for a binary) flashes a development device: the binary must
    be a firmware version of the product, which the device is offered at its next handshake.
    `signal` needs a live connection to the device and is refused. Every check comes before the
    first change, and the call is one transaction: a refusal changes nothing."""
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.visible_to(membership).get_by_device_id(device_id)
    device.product = membership.product
    given = set(payload.model_fields_set)
    binary = _flash_binary(request, given)
    if "signal" in given:
        raise ApiError(
            400,
            "device_not_connected",
            "Signaling (shouting rainbows) needs a live connection to the device, which Fleet Console does not have;"
            " nothing was changed.",
            {"signal": ["The device cannot be reached from here."]},
        )
    if not (given - FLASH_OPTIONS) and binary is None:
        raise ApiError(400, "invalid_request", f"Send at least one of {EDITS}.", {"body": ["Nothing to change."]})
    for field, expected in NOT_NULL.items():
        if field in given and getattr(payload, field) is None:
            raise invalid(field, f"Use {expected}; null is only for desired_firmware_version.")
    firmware = None
    if binary is not None:
        try:
            firmware = services.flash_firmware_for(device=device, binary=binary)
        except ValidationError as error:
            raise from_service_error(error) from None

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
    if firmware is not None:
        services.device_flash(device=device, firmware=firmware, actor=user)

    device.refresh_from_db(fields=["updated_at", "name", "notes", "development", "desired_firmware_version"])
    answer = {"id": device.device_id, "updated_at": timestamp(device.updated_at)}
    for field in ("desired_firmware_version", "development", "name", "notes"):
        if field in given:
            answer[field] = getattr(device, field)
    if answer_groups is not None:
        answer["groups"] = answer_groups
    if "firmware_updates_forced" in given:
        answer["firmware_updates_forced"] = bool(payload.firmware_updates_forced)
    if firmware is not None:
        answer.update(flash_version=firmware.version, status="Update pending")
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
                        "file": {"type": "string", "format": "binary", "description": "One device ID per line."},
                        "issue_keys": {"type": "boolean", "description": "*(ours)* Issue device keys."},
                    },
                    "required": ["file"],
                }
            },
        },
        "required": True,
    }
}


def _validated_body(request, schema):
    """The JSON or form body checked against `schema`, for endpoints that also take other
    bodies (a multipart file, none at all) and so cannot declare it; a 400 names each field."""
    body = request_body(request)
    try:
        return schema.model_validate(body if body is not None else {}, context={"request": request})
    except PydanticValidationError as error:
        raise NinjaValidationError(
            [{**item, "loc": ("body", "payload", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None


def _import_ids(request) -> tuple[list, bool]:
    """The IDs to import, and whether keys were asked for."""
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
        issue_keys = request.POST.get("issue_keys", "").strip().lower() in ("true", "1")
        return (ids, issue_keys) if ids else _missing_ids("file")
    # JSON, or the same fields form-encoded.
    payload = _validated_body(request, schemas.DeviceImport)
    if payload.ids is not None and payload.id is not None:
        raise invalid("ids", "Send ids or id, not both.")
    if payload.ids is not None:
        return payload.ids, payload.issue_keys
    if payload.id is not None:
        return [payload.id], payload.issue_keys
    return _missing_ids()


def _missing_ids(field: str = "ids"):
    raise invalid(field, "Send ids (a list of device IDs), id, or a file with one device ID per line.")


@router.post(
    PRODUCT + "/devices",
    response={200: schemas.ImportOut, **error_responses(403, 404, 413)},
    summary="Import devices into the product",
    openapi_extra=IMPORT_BODY,
    exclude_none=True,
)
def import_devices(request, product: str):
    """`{"ids": [...]}`, `{"id": "..."}` or a multipart `file` with one ID per line. IDs are 24 hex
    characters (upper case is accepted and stored lower case). *(ours)* `"issue_keys": true` issues
    a device key to each device added and answers them once, in `device_keys`."""
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    ids, issue_keys = _import_ids(request)
    return services.devices_import(product=membership.product, ids=ids, actor=request.user, issue_keys=issue_keys)


@router.post(
    PRODUCT + "/devices/{device_id}/key",
    response={201: schemas.DeviceKeyOut, **error_responses(403, 404)},
    summary="(ours) Issue or rotate a device key",
)
def issue_device_key(request, product: str, device_id: str):
    """Issues the device a new device key, which it uses to authenticate to the device gateway
    (`/v1/device/...`, HTTP Basic: device ID and key). A previous key stops working at once.
    The key is in this answer only; the server keeps just a keyed hash of it. Developer and above."""
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.visible_to(membership).get_by_device_id(device_id)
    device.product = membership.product
    raw = services.device_key_issue(device=device, actor=request.user)
    return Status(201, {"id": device.device_id, "device_key": raw})


REMOVE_BODY = {
    "requestBody": {
        "content": {
            media: {"schema": schemas.DeviceRemove.model_json_schema()}
            for media in ("application/json", "application/x-www-form-urlencoded")
        },
        "required": False,
    },
    "parameters": [
        {"name": "deny", "in": "query", "required": False, "schema": {"type": "boolean"},
         "description": "Also refuse the device from now on (Particle's deny); may be sent in the body instead."}
    ],
}


def _deny(request) -> bool:
    payload = _validated_body(request, schemas.DeviceRemove)
    if payload.deny is not None:
        return payload.deny
    query = request.GET.get("deny", "").lower()
    if query not in ("", "true", "false", "1", "0"):
        raise invalid("deny", "Use true or false.")
    return query in ("true", "1")


@router.delete(
    PRODUCT + "/devices/{device_id}",
    response={204: None, **error_responses(403, 404)},
    summary="Remove a device from the product",
    openapi_extra=REMOVE_BODY,
)
@transaction.atomic
def remove_device(request, product: str, device_id: str):
    """Removes one of the product's devices, or a device waiting in quarantine. With `deny`
    (Particle's "deny a quarantined device"), the product also refuses the device from now on."""
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    deny = _deny(request)
    try:
        device = Device.objects.visible_to(membership).get_by_device_id(device_id)
    except Http404:
        entry = _quarantine_entry(membership, device_id)
        if deny:
            services.quarantine_deny(product=membership.product, device_ids=[entry.device_id], actor=request.user)
        else:
            services.quarantine_dismiss(product=membership.product, device_ids=[entry.device_id], actor=request.user)
        return Status(204, None)
    device.product = membership.product
    services.device_remove(device=device, actor=request.user, deny=deny)
    return Status(204, None)


@router.delete(
    PRODUCT + "/devices/{device_id}/owner",
    response={200: OkOut, **error_responses(403, 404)},
    summary="Unclaim a product device",
)
def unclaim_device(request, product: str, device_id: str):
    """Particle's "unclaim product device". Devices here are never claimed by a user, so there is
    no owner to remove: the device is left as it is."""
    membership = access.membership_for(request.user, product, write=True)
    Device.objects.visible_to(membership).get_by_device_id(device_id)
    return {"ok": True}


# ---------------------------------------------------------------------------------------------
# The devices a user reaches across their products (`particle list`)


def _reachable(request):
    memberships = list(Membership.objects.for_user(request.user).select_related("product"))
    return memberships, Device.objects.reachable_by(memberships)


def _reachable_json(memberships, devices: list[Device]) -> list[dict]:
    by_product = {membership.product_id: membership for membership in memberships}
    names: dict[int, list[str]] = {}
    for product_id in {device.product_id for device in devices}:
        names.update(_group_names([d for d in devices if d.product_id == product_id], by_product[product_id]))
    return [device_json(device, names.get(device.pk, []), by_product[device.product_id]) for device in devices]


@router.get("/v1/devices", response={200: list[schemas.DeviceOut], **error_responses()}, summary="List your devices")
def list_reachable_devices(request, params: Query[schemas.ReachableDevicesQuery]):
    """A JSON array (Particle's device list) of the devices you can see across your products,
    most recently heard from first; `page` and `per_page` (at most 100) page through them."""
    memberships, devices = _reachable(request)
    offset = (params.page - 1) * params.per_page
    rows = list(devices.with_target()[offset : offset + params.per_page])
    return _reachable_json(memberships, rows)


@router.get(
    "/v1/devices/{device_id}", response={200: schemas.DeviceDetail, **error_responses(404)}, summary="Get a device"
)
def get_reachable_device(request, device_id: str):
    """One device of any of your products. `functions` and `variables` (what its firmware
    exposes) are null: Fleet Console has no live connection to devices."""
    memberships, devices = _reachable(request)
    device = devices.with_target().get_by_device_id(device_id)
    return {**_reachable_json(memberships, [device])[0], "functions": None, "variables": None}
