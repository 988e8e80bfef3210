"""The request and response shapes of `/v1/products/:product/firmware` and `/impact` (API.md,
"Product firmware")."""

from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from console.api.parsing import Bool, Int, NameList, RequestSchema, Timestamp
from devices.schemas import DeviceFilterParams, GroupNames


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
    current: bool = Field(description="Particle's older name for `product_default`.")
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


class LintWarning(Schema):
    kind: Literal["never_wins", "older_than_default", "several_groups", "empty_group"]
    message: str = Field(description="A sentence for people, with the numbers.")
    devices: int
    groups: list[str]


class LintOut(Schema):
    warnings: list[LintWarning]
