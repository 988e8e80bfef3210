"""Console views of the groups app: the groups page and the New Group, edit and delete dialogs."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from console import access, htmx
from groups import forms, services
from groups.models import Group


def _membership_for_group_admin(request, product):
    """Creating, renaming and deleting groups reshapes the product: not for restricted members."""
    return access.membership_for(request.user, product, write=True, product_wide=True)


def _get_group(membership, group_id) -> Group:
    return get_object_or_404(Group.objects.visible_to(membership).select_related("product"), pk=group_id)


def _group_url_maker(name: str, product: str):
    """A function of a group id giving the URL `name` reverses to for that group."""
    placeholder = 2_000_000_001
    url = reverse(name, kwargs={"product": product, "group_id": placeholder})
    prefix, suffix = url.split(str(placeholder))
    return lambda group_id: f"{prefix}{group_id}{suffix}"


@login_required
@require_GET
@htmx.vary_on_htmx
def group_list(request, product):
    membership = access.membership_for(request.user, product)
    groups = list(
        Group.objects.visible_to(membership)
        .select_related("released_firmware")
        .order_by("name")
    )
    # A product can have a thousand groups: reverse each link once, not three times per row.
    devices_url = reverse("devices:list", kwargs={"product": product})
    edit_url, delete_url = (_group_url_maker(name, product) for name in ("groups:edit", "groups:delete"))
    for group in groups:
        group.devices_url = f"{devices_url}?{urlencode({'groups': group.name})}"
        group.edit_url, group.delete_url = edit_url(group.id), delete_url(group.id)
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "groups",
        "groups": groups,
        "can_edit_groups": membership.can_write and membership.restricted_group_ids() is None,
    }
    return render(request, htmx.partial(request, "groups/group_list.html", "group-table"), context)


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def group_create(request, product):
    membership = _membership_for_group_admin(request, product)
    product = membership.product
    form = forms.GroupForm(request.POST if request.method == "POST" else None, product=product)
    if request.method == "POST" and form.is_valid():
        try:
            group = services.group_create(product=product, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            return htmx.finished(
                request, message=f"Group {group.name} created.", events=("groupsChanged",),
                next=reverse("groups:list", kwargs={"product": product.slug}),
            )
    context = {
        "membership": membership,
        "product": product,
        "nav": "groups",
        "form": form,
        "next": htmx.next_url(request, ""),
        "action": reverse("groups:create", kwargs={"product": product.slug}),
    }
    return htmx.dialog(request, "groups/group_form_dialog.html", context, name="group-dialog")


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def group_edit(request, product, group_id):
    membership = _membership_for_group_admin(request, product)
    group = _get_group(membership, group_id)
    form = forms.GroupForm(request.POST if request.method == "POST" else None, product=membership.product, group=group)
    if request.method == "POST" and form.is_valid():
        try:
            services.group_edit(group=group, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            return htmx.finished(
                request, message=f"Group {group.name} saved.", events=("groupsChanged", "devicesChanged"),
                next=reverse("groups:list", kwargs={"product": membership.product.slug}),
            )
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "groups",
        "form": form,
        "group": group,
        "next": htmx.next_url(request, ""),
        "action": reverse("groups:edit", kwargs={"product": membership.product.slug, "group_id": group.id}),
    }
    return htmx.dialog(request, "groups/group_form_dialog.html", context, name="group-dialog")


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def group_delete(request, product, group_id):
    membership = _membership_for_group_admin(request, product)
    group = _get_group(membership, group_id)
    if request.method == "POST":
        try:
            left = services.group_delete(group=group, actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("groups:list", product=membership.product.slug)
        devices = "device" if left == 1 else "devices"
        return htmx.finished(
            request, message=f"Group {group.name} deleted; {left} {devices} left it.",
            events=("groupsChanged", "devicesChanged"),
            next=reverse("groups:list", kwargs={"product": membership.product.slug}),
        )
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "groups",
        "group": group,
        "consequences": services.group_delete_impact(group),
        "next": htmx.next_url(request, ""),
    }
    return htmx.dialog(request, "groups/group_delete_dialog.html", context, name="group-delete-dialog")
