"""`/v1/products/:product/groups`: device groups, through groups.services."""

from django.http import Http404
from ninja import Query, Router
from ninja.responses import Status

from console import access
from console.api.errors import ApiError, error_responses
from groups import schemas, services, undo
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
