"""The request and response shapes of `/v1/products/:product/groups` (API.md, "Device groups")."""

from ninja import Schema
from pydantic import ConfigDict, Field

from console.api.parsing import RequestSchema
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
