"""The request and response shapes of `/v1/products/:product/groups` (API.md, "Device groups")."""

from ninja import Schema
from pydantic import ConfigDict, Field

from console.api.parsing import RequestSchema
from groups import undo
from groups.models import COLOR_PATTERN, GROUP_NAME_PATTERN


class GroupOut(Schema):
    name: str
    description: str
    color: str
    fw_version: int | None = None
    device_count: int


class GroupEnvelope(Schema):
    group: GroupOut


class GroupList(Schema):
    groups: list[GroupOut]


class GroupListQuery(Schema):
    name: str | None = Field(None, description="Only groups whose name contains this.")


class GroupCreate(RequestSchema):
    name: str = Field(pattern=GROUP_NAME_PATTERN, description="Lowercase letters, digits, - and _; unique in the product.")
    description: str | None = Field(None, max_length=255)
    color: str | None = Field(None, pattern=COLOR_PATTERN, description="`#rrggbb`; a palette color when absent.")


class GroupEdit(RequestSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: str | None = Field(None, pattern=GROUP_NAME_PATTERN, description="A new name (rename).")
    description: str | None = Field(None, max_length=255)
    color: str | None = Field(None, pattern=COLOR_PATTERN)


# Undo of a batch group edit *(ours)*


class GroupDevices(Schema):
    group: str
    devices: int


class KeptChange(Schema):
    device: str = Field(description="Device ID; empty when the device was removed since.")
    group: str = Field(description="Group name; empty when the group was deleted since.")
    joined: bool = Field(description="Whether the edit added the device to the group (else it removed it).")
    why: str


class UndoPreviewOut(Schema):
    event_id: int
    leave: list[GroupDevices] = Field(description="Devices that would leave each group (the edit added them).")
    rejoin: list[GroupDevices] = Field(description="Devices that would join each group again (the edit removed them).")
    kept: list[KeptChange] = Field(description=f"Up to {undo.KEPT_SHOWN} changes left alone, and why.")
    kept_count: int
    firmware_update: dict = Field(description="Devices the undo would target for an OTA update, shaped like "
                                              "`firmware_update` of `GET /impact?action=edit_device_groups`.")
    undone_by: list[int] = Field(description="Earlier undo events of this edit.")


class UndoOut(Schema):
    ok: bool
    updated: int


# CSV import of memberships *(ours)*


class ImportPlanOut(Schema):
    mode: str
    rows: int
    problems: list[dict] = Field(description="Bad rows: `{line, message}`.")
    problem_count: int
    devices_found: int
    not_found: list[dict] = Field(description="`{line, device}` of the devices not found.")
    not_found_count: int
    groups_to_create: list[str]
    by_group: list[dict] = Field(description="`{group, added, removed}` memberships per group.")
    memberships_added: int
    memberships_removed: int
    firmware_update: dict = Field(description="Shaped like `firmware_update` of `GET /impact?action=edit_device_groups`.")
    applied: bool
    updated: int = Field(description="Devices whose groups changed (0 for a dry run).")
