"""The request and response shapes of `/v1/products/:product/devices` (API.md, "Product devices")."""

from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field

from console.api.parsing import Bool, NameList, NullableInt, RequestSchema, Timestamp
from devices import services

MAX_BATCH_IDS = 1000
MAX_IMPORT_IDS = 10_000
MAX_PER_PAGE = 100
MAX_PAGE = 10_000_000


class TargetReason(Schema):
    rule: Literal["development", "locked", "group", "product_default", "none"]
    group: str | None = Field(
        description="The group whose release decided the target (rule `group`); null otherwise, and for a "
        "member restricted to groups when that group is outside their access."
    )


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
    connected: bool = Field(description="Particle's name for `online`.")
    imei: str
    iccid: str
    firmware_target_reason: TargetReason


class DeviceDetail(DeviceOut):
    """`GET /v1/devices/:id`: Particle adds what the device's firmware exposes, which Fleet
    Console does not know (null)."""

    functions: list[str] | None = None
    variables: dict[str, str] | None = None


class ReachableDevicesQuery(Schema):
    page: int = Field(1, ge=1, le=MAX_PAGE)
    per_page: int = Field(MAX_PER_PAGE, ge=1, le=MAX_PER_PAGE)


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
    paste: str | None = Field(
        None, description="*(ours)* Device IDs or serial numbers, separated by commas, spaces or new lines "
        "(at most 1,000): only these devices."
    )


class DeviceListQuery(DeviceFilterParams):
    quarantined: bool | None = Field(
        None, description="`true`: the devices waiting in quarantine instead of the product's devices."
    )
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
    signal: Bool | Literal[0, 1, "0", "1"] | None = Field(
        None, description="Make the device shout rainbows: needs a live connection to it, which Fleet Console does not have, so it is refused."
    )
    firmware_updates_forced: Bool | None = Field(
        None, description="Accepted: devices here never turn updates off, so they always take them."
    )
    # Cloud flash (multipart, with the binary as the file part `file`): the binary must be a
    # firmware version of the product; the device must be a development device.
    file_type: Literal["binary"] | None = Field(None, description="Only binaries are flashed; nothing is compiled.")
    latest: Bool | None = Field(None, description="Compiler option: ignored for a binary.")
    build_target_version: str | None = Field(None, max_length=32, description="Compiler option: ignored for a binary.")


class DeviceEditOut(Schema):
    id: str
    updated_at: Timestamp
    groups: list[str] | None = None
    desired_firmware_version: int | None = None
    development: bool | None = None
    name: str | None = None
    notes: str | None = None
    firmware_updates_forced: bool | None = None
    flash_version: int | None = Field(None, description="*(ours)* The version a flash offers at the next handshake.")
    status: str | None = Field(None, description="After a flash: `Update pending`.")


class DeviceRemove(RequestSchema):
    deny: Bool | None = Field(None, description="Also refuse the device from now on (Particle's deny).")


class DeviceImport(RequestSchema):
    ids: NameList | None = Field(None, max_length=MAX_IMPORT_IDS)
    id: str | None = None
    issue_keys: Bool = Field(False, description="*(ours)* Issue a device key to each device the import adds.")


class ImportOut(Schema):
    updated: int
    updatedDeviceIds: list[str]
    existingDeviceIds: list[str]
    invalidDeviceIds: list[str]
    nonmemberDeviceIds: list[str]
    device_keys: dict[str, str] | None = Field(
        None,
        description="*(ours)* With `issue_keys`: device ID -> its new device key, for the devices added. "
        "Shown only in this answer; store them now.",
    )


class DeviceKeyOut(Schema):
    id: str
    device_key: str = Field(description="The new device key: shown only in this answer, stored only as a hash.")
