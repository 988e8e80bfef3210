"""`/v1/products/:product/devices`: product devices, through the devices, groups and firmware
services, filtered by the console's own DeviceFilter."""

from collections import defaultdict
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, QueryDict
from ninja import Query, Router, Schema
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status
from pydantic import BeforeValidator, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from console.api_conventions import (
    ApiError,
    Bool,
    Int,
    NameList,
    NullableInt,
    RequestSchema,
    Timestamp,
    error_responses,
    invalid,
    product_membership,
    refuse_restricted,
    request_body,
    timestamp,
)
from devices import services
from devices.filters import DeviceFilter
from devices.models import Device, normalize_device_id
from firmware import services as firmware_services
from groups import services as group_services
from groups.models import Group, GroupMembership

router = Router()
PRODUCT = "/v1/products/{product}"

MAX_BATCH_IDS = 1000
MAX_IMPORT_IDS = 10_000
MAX_IMPORT_FILE_BYTES = 1024 * 1024
MAX_PER_PAGE = 100
MAX_PAGE = 10_000_000

# ---------------------------------------------------------------------------------------------
# Schemas


class TargetReason(Schema):
    rule: Literal["development", "locked", "group", "product_default", "none"]
    group: str | None


class DeviceOut(Schema):
    id: str
    name: str
    serial_number: str
    product_id: int
    platform_id: int
    online: bool
    last_handshake_at: Timestamp
    last_heard: Timestamp
    groups: list[str]
    firmware_version: int | None
    desired_firmware_version: int | None
    targeted_firmware_release_version: int | None
    development: bool
    quarantined: bool
    denied: bool
    notes: str
    firmware_target_reason: TargetReason


class PageMeta(Schema):
    page: int
    per_page: int
    total_pages: int
    total: int


class DeviceList(Schema):
    devices: list[DeviceOut]
    customers: list[dict]
    meta: PageMeta


def _split_commas(value):
    """`groups=a,b` and repeated `groups=a&groups=b` both mean a list of names."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        names = []
        for item in value:
            # Anything but text is left for validation to refuse.
            names.extend(
                (part.strip() for part in item.split(",") if part.strip()) if isinstance(item, str) else [item]
            )
        return names
    return value


GroupNames = Annotated[list[str], BeforeValidator(_split_commas)]


class DeviceFilterParams(Schema):
    """The list query parameters that choose devices (shared by the list, batch and impact)."""

    groups: GroupNames | None = Field(
        None, description="Group names, comma-separated or repeated: devices in any of them."
    )
    groups_match: Literal["any", "all"] | None = Field(
        None, description="*(ours)* `all`: devices in every listed group."
    )
    deviceId: str | None = Field(None, description="Case-insensitive substring of the device ID.")
    deviceName: str | None = Field(None, description="Case-insensitive substring of the name.")
    serialNumber: str | None = Field(None, description="Case-insensitive substring of the serial number.")


class DeviceListQuery(DeviceFilterParams):
    sortAttr: Literal["deviceName", "deviceId", "firmwareVersion", "lastConnection"] | None = None
    sortDir: Literal["asc", "desc"] | None = None
    page: int = Field(1, ge=1, le=MAX_PAGE)
    perPage: int | None = Field(None, ge=1, le=MAX_PER_PAGE)
    per_page: int | None = Field(None, ge=1, le=MAX_PER_PAGE)


class BatchFilter(RequestSchema, DeviceFilterParams):
    pass


class BatchMetadata(RequestSchema):
    add: NameList = Field(default_factory=list, max_length=MAX_BATCH_IDS)
    remove: NameList = Field(default_factory=list, max_length=MAX_BATCH_IDS)


class BatchEdit(RequestSchema):
    action: Literal["groups"]
    devices: NameList | None = Field(None, max_length=MAX_BATCH_IDS, description=f"At most {MAX_BATCH_IDS} device IDs.")
    filter: BatchFilter | None = Field(None, description="*(ours)* Every device matching these list parameters.")
    metadata: BatchMetadata


class BatchOut(Schema):
    ok: bool
    updated: int


class DeviceEdit(RequestSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    groups: NameList | None = Field(None, max_length=MAX_BATCH_IDS, description="Replaces the device's groups.")
    desired_firmware_version: NullableInt = Field(
        None, ge=1, le=65535, description="Lock to this version; null unlocks."
    )
    flash: Bool | None = None
    development: Bool | None = None
    name: str | None = Field(None, max_length=services.NAME_MAX)
    notes: str | None = Field(None, max_length=services.NOTES_MAX)


class DeviceEditOut(Schema):
    id: str
    updated_at: Timestamp
    groups: list[str] | None = None
    desired_firmware_version: int | None = None
    development: bool | None = None
    name: str | None = None
    notes: str | None = None


class DeviceImport(RequestSchema):
    ids: NameList | None = Field(None, max_length=MAX_IMPORT_IDS)
    id: str | None = None


class ImportOut(Schema):
    updated: int
    updatedDeviceIds: list[str]
    existingDeviceIds: list[str]
    invalidDeviceIds: list[str]
    nonmemberDeviceIds: list[str]


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


# ---------------------------------------------------------------------------------------------
# Reading devices

SORT_KEYS = {
    "deviceName": "name",
    "deviceId": "device_id",
    "firmwareVersion": "firmware",
    "lastConnection": "last_handshake",
}
# DeviceFilter's field names, by API parameter.
FILTER_FIELDS = {
    "groups": "groups",
    "groups_match": "groups_match",
    "deviceId": "device_id",
    "deviceName": "name",
    "serialNumber": "serial_number",
}
API_FIELDS = {value: key for key, value in FILTER_FIELDS.items()} | {"sort": "sortAttr"}


def device_filter(
    membership, params: DeviceFilterParams, *, sort: str | None = None, field_prefix: str = ""
) -> DeviceFilter:
    """The console's DeviceFilter for API list parameters; invalid ones (an unknown group) are a 400."""
    data = QueryDict(mutable=True)
    for name in params.groups or []:
        data.appendlist("groups", name)
    for api_name, filter_name in FILTER_FIELDS.items():
        value = getattr(params, api_name)
        if api_name != "groups" and value:
            data[filter_name] = value
    if sort:
        data["sort"] = sort
    devices = DeviceFilter(data, membership=membership)
    if not devices.is_valid():
        fields = {
            f"{field_prefix}{API_FIELDS.get(field, field)}": list(messages)
            for field, messages in devices.errors.items()
        }
        description = " ".join(message for messages in fields.values() for message in messages)
        raise ApiError(400, "invalid_request", description, fields)
    return devices


def _sort_key(attr: str | None, direction: str | None) -> str:
    key = SORT_KEYS[attr or "lastConnection"]
    descending = (direction or "desc") == "desc"
    if key == "last_handshake":  # its unprefixed order already puts the newest first
        return key if descending else f"-{key}"
    return f"-{key}" if descending else key


def _group_names(devices, membership) -> dict[int, list[str]]:
    """Group names of a page of devices, in one query whatever the page size."""
    rows = GroupMembership.objects.filter(device_id__in=[device.pk for device in devices])
    restricted = membership.restricted_group_ids()
    if restricted is not None:
        rows = rows.filter(group_id__in=restricted)
    names = defaultdict(list)
    for device_pk, name in rows.order_by("group__name").values_list("device_id", "group__name"):
        names[device_pk].append(name)
    return names


def device_json(device: Device, groups: list[str]) -> dict:
    """A device annotated by `with_target()`."""
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
        "firmware_target_reason": {"rule": device.target_rule, "group": device.target_group},
    }


def _device(membership, device_id: str, *, with_target: bool = False) -> Device:
    normalized = normalize_device_id(device_id)
    devices = Device.objects.visible_to(membership)
    if with_target:
        devices = devices.with_target()
    device = devices.filter(device_id=normalized).first() if normalized else None
    if device is None:
        raise Http404("No such device")
    device.product = membership.product
    return device


@router.get(PRODUCT + "/devices", response={200: DeviceList, **error_responses(404)}, summary="List product devices")
def list_devices(request, product: str, params: Query[DeviceListQuery]):
    membership = product_membership(request, product)
    per_page = params.perPage or params.per_page or 25
    matching = device_filter(membership, params, sort=_sort_key(params.sortAttr, params.sortDir))
    devices, total = matching.qs, matching.count()
    offset = (params.page - 1) * per_page
    rows = list(devices.with_target()[offset : offset + per_page]) if offset < total else []
    names = _group_names(rows, membership) if rows else {}
    return {
        "devices": [device_json(device, names.get(device.pk, [])) for device in rows],
        "customers": [],
        "meta": {"page": params.page, "per_page": per_page, "total_pages": -(-total // per_page), "total": total},
    }


@router.get(
    PRODUCT + "/devices/{device_id}", response={200: DeviceOut, **error_responses(404)}, summary="Get a product device"
)
def get_device(request, product: str, device_id: str):
    membership = product_membership(request, product)
    device = _device(membership, device_id, with_target=True)
    return device_json(device, _group_names([device], membership).get(device.pk, []))


# ---------------------------------------------------------------------------------------------
# Changing devices


def _visible_groups(membership) -> dict[str, Group]:
    return {group.name: group for group in Group.objects.visible_to(membership)}


def _resolve(membership, names: list[str], *, field: str, actor, create_missing: bool) -> list[Group]:
    """Groups by name. Unknown names are created when allowed (never for restricted members,
    for whom names outside their groups are unknown)."""
    if not names:
        return []
    if membership.restricted_group_ids() is not None:
        visible = _visible_groups(membership)
        unknown = [name for name in dict.fromkeys(names) if name not in visible]
        if unknown:
            raise invalid(field, f"Unknown group: {', '.join(unknown)}.")
        return [visible[name] for name in dict.fromkeys(names)]
    try:
        return group_services.groups_resolve(
            product=membership.product, names=names, actor=actor, create_missing=create_missing
        )
    except ValidationError as error:
        messages = [message for messages in error.message_dict.values() for message in messages]
        raise ApiError(400, "invalid_request", " ".join(messages), {field: messages}) from None


NOT_NULL = {"name": "text", "notes": "text", "development": "true or false", "groups": "a list of group names"}


@router.put(
    PRODUCT + "/devices/{device_id}",
    response={200: DeviceEditOut, **error_responses(403, 404)},
    summary="Update a product device",
    exclude_unset=True,
)
@transaction.atomic
def update_device(request, product: str, device_id: str, payload: DeviceEdit):
    """Any of: `groups` (replaces them; unknown names are created), `desired_firmware_version`
    (lock; null unlocks; `flash` is accepted), `development`, `name`, `notes`. One transaction."""
    membership = product_membership(request, product, write=True)
    device = _device(membership, device_id)
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
        groups = _resolve(membership, payload.groups, field="groups", actor=user, create_missing=True)
        hidden = []
        restricted = membership.restricted_group_ids()
        if restricted is not None:
            # A restricted member replaces only the groups they can see; the others stay.
            hidden = list(Group.objects.filter(memberships__device=device).exclude(id__in=restricted))
        group_services.device_groups_set(device=device, groups=[*groups, *hidden], actor=user)
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
    response={200: BatchOut, **error_responses(403, 404)},
    summary="Add and remove groups of many devices",
)
@transaction.atomic
def batch_edit_devices(request, product: str, payload: BatchEdit):
    """`devices` (at most 1,000 IDs; any unknown ID rejects the call) or *(ours)* `filter`
    (every matching device, no limit). Names in `metadata.add` that do not exist are created;
    names in `metadata.remove` must exist. Set-based: the queries do not grow with the devices."""
    membership = product_membership(request, product, write=True)
    devices = batch_devices(membership, payload.devices, payload.filter)
    add = _resolve(membership, payload.metadata.add, field="metadata.add", actor=request.user, create_missing=True)
    remove = _resolve(
        membership, payload.metadata.remove, field="metadata.remove", actor=request.user, create_missing=False
    )
    updated = group_services.memberships_edit(
        product=membership.product, devices=devices, add=add, remove=remove, actor=request.user
    )
    return {"ok": True, "updated": updated}


def batch_devices(membership, device_ids, filter_params, *, field: str = "devices", filter_field: str = "filter"):
    """The devices a batch call names: listed IDs (all must be visible) or a list filter."""
    if (device_ids is None) == (filter_params is None):
        message = f"Send either {field} (a list of device IDs) or {filter_field} (list parameters), not both."
        if device_ids is None:
            message = f"Send {field} (a list of device IDs) or {filter_field} (list parameters)."
        raise invalid(field, message)
    if filter_params is not None:
        return device_filter(membership, filter_params, field_prefix=f"{filter_field}.").qs
    normalized = {raw: normalize_device_id(raw) for raw in device_ids}
    wanted = [device_id for device_id in normalized.values() if device_id]
    found = set(Device.objects.visible_to(membership).filter(device_id__in=wanted).values_list("device_id", flat=True))
    unknown = [raw for raw, device_id in normalized.items() if device_id not in found]
    if unknown:
        shown = ", ".join(unknown)
        raise ApiError(
            400,
            "invalid_request",
            f"Unknown device IDs (nothing was changed): {shown}.",
            {field: [f"Unknown device ID: {raw}" for raw in unknown]},
        )
    return Device.objects.visible_to(membership).filter(device_id__in=wanted)


IMPORT_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": DeviceImport.model_json_schema()},
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
        if len(ids) > MAX_IMPORT_IDS:
            raise invalid("file", f"Import at most {MAX_IMPORT_IDS} device IDs per call.")
        return ids or _missing_ids("file")
    # JSON, or the same fields form-encoded.
    body = request_body(request)
    try:
        payload = DeviceImport.model_validate(body if body is not None else {}, context={"request": request})
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
    response={200: ImportOut, **error_responses(403, 404, 413)},
    summary="Import devices into the product",
    openapi_extra=IMPORT_BODY,
)
def import_devices(request, product: str):
    """`{"ids": [...]}`, `{"id": "..."}` or a multipart `file` with one ID per line. IDs are 24 hex
    characters (upper case is accepted and stored lower case)."""
    membership = product_membership(request, product, write=True)
    refuse_restricted(membership, "import devices")
    ids = _import_ids(request)
    return services.devices_import(product=membership.product, ids=ids, actor=request.user)


@router.delete(
    PRODUCT + "/devices/{device_id}",
    response={204: None, **error_responses(403, 404)},
    summary="Remove a device from the product",
)
def remove_device(request, product: str, device_id: str):
    membership = product_membership(request, product, write=True)
    refuse_restricted(membership, "remove devices")
    services.device_remove(device=_device(membership, device_id), actor=request.user)
    return Status(204, None)


@router.post(
    PRODUCT + "/devices/{device_id}/handshake",
    response={200: HandshakeOut, **error_responses(403, 404)},
    summary="(ours) A device starts a session",
)
def handshake(request, product: str, device_id: str, payload: HandshakeIn):
    """Called by the device-cloud gateway: records the running version, marks the device online,
    settles a pending update and answers the update to install, if any."""
    membership = product_membership(request, product, write=True)
    device = _device(membership, device_id)
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
    membership = product_membership(request, product, write=True)
    device = _device(membership, device_id)
    firmware_services.device_update_failed(device=device, version=payload.version, reason=payload.reason)
    return {"ok": True}
