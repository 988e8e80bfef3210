from console.models import Membership
from groups.models import GROUP_NAME_PATTERN


def products(request):
    """The signed-in user's products, for the product switcher, and the group-name pattern the
    group picker checks names it creates against."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "group_name_pattern": GROUP_NAME_PATTERN,
        "my_products": lambda: list(
            Membership.objects.for_user(user).select_related("product").order_by("product__name")
        )
    }
