"""The request and response shapes of `/v1/products/:product/rollouts` (API.md, "Rollouts")."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema

from console.api.parsing import Bool, Int, NameList, NullableInt, NullableNumber, RequestSchema, Timestamp
from devices.schemas import MAX_PAGE, MAX_PER_PAGE
from firmware.models import Rollout
from firmware.services import rollouts

MAX_MINUTES = rollouts.MAX_MINUTES
MAX_DEVICES = 10_000_000
STATUSES = tuple(Rollout.Status.values)

STAGE_EXAMPLE = {
    "number": 2,
    "percent": 10.0,
    "groups": [],
    "targeted": 1180,
    "offered": 1042,
    "updated": 990,
    "failed": 7,
    "timed_out": 2,
    "pending": 183,
    "failure_rate": 0.67,
    "gate": {"max_failure_percent": 5.0, "min_updated": 10, "soak_minutes": 60},
    "opened_at": "2026-03-02T10:15:00.000Z",
}
ROLLOUT_EXAMPLE = {
    "id": 9,
    "status": "running",
    "version": 12,
    "groups": ["europe"],
    "sets_default": False,
    "current_stage": 2,
    "stages": [
        {**STAGE_EXAMPLE, "number": 1, "percent": None, "groups": ["prerelease"], "targeted": 24, "offered": 24,
         "updated": 24, "failed": 0, "timed_out": 0, "pending": 0, "failure_rate": 0.0,
         "opened_at": "2026-03-02T09:15:00.000Z"},
        STAGE_EXAMPLE,
        {**STAGE_EXAMPLE, "number": 3, "percent": 100.0, "targeted": 10620, "offered": 0, "updated": 0, "failed": 0,
         "timed_out": 0, "pending": 10620, "failure_rate": 0.0, "opened_at": None},
    ],
    "halted_reason": None,
    "timeout_minutes": 60,
    "starts_at": None,
    "created_by": "developer",
    "created_at": "2026-03-02T09:15:00.000Z",
    "started_at": "2026-03-02T09:15:00.000Z",
    "ended_at": None,
}


# ---------------------------------------------------------------------------------------------
# Answers


class Gate(Schema):
    max_failure_percent: float = Field(description="The stage halts the rollout when its failure rate passes this.")
    min_updated: int = Field(description="Devices that must have updated (all of the stage's, if fewer) before the next stage opens.")
    soak_minutes: int = Field(description="How long the stage stays open, at least, before the next one opens.")


class StageOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [STAGE_EXAMPLE]})

    number: int = Field(description="1 for the first stage.")
    percent: float | None = Field(description="Cumulative share of the targeted devices this stage opens; null for a stage of named groups.")
    groups: list[str] = Field(description="The stage's named groups (those you may read); [] for a share.")
    targeted: int = Field(description="Devices of the stage the release targeted when the rollout started.")
    offered: int
    updated: int
    failed: int = Field(description="Failed updates, the timed out ones included.")
    timed_out: int = Field(description="Offered devices that did not report the version within the timeout.")
    pending: int = Field(description="Targeted devices neither updated nor failed.")
    failure_rate: float = Field(description="The gate's failure rate in percent, over the devices offered since the last resume.")
    gate: Gate
    opened_at: Timestamp


class RolloutOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [ROLLOUT_EXAMPLE]})

    id: int
    status: Literal[STATUSES] = Field(description="scheduled, running, paused and halted are live (at most one per product).")
    version: int
    groups: list[str] = Field(description="The groups it releases the version to (those you may read).")
    sets_default: bool = Field(description="Whether the version becomes the product default.")
    current_stage: int | None = Field(description="The number of the latest stage opened; null before the start.")
    stages: list[StageOut]
    halted_reason: str | None = Field(description="Why it halted, in numbers, while halted.")
    timeout_minutes: int = Field(description="An offered device that has not reported the version this long after its offer has failed.")
    starts_at: Timestamp
    created_by: str | None
    created_at: Timestamp
    started_at: Timestamp
    ended_at: Timestamp


class RolloutEnvelope(Schema):
    rollout: RolloutOut


class PageMeta(Schema):
    page: int
    per_page: int
    total_pages: int
    total: int


class RolloutList(Schema):
    rollouts: list[RolloutOut]
    meta: PageMeta


class VersionCount(Schema):
    version: int | None = Field(description="The version the devices ran before (null: unknown).")
    total: int


class ActionImpactOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "action": "abort", "allowed": True, "devices": 52, "by_version": [],
        "summary": "52 devices offered v12 and not yet updated go back to their previous target, and 10,620 more"
                   " will not be offered it; the 990 that updated stay on v12 until the next release.",
    }]})

    action: Literal[rollouts.ACTIONS]
    allowed: bool = Field(description="Whether the rollout's state allows the action now.")
    summary: str = Field(description="What the action would do, in a sentence with the numbers (or why it is not allowed).")
    devices: int = Field(description="The devices whose target the action changes.")
    by_version: list[VersionCount] = Field(description="rollback: the devices targeted back, by the version they ran before.")


# ---------------------------------------------------------------------------------------------
# Requests


class ListQuery(Schema):
    status: Literal[STATUSES] | None = Field(None, description="Only rollouts in this status.")
    page: int = Field(1, ge=1, le=MAX_PAGE)
    per_page: int = Field(25, ge=1, le=MAX_PER_PAGE)


class ImpactQuery(Schema):
    action: Literal[rollouts.ACTIONS]


class StageIn(RequestSchema):
    """One stage as an object: `percent` or `groups`, and what overrides the rollout's gate."""

    percent: NullableNumber = Field(None, gt=0, le=100, description="Cumulative share of the targeted devices; the last stage is 100.")
    groups: NameList | None = Field(None, max_length=100, description="Named groups, before any share (a canary group).")
    soak_minutes: NullableInt = Field(None, ge=0, le=MAX_MINUTES)
    max_failure_percent: NullableNumber = Field(None, ge=0, le=100)
    min_updated: NullableInt = Field(None, ge=0, le=MAX_DEVICES)


def _start(value: Any):
    """`starts_at`: an ISO 8601 date and time (UTC when it names no offset)."""
    if value is None or value == "":
        return None
    message = "Enter the start as a date and time, such as 2026-12-24T08:00Z."
    if not isinstance(value, str):
        raise ValueError(message)
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(message)
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


STAGES_SCHEMA = {
    "description": "The stages, in order: text such as `\"prerelease, 1%, 10%, 100%\"` (group names first, then"
    " cumulative shares ending at 100%), the same as a list of strings, or a list of stage objects, each"
    " of which may override the rollout's soak time and gate.",
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 2000},
        {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 100}, "minItems": 1, "maxItems": 20},
        {"type": "array", "items": StageIn.model_json_schema(), "minItems": 1, "maxItems": 20},
    ],
}


class RolloutCreate(RequestSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"version": 12, "groups": ["europe"], "stages": "prerelease, 10%, 100%", "soak_minutes": 60,
         "max_failure_percent": 5, "min_updated": 10, "timeout_minutes": 60},
        {"version": 12, "product_default": True, "stages": [
            {"groups": ["prerelease"], "soak_minutes": 30}, {"percent": 1}, {"percent": 10},
            {"percent": 100, "max_failure_percent": 2}], "starts_at": "2026-12-24T08:00:00Z"},
    ]})

    version: Int = Field(ge=1, le=65535, description="The version to release.")
    groups: NameList | None = Field(
        None, max_length=1000,
        description="As in the release call: the complete list of groups the version is released to (absent: unchanged)."
        " A staged release only adds: it cannot also unrelease.",
    )
    product_default: Bool | None = Field(None, description="true: the version becomes the product default, stage by stage.")
    # Validated item by item in the endpoint (rollouts_api.stage_entries), to name the stage at fault.
    stages: Annotated[Any, WithJsonSchema(STAGES_SCHEMA)]
    soak_minutes: NullableInt = Field(None, ge=0, le=MAX_MINUTES, description="Each stage's minimum soak time (default 60).")
    max_failure_percent: NullableNumber = Field(None, ge=0, le=100, description="Each stage's gate: the highest failure rate in percent (default 5).")
    min_updated: NullableInt = Field(None, ge=0, le=MAX_DEVICES, description="Each stage's gate: devices updated before the next stage opens (default 10).")
    timeout_minutes: NullableInt = Field(None, ge=1, le=MAX_MINUTES, description="An offered device that has not reported the version within this has failed (default 60).")
    starts_at: Annotated[datetime | None, BeforeValidator(_start)] = Field(
        None, description="A scheduled start, ISO 8601 (absent: now)."
    )


class ResumeIn(RequestSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"acknowledge": True}]})

    acknowledge: Bool = Field(False, description="Acknowledge the failures so far; required after failures. The gate then counts only new ones.")
