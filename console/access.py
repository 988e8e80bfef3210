"""The one place that decides whether a user may see or change a product's objects."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from console.models import Membership

OUTSIDE_ACCESS = "a group outside your access"


def membership_for(user, product_ref, *, write: bool = False, product_wide: bool = False,
                   manage_team: bool = False) -> Membership:
    """The user's membership of the product named by slug or integer id.

    Outsiders (and anonymous users) get 404, never a hint that the product exists; members
    whose role cannot do the requested kind of change get 403.

    `product_wide` marks changes that reach beyond any one group (creating, renaming or deleting
    groups; uploading, editing or deleting firmware; importing or removing devices; the product
    default): a member restricted to groups may not make them. Within their groups they may tag
    devices, lock them, mark them for development and release firmware to those groups.
    """
    if not user.is_authenticated:
        raise Http404("No such product")
    ref = str(product_ref)
    if ref.isdigit() and not (ref.isascii() and int(ref) < 2**63):
        raise Http404("No such product")  # digits no id column can hold cannot name a product
    lookup = {"product_id": int(ref)} if ref.isdigit() else {"product__slug": ref}
    membership = Membership.objects.select_related("product", "user").filter(user=user, **lookup).first()
    if membership is None:
        raise Http404("No such product")
    if write and not membership.can_write:
        raise PermissionDenied("Your role in this product cannot make changes.")
    if product_wide and membership.restricted_group_ids() is not None:
        raise PermissionDenied("Your access to this product is limited to some groups, so you cannot change the whole product. Ask an Administrator.")
    if manage_team and not membership.can_manage_team:
        raise PermissionDenied("Only the product's Owner and Administrators manage the team.")
    return membership


def shown_group_name(membership: Membership, name: str | None, *, hidden: str | None = OUTSIDE_ACCESS) -> str | None:
    """A group's name as this member may read it. A member restricted to groups reads the names
    of their own groups only; any other group is `hidden` ("a group outside your access", or
    None where a name field must not hold prose). None stays None."""
    visible = membership.restricted_group_names()
    if name is None or visible is None or name in visible:
        return name
    return hidden


def membership_for_webhooks(user, product_ref) -> Membership:
    """The membership of someone who may manage the product's webhooks (add, delete, send a test,
    read the deliveries): Owners and Administrators, who always see the whole product. Outsiders
    get 404, other members 403."""
    membership = membership_for(user, product_ref)
    if not membership.can_manage_team:
        raise PermissionDenied("Only the product's Owner and Administrators manage webhooks.")
    return membership
