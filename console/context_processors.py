from console.models import Membership


def products(request):
    """The signed-in user's products, for the product switcher."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "my_products": lambda: list(
            Membership.objects.for_user(user).select_related("product").order_by("product__name")
        )
    }
