"""`/v1/products/:product/groups`: device groups, through groups.services."""

from django.http import Http404
from ninja import Query, Router
from ninja.responses import Status

from console import access
from console.api.errors import ApiError, error_responses, invalid
from groups import csv_import, schemas, services, undo
from groups.models import Group

router = Router()
PRODUCT = "/v1/products/{product}"


def group_json(group: Group) -> dict:
    """A group with `released_firmware` loaded (see `_groups`)."""
    return {
        "name": group.name,
        "description": group.description,
        "color": group.color,
        "fw_version": group.released_firmware.version if group.released_firmware_id else None,
        "device_count": group.device_count,
    }


def _groups(membership):
    return (
        Group.objects.visible_to(membership)
        .select_related("released_firmware")
        .order_by("name")
    )


def _group(membership, name: str) -> Group:
    group = _groups(membership).filter(name=name).first()
    if group is None:
        raise Http404("No such group")
    return group


@router.get(PRODUCT + "/groups", response={200: schemas.GroupList, **error_responses(404)}, summary="List device groups")
def list_groups(request, product: str, filters: Query[schemas.GroupListQuery]):
    """The groups you can see, sorted by name; `name` keeps those whose name contains it."""
    membership = access.membership_for(request.user, product)
    groups = _groups(membership)
    if filters.name:
        groups = groups.filter(name__contains=filters.name.lower())
    return {"groups": [group_json(group) for group in groups]}


@router.get(
    PRODUCT + "/groups/{name}", response={200: schemas.GroupEnvelope, **error_responses(404)}, summary="Get a device group"
)
def get_group(request, product: str, name: str):
    """One group, with its released firmware version and device count."""
    membership = access.membership_for(request.user, product)
    return {"group": group_json(_group(membership, name))}


@router.post(
    PRODUCT + "/groups", response={201: schemas.GroupEnvelope, **error_responses(403, 404)}, summary="Create a device group"
)
def create_group(request, product: str, payload: schemas.GroupCreate):
    """A new group: the name is unique in the product; a color is chosen when none is given."""
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    group = services.group_create(
        product=membership.product,
        name=payload.name,
        description=payload.description or "",
        color=payload.color or "",
        actor=request.user,
    )
    return Status(201, {"group": group_json(_group(membership, group.name))})


@router.put(
    PRODUCT + "/groups/{name}",
    response={200: schemas.GroupEnvelope, **error_responses(403, 404)},
    summary="Edit a device group",
)
def edit_group(request, product: str, name: str, payload: schemas.GroupEdit):
    """Rename the group and/or change its description or color (at least one of them)."""
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    group = _group(membership, name)
    if payload.name is None and payload.description is None and payload.color is None:
        raise ApiError(
            400,
            "invalid_request",
            "Send at least one of name, description and color.",
            {"body": ["Send at least one of name, description and color."]},
        )
    group = services.group_edit(
        group=group, name=payload.name, description=payload.description, color=payload.color, actor=request.user
    )
    return {"group": group_json(_group(membership, group.name))}


@router.delete(
    PRODUCT + "/groups/{name}", response={204: None, **error_responses(403, 404)}, summary="Delete a device group"
)
def delete_group(request, product: str, name: str):
    """Its devices leave the group, and its firmware release goes with it."""
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    services.group_delete(group=_group(membership, name), actor=request.user)
    return Status(204, None)


# ---------------------------------------------------------------------------------------------
# Undo of a batch group edit *(ours)*


@router.get(
    PRODUCT + "/events/{event_id}/undo",
    response={200: schemas.UndoPreviewOut, **error_responses(403, 404)},
    summary="Preview the undo of a batch group edit",
)
def preview_undo(request, product: str, event_id: int):
    """*(ours)* What undoing the audit event (`device.groups`, `device.groups_import` or
    `device.groups_undo`) would revert now: only memberships still as the edit left them."""
    membership = access.membership_for(request.user, product, write=True)
    event = undo.undoable_event(membership, event_id)
    return undo.edit_undo_preview(membership=membership, event=event).as_json()


@router.post(
    PRODUCT + "/events/{event_id}/undo",
    response={200: schemas.UndoOut, **error_responses(403, 404)},
    summary="Undo a batch group edit",
)
def apply_undo(request, product: str, event_id: int):
    """*(ours)* Revert the edit's memberships that are still as it left it, in one transaction,
    recorded as a `device.groups_undo` event (itself undoable). 400 when nothing is left to undo."""
    membership = access.membership_for(request.user, product, write=True)
    event = undo.undoable_event(membership, event_id)
    return {"ok": True, "updated": undo.edit_undo(membership=membership, event=event, actor=request.user)}


# ---------------------------------------------------------------------------------------------
# CSV import of memberships *(ours)*

IMPORT_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "CSV: device ID or serial number, then group names."},
                        "mode": {"type": "string", "enum": list(csv_import.MODES), "default": "add"},
                        "dry_run": {"type": "boolean", "default": False},
                        "skip_invalid": {"type": "boolean", "default": False},
                    },
                    "required": ["file"],
                }
            }
        },
        "required": True,
    }
}


def _flag(request, name: str) -> bool:
    value = request.POST.get(name, "false").strip().lower()
    if value not in ("true", "false", "1", "0", "on", ""):
        raise invalid(name, "Use true or false.")
    return value in ("true", "1", "on")


@router.post(
    PRODUCT + "/memberships/import",
    response={200: schemas.ImportPlanOut, **error_responses(403, 404)},
    summary="Import group memberships from CSV",
    openapi_extra=IMPORT_BODY,
)
def import_memberships(request, product: str):
    """*(ours)* A multipart `file` (CSV: device ID or serial number in the first column, group
    names in the others, several per cell separated by `;`), `mode` `add` (add to these groups) or
    `replace` (exactly these groups), and `dry_run=true` for the plan without changing anything.
    Bad rows and unknown devices refuse the import (400, by line) unless `skip_invalid=true`."""
    membership = access.membership_for(request.user, product, write=True)
    text = csv_import.read_upload(request.FILES.get("file"))
    mode = request.POST.get("mode") or "add"
    if _flag(request, "dry_run"):
        plan = csv_import.memberships_import_plan(membership=membership, text=text, mode=mode)
    else:
        plan = csv_import.memberships_import(
            membership=membership, text=text, mode=mode, skip_invalid=_flag(request, "skip_invalid"),
            file_name=request.FILES["file"].name, actor=request.user,
        )
    return plan.as_json()
