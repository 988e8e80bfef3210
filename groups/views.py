"""Console views of the groups app: the groups page and the New Group, edit and delete dialogs."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from console import access, htmx
from console.models import AuditEvent
from devices.models import Device
from firmware.models import Firmware
from groups import csv_import, forms, services
from groups.models import Group

# How far back the group page looks for events that name the group (they are read newest first
# and kept when they name it, so the page costs the same however old the product is).
EVENTS_SCANNED = 500
EVENTS_SHOWN = 20


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
    urls = {name: _group_url_maker(f"groups:{name}", product) for name in ("detail", "edit", "delete")}
    for group in groups:
        group.detail_url, group.edit_url, group.delete_url = (urls[name](group.id) for name in urls)
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "groups",
        "groups": groups,
        "can_edit_groups": membership.can_write and membership.restricted_group_ids() is None,
        "can_import": membership.can_write,
    }
    return render(request, htmx.partial(request, "groups/group_list.html", "group-table"), context)


def _names_group(event, name: str) -> bool:
    details = event.details or {}
    if event.object_type == "group":
        return event.object_repr == name
    return any(name in (details.get(key) or ()) for key in ("added", "removed", "groups_before", "groups_after"))


def _describe_for_group(event, name: str) -> str:
    """What an event did to this group, naming no other group (a restricted member may read it)."""
    details = event.details or {}
    devices = f"{event.device_count:,} device{'' if event.device_count == 1 else 's'}"
    if event.action == "group.create":
        return "Created the group"
    if event.action == "group.edit":
        renamed = (details.get("before") or {}).get("name")
        return f"Renamed the group from {renamed}" if renamed else "Edited the group's description or color"
    if event.action == "device.groups":
        verb = "Added devices to the group" if name in (details.get("added") or ()) else "Removed devices from the group"
        return f"{verb} ({devices} changed by this edit)"
    version = details.get("version")
    if name in (details.get("groups_after") or ()):
        return f"Released v{version} to the group" + ("" if name not in (details.get("groups_before") or ()) else " (unchanged)")
    return f"Unreleased v{version} from the group"


def _bars(counts: list[tuple[int | None, int]], total: int) -> list[dict]:
    """Rows of a horizontal bar chart: version, devices and share of the group."""
    return [
        {"version": version, "devices": devices, "percent": round(100 * devices / total, 1) if total else 0}
        for version, devices in counts
        if devices
    ]


@login_required
@require_GET
def group_detail(request, product, group_id):
    """A group's page: its release and release history, the versions its devices run and are
    targeted, its members (the devices list filtered to it) and its activity."""
    membership = access.membership_for(request.user, product)
    group = get_object_or_404(
        Group.objects.visible_to(membership).select_related("product", "released_firmware"), pk=group_id
    )
    product = membership.product
    members = Device.objects.filter(product=product).in_groups([group.id], sizes={group.id: group.device_count})
    running = list(
        members.order_by().values_list("firmware_version").annotate(n=Count("id")).order_by("-firmware_version")
    )
    targets = Firmware.objects.filter(product=product).rollout_progress(devices=members, product=product)
    targeted = [(rollout.version, rollout.targeted) for rollout in targets]
    untargeted = group.device_count - sum(devices for _version, devices in targeted)
    recent = AuditEvent.objects.filter(
        product=product, action__in=["device.groups", "firmware.release", "group.create", "group.edit"]
    ).select_related("actor")[:EVENTS_SCANNED]
    events = [event for event in recent if _names_group(event, group.name)][:EVENTS_SHOWN]
    for event in events:
        event.summary = _describe_for_group(event, group.name)
    context = {
        "membership": membership,
        "product": product,
        "nav": "groups",
        "group": group,
        "running": _bars(running, group.device_count),
        "targeted": _bars([*targeted, (None, untargeted)], group.device_count),
        "releases": [event for event in events if event.action == "firmware.release"],
        "events": events,
        "devices_url": f"{reverse('devices:list', kwargs={'product': product.slug})}?{urlencode({'groups': group.name})}",
        "can_edit_groups": membership.can_write and membership.restricted_group_ids() is None,
    }
    return render(request, "groups/group_detail.html", context)


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


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def memberships_import(request, product):
    """"Import CSV": a dry run of the file first, then the import, from the same form (the
    chosen file stays in the dialog between the two)."""
    membership = access.membership_for(request.user, product, write=True)
    product = membership.product
    form = forms.MembershipImportForm(request.POST or None, request.FILES or None)
    list_url = reverse("groups:list", kwargs={"product": product.slug})
    context = {"membership": membership, "product": product, "nav": "groups", "form": form, "plan": None,
               "next": htmx.next_url(request, list_url)}
    template = "groups/memberships_import_dialog.html"
    if request.method == "POST" and form.is_valid():
        try:
            text = csv_import.read_upload(form.cleaned_data["file"])
            arguments = {"membership": membership, "text": text, "mode": form.cleaned_data["mode"]}
            if "dry_run" in request.POST:
                context["plan"] = csv_import.memberships_import_plan(**arguments)
            else:
                plan = csv_import.memberships_import(
                    **arguments, skip_invalid=form.cleaned_data["skip_invalid"],
                    file_name=form.cleaned_data["file"].name, actor=request.user,
                )
                return htmx.finished(
                    request, message=f"Imported: {plan.changed_devices:,} device{'' if plan.changed_devices == 1 else 's'}"
                    f" changed ({plan.added:,} memberships added, {plan.removed:,} removed).",
                    events=("groupsChanged", "devicesChanged"), next=context["next"],
                )
        except ValidationError as error:
            form.add_service_errors(error)
    if htmx.is_htmx(request) and request.method == "POST":
        return render(request, f"{template}#import-result", context)
    return htmx.dialog(request, template, context, name="import-dialog", refused=bool(form.errors))
