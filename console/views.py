from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from console import access
from console.models import Membership
from devices.models import Device
from groups.models import Group


@login_required
def home(request):
    memberships = list(Membership.objects.for_user(request.user).select_related("product").order_by("product__name"))
    if len(memberships) == 1:
        return redirect("product_home", product=memberships[0].product.slug)
    return render(request, "console/home.html", {"memberships": memberships})


@login_required
def product_home(request, product):
    membership = access.membership_for(request.user, product)
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "home",
        "device_count": Device.objects.visible_to(membership).count(),
        "online_count": Device.objects.visible_to(membership).filter(online=True).count(),
        "group_count": Group.objects.visible_to(membership).count(),
    }
    return render(request, "console/product_home.html", context)
