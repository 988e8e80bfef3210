from console.access import OUTSIDE_ACCESS
from console.models import Membership
from groups.models import GROUP_NAME_PATTERN


def products(request):
    """The signed-in user's products (the product switcher), the group-name pattern the group
    picker checks new names against, and how a group outside a member's access is named."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "group_name_pattern": GROUP_NAME_PATTERN,
        "outside_access": OUTSIDE_ACCESS,
        "my_products": lambda: list(
            Membership.objects.for_user(user).select_related("product").order_by("product__name")
        )
    }
