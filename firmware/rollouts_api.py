"""*(ours)* `/v1/products/:product/rollouts`: staged releases, through firmware.services.rollouts.

Any member reads; Developer and above start and act on rollouts, with the restrictions of
releases (a member restricted to groups stays within them). Outsiders get 404, and so does a
rollout of another product."""

from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404
from ninja import Query, Router
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status
from pydantic import ValidationError as PydanticValidationError

from console import access
from console.api.errors import ApiError, error_responses, invalid
from console.api.parsing import request_body, timestamp
from firmware import api as firmware_api
from firmware import rollout_schemas as schemas
from firmware import services
from firmware.models import Rollout, RolloutStage
from firmware.services import rollouts
from groups import services as group_services

router = Router()
ROLLOUTS = "/v1/products/{product}/rollouts"
ROLLOUT = ROLLOUTS + "/{int:rollout_id}"


# ---------------------------------------------------------------------------------------------
# Reading


def _rollouts(membership):
    """The product's rollouts with what their JSON reads, in four queries whatever their number
    and the size of the fleet (the figures are the stages' counters)."""
    stages = RolloutStage.objects.order_by("index").prefetch_related("groups")
    return (
        Rollout.objects.filter(product_id=membership.product_id)
        .select_related("firmware", "created_by")
        .prefetch_related("release_groups", Prefetch("stages", queryset=stages))
        .order_by("-created_at", "-id")
    )


def _rollout(membership, rollout_id: int) -> Rollout:
    rollout = _rollouts(membership).filter(pk=rollout_id).first()
    if rollout is None:
        raise Http404("No such rollout")
    rollout.product = membership.product
    return rollout


def _minutes(duration) -> int:
    return int(duration.total_seconds() // 60)


def rollout_json(rollout: Rollout, membership) -> dict:
    visible = membership.restricted_group_names()

    def names(groups) -> list[str]:
        return sorted(group.name for group in groups if visible is None or group.name in visible)

    return {
        "id": rollout.pk,
        "status": rollout.status,
        "version": rollout.firmware.version,
        "groups": names(rollout.release_groups.all()),
        "sets_default": rollout.sets_default,
        "current_stage": rollout.current_stage + 1 if rollout.current_stage >= 0 else None,
        "stages": [
            {
                "number": stage.number,
                "percent": stage.share_percent,
                "groups": names(stage.groups.all()),
                "targeted": stage.targeted,
                "offered": stage.offered,
                "updated": stage.updated,
                "failed": stage.failed,
                "timed_out": stage.timed_out,
                "pending": stage.pending,
                "failure_rate": round(stage.failure_rate(), 2),
                "gate": {
                    "max_failure_percent": float(stage.max_failure_percent),
                    "min_updated": stage.min_updated,
                    "soak_minutes": _minutes(stage.soak),
                },
                "opened_at": timestamp(stage.opened_at),
            }
            for stage in rollout.stages.all()
        ],
        "halted_reason": rollout.halted_reason or None,
        "timeout_minutes": _minutes(rollout.timeout),
        "starts_at": timestamp(rollout.starts_at),
        "created_by": rollout.created_by.get_username() if rollout.created_by else None,
        "created_at": timestamp(rollout.created_at),
        "started_at": timestamp(rollout.started_at),
        "ended_at": timestamp(rollout.ended_at),
    }


@router.get(ROLLOUTS, response={200: schemas.RolloutList, **error_responses(404)}, summary="List rollouts")
def list_rollouts(request, product: str, params: Query[schemas.ListQuery]):
    """*(ours)* The product's staged releases, newest first, each with its stages' figures;
    `status` keeps one status; `page` and `per_page` (default 25, at most 100) page through them."""
    membership = access.membership_for(request.user, product)
    found = _rollouts(membership)
    if params.status:
        found = found.filter(status=params.status)
    total = found.count()
    offset = (params.page - 1) * params.per_page
    rows = list(found[offset : offset + params.per_page]) if offset < total else []
    return {
        "rollouts": [rollout_json(rollout, membership) for rollout in rows],
        "meta": {"page": params.page, "per_page": params.per_page, "total_pages": -(-total // params.per_page),
                 "total": total},
    }


@router.get(ROLLOUT, response={200: schemas.RolloutEnvelope, **error_responses(404)}, summary="Get a rollout")
def get_rollout(request, product: str, rollout_id: int):
    """*(ours)* One rollout: its status, version, groups, and each stage's figures (targeted,
    offered, updated, failed, timed out, pending, the failure rate) and gate."""
    membership = access.membership_for(request.user, product)
    return {"rollout": rollout_json(_rollout(membership, rollout_id), membership)}


@router.get(
    ROLLOUT + "/impact", response={200: schemas.ActionImpactOut, **error_responses(404)},
    summary="Preview a rollout action",
)
def rollout_impact(request, product: str, rollout_id: int, params: Query[schemas.ImpactQuery]):
    """*(ours)* What `action` (pause, resume, advance, abort, rollback) would do now, in numbers,
    before doing it; `allowed` is false, with the reason, when the rollout's state does not
    allow it."""
    membership = access.membership_for(request.user, product)
    return rollouts.action_impact(_rollout(membership, rollout_id), params.action).as_json()


# ---------------------------------------------------------------------------------------------
# Starting


def stage_entries(request, stages):
    """The body's `stages` as `rollouts.rollout_spec` takes them: text, or a list of stage
    objects each checked against StageIn (a list of strings is the text's entries)."""
    if isinstance(stages, str):
        return stages
    if not isinstance(stages, list) or not stages:
        raise invalid("stages", "List the stages, for example \"1%, 10%, 100%\" or [{\"percent\": 10}, {\"percent\": 100}].")
    if all(isinstance(entry, str) for entry in stages):
        if any("," in entry for entry in stages):
            raise invalid("stages", "Give one stage per list item (\"10%\"), or all of them as one text.")
        return ", ".join(stages)
    entries = []
    for position, entry in enumerate(stages, start=1):
        if not isinstance(entry, dict):
            raise invalid("stages", f"Stage {position}: give every stage as an object ({{\"percent\": 10}} or"
                                    " {\"groups\": [\"prerelease\"]}), or every stage as text.")
        try:
            checked = schemas.StageIn.model_validate(entry, context={"request": request})
        except PydanticValidationError as error:
            messages = []
            for item in error.errors(include_url=False):
                name = ".".join(str(part) for part in item["loc"] if not isinstance(part, int)) or "stage"
                text = "Unknown field." if item["type"] == "extra_forbidden" else item["msg"].removeprefix("Value error, ")
                messages.append(f"Stage {position}, {name}: {text}")
            raise ApiError(400, "invalid_request", " ".join(messages), {"stages": messages}) from None
        entries.append(checked.model_dump(exclude_none=True))
    return entries


@router.post(ROLLOUTS, response={201: schemas.RolloutEnvelope, **error_responses(403, 404)}, summary="Start a staged release")
def create_rollout(request, product: str, payload: schemas.RolloutCreate):
    """*(ours)* Release a version stage by stage: `version`, `groups` and `product_default` as in
    `PUT .../firmware/release`, and the plan: `stages` with the rollout-wide `soak_minutes`,
    `max_failure_percent`, `min_updated`, the `timeout_minutes` of an offered device, and an
    optional `starts_at`. The stages' `targeted` figures are the impact preview's count by stage.
    Refused while another rollout of the product is live."""
    membership = access.membership_for(request.user, product, write=True)
    stages = stage_entries(request, payload.stages)
    firmware = firmware_api._release_firmware(membership, payload.version, field="version")
    groups = None if payload.groups is None else group_services.groups_resolve(
        membership=membership, names=payload.groups, actor=request.user, create_missing=False
    )
    spec = rollouts.rollout_spec(
        product=membership.product, stages=stages, soak_minutes=payload.soak_minutes,
        max_failure_percent=payload.max_failure_percent, min_updated=payload.min_updated,
        timeout_minutes=payload.timeout_minutes, starts_at=payload.starts_at, membership=membership,
    )
    if spec is None:
        raise invalid("stages", "List the stages, for example \"1%, 10%, 100%\" (to release all at once, use PUT .../firmware/release).")
    with transaction.atomic():
        services.firmware_release(
            firmware=firmware, groups=groups, product_default=payload.product_default, membership=membership,
            rollout=spec, actor=request.user,
        )
        started = Rollout.objects.filter(product_id=membership.product_id, firmware=firmware).latest("id")
    return Status(201, {"rollout": rollout_json(_rollout(membership, started.pk), membership)})


# ---------------------------------------------------------------------------------------------
# Actions


def _act(request, product: str, rollout_id: int, action: str, *, body=None) -> dict:
    """Carry out the action for a member who may release (the restrictions of releases are the
    service's); `body` reads the request's body once access is settled."""
    membership = access.membership_for(request.user, product, write=True)
    acknowledge = body(request).acknowledge if body else False
    rollout = _rollout(membership, rollout_id)
    rollouts.rollout_act(rollout=rollout, action=action, actor=request.user, acknowledge=acknowledge,
                         membership=membership)
    return {"rollout": rollout_json(_rollout(membership, rollout_id), membership)}


ACTION_RESPONSES = {200: schemas.RolloutEnvelope, **error_responses(403, 404)}


@router.post(ROLLOUT + "/pause", response=ACTION_RESPONSES, summary="Pause a rollout")
def pause_rollout(request, product: str, rollout_id: int):
    """*(ours)* No more devices are offered the version; those offered it keep it as their target.
    A running or scheduled rollout only (else 400 saying why); see `.../impact?action=pause` first."""
    return _act(request, product, rollout_id, "pause")


def _resume_body(request) -> schemas.ResumeIn:
    """The optional body of a resume (none at all means no acknowledgement)."""
    body = request_body(request)
    try:
        return schemas.ResumeIn.model_validate(body if body is not None else {}, context={"request": request})
    except PydanticValidationError as error:
        raise NinjaValidationError(
            [{**item, "loc": ("body", "payload", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None


RESUME_BODY = {
    "requestBody": {
        "content": {
            media: {"schema": schemas.ResumeIn.model_json_schema()}
            for media in ("application/json", "application/x-www-form-urlencoded")
        },
        "required": False,
    }
}


@router.post(ROLLOUT + "/resume", response=ACTION_RESPONSES, summary="Resume a rollout", openapi_extra=RESUME_BODY)
def resume_rollout(request, product: str, rollout_id: int):
    """*(ours)* A paused or halted rollout continues in its stage. After failures, send
    `{"acknowledge": true}`: the gate then counts only new failures (without it, 400 on
    `acknowledge`)."""
    return _act(request, product, rollout_id, "resume", body=_resume_body)


@router.post(ROLLOUT + "/advance", response=ACTION_RESPONSES, summary="Advance a rollout")
def advance_rollout(request, product: str, rollout_id: int):
    """*(ours)* Open the next stage now, without waiting for the soak time or the gate (the last
    stage: the rollout completes); a scheduled rollout starts now."""
    return _act(request, product, rollout_id, "advance")


@router.post(ROLLOUT + "/abort", response=ACTION_RESPONSES, summary="Abort a rollout")
def abort_rollout(request, product: str, rollout_id: int):
    """*(ours)* Stop a live rollout: devices offered the version and not yet updated go back to
    their previous target; those that updated stay on it until the next release."""
    return _act(request, product, rollout_id, "abort")


@router.post(ROLLOUT + "/rollback", response=ACTION_RESPONSES, summary="Roll back a rollout")
def rollback_rollout(request, product: str, rollout_id: int):
    """*(ours)* Devices that updated in the rollout get the version they ran before as their
    target; a live rollout ends, and a completed one gives its groups and the default back the
    releases they had."""
    return _act(request, product, rollout_id, "rollback")
