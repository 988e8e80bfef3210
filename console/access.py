"""The one place that decides whether a user may see or change a product's objects."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from console.models import Membership


def membership_for(user, product_ref, *, write: bool = False, manage_team: bool = False) -> Membership:
    """The user's membership of the product named by slug or integer id.

    Outsiders (and anonymous users) get 404, never a hint that the product exists; members
    whose role cannot do the requested kind of change get 403.
    """
    if not user.is_authenticated:
        raise Http404("No such product")
    ref = str(product_ref)
    lookup = {"product_id": int(ref)} if ref.isascii() and ref.isdigit() else {"product__slug": ref}
    membership = Membership.objects.select_related("product", "user").filter(user=user, **lookup).first()
    if membership is None:
        raise Http404("No such product")
    if write and not membership.can_write:
        raise PermissionDenied("Your role in this product cannot make changes.")
    if manage_team and not membership.can_manage_team:
        raise PermissionDenied("Only the product's Owner and Administrators manage the team.")
    return membership
