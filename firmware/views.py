"""Console views of the firmware app."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from console import access


@login_required
def firmware_list(request, product):
    membership = access.membership_for(request.user, product)
    return render(request, "console/product_home.html", {"membership": membership, "product": membership.product})
