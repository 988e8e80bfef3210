"""Console views of the devices app: the devices table, "Edit groups" and the device page."""

from html import escape
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect, push_url, trigger_client_event

from console import access, htmx
from console.models import AuditEvent
from devices import export, forms
from devices import services as device_services
from devices.filters import NON_FILTER_PARAMS, DeviceFilter
from devices.models import Device, QuarantinedDevice, normalize_device_id
from firmware import targeting
from firmware.rollout_views import device_rollout_sentence
from groups import services
from groups.models import Group

PER_PAGE = (25, 50, 100)
# Sortable columns, by their key in devices.filters.SORTS.
SORT_COLUMNS = [("device_id", "Device ID"), ("name", "Name"), ("firmware", "Firmware"), ("last_handshake", "Last handshake")]
HISTORY_LENGTH = 50


class CappedPaginator(Paginator):
    """Counts matches only up to COUNT_CAP + 1: an exact count over hundreds of thousands of
    devices costs more than the page itself, and "10,000+" tells people as much."""

    COUNT_CAP = 10_000

    def __init__(self, object_list, per_page, *, known_count: int | None = None):
        super().__init__(object_list, per_page)
        self.exact = known_count is not None
        if self.exact:
            self.count = known_count

    @cached_property
    def count(self) -> int:
        # Without the order: "how many match, up to a bound" must not walk the list order.
        return self.object_list.order_by()[: self.COUNT_CAP + 1].count()

    @property
    def capped(self) -> bool:
        return not self.exact and self.count > self.COUNT_CAP

    @property
    def count_display(self) -> str:
        return f"{self.COUNT_CAP:,}+" if self.capped else f"{self.count:,}"


def _query(pairs) -> str:
    return urlencode([(name, value) for name, value in pairs if value != ""])


def _filter_pairs(params) -> list[tuple[str, str]]:
    """The parameters that decide which devices match, without those that only shape the page."""
    return [(name, value) for name, values in params.lists() if name not in NON_FILTER_PARAMS for value in values]


def _per_page(params) -> int:
    value = params.get("per_page", "")
    return int(value) if value.isdigit() and int(value) in PER_PAGE else PER_PAGE[0]


def _group_options(groups, chosen) -> str:
    """The group filter's <option>s. Built here, not in a template loop: a product can have a
    thousand groups, and listing them took a third of the page's time."""
    selected = {name.strip() for value in chosen for name in value.split(",") if name.strip()}
    return mark_safe("".join(
        f'<option value="{escape(name)}"{" selected" if name in selected else ""}>{escape(name)}</option>'
        for name in groups
    ))


def _sort_headers(filter_pairs, sort: str, per_page: int) -> list[dict]:
    """Column headers that sort by themselves; a second click reverses the order."""
    headers = []
    for key, label in SORT_COLUMNS:
        reverse_key = f"-{key}"
        next_sort = reverse_key if sort == key else key
        state = None
        if sort in (key, reverse_key):
            # "Last handshake" sorts newest first by default, so its unprefixed order descends.
            descending = (sort == key) == (key == "last_handshake")
            state = "descending" if descending else "ascending"
        query = _query([*filter_pairs, ("sort", next_sort), ("per_page", str(per_page) if per_page != PER_PAGE[0] else "")])
        headers.append({"key": key, "label": label, "query": query, "state": state})
    return headers


@login_required
@require_GET
@htmx.vary_on_htmx
def device_list(request, product):
    membership = access.membership_for(request.user, product)
    filterset = DeviceFilter(request.GET, membership=membership)
    valid = filterset.is_valid()
    sort = (filterset.form.cleaned_data.get("sort") if valid else None) or "last_handshake"
    per_page = _per_page(request.GET)
    devices = filterset.qs if valid else Device.objects.none()
    page = CappedPaginator(devices, per_page, known_count=filterset.known_count()).get_page(request.GET.get("page"))
    # Count the bare filter; only the rows shown carry the targeting annotation.
    shown = filterset.page_qs(page.paginator.count).with_target() if page.paginator.count else None
    rows = list(shown[page.start_index() - 1 : page.end_index()]) if shown is not None else []
    tags = Group.objects.visible_to(membership).by_device(rows) if rows else {}
    for device in rows:
        device.group_tags = tags.get(device.pk, [])

    filter_pairs = _filter_pairs(request.GET)
    filter_query = _query(filter_pairs)
    page_query = _query([*filter_pairs, ("sort", sort if sort != "last_handshake" else ""),
                         ("per_page", str(per_page) if per_page != PER_PAGE[0] else "")])
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "devices",
        "filter": filterset,
        "filter_valid": valid,
        "filter_errors": [
            f"{filterset.form.fields[name].label if name in filterset.form.fields else 'Filter'}: {' '.join(errors)}"
            for name, errors in (filterset.errors.items() if not valid else ())
        ],
        "filtered": any(value for name, value in filter_pairs if name != "groups_match"),
        "group_options": _group_options(filterset.visible_groups, request.GET.getlist("groups")),
        "page": page,
        "devices": rows,
        "sort": sort,
        "per_page": per_page,
        "per_page_choices": PER_PAGE,
        "sort_headers": _sort_headers(filter_pairs, sort, per_page),
        "filter_query": filter_query,
        "page_query": page_query,
        "filter_hidden": [pair for pair in filter_pairs if pair[1] != ""],
        "can_edit": membership.can_write,
        "groups_url": reverse("groups:list", kwargs={"product": membership.product.slug}),
        "can_create_groups": membership.can_write and membership.restricted_group_ids() is None,
        "pasted_unknown": filterset.unknown_pasted() if valid else [],
    }
    partial = None
    if htmx.is_htmx(request):
        partial = "device-filter" if request.htmx.target == "device-filter" else "device-table"
    response = render(request, htmx.partial(request, "devices/device_list.html", partial), context)
    if partial == "device-table" and request.htmx.trigger != "device-table":
        # The address bar holds the whole filter, without empty fields, so it can be shared.
        query = _query([*filter_pairs, ("sort", request.GET.get("sort", "")), ("per_page", request.GET.get("per_page", "")),
                        ("page", request.GET.get("page", ""))])
        push_url(response, f"{request.path}?{query}" if query else request.path)
    return response


@login_required
@require_GET
def device_export(request, product):
    """The devices list as it is filtered, as a streamed CSV file."""
    membership = access.membership_for(request.user, product)
    filterset = DeviceFilter(request.GET, membership=membership)
    if not filterset.is_valid():
        errors = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in filterset.errors.items())
        return HttpResponse(f"The filter is not valid: {errors}", status=400, content_type="text/plain")
    return export.devices_csv_response(filterset.qs, membership)


def _summary(added, removed) -> str:
    parts = []
    if added:
        parts.append("added to " + ", ".join(group.name for group in added))
    if removed:
        parts.append("removed from " + ", ".join(group.name for group in removed))
    return " and ".join(parts)


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def devices_edit_groups(request, product):
    """"Edit groups" of the selected devices, or of every device matching the filter."""
    membership = access.membership_for(request.user, product, write=True)
    product = membership.product
    params = request.POST if request.method == "POST" else request.GET
    selection = forms.DeviceSelectionForm(params, membership=membership)
    form = forms.EditGroupsForm(request.POST if request.method == "POST" else None, membership=membership)
    list_url = reverse("devices:list", kwargs={"product": product.slug})
    context = {
        "membership": membership,
        "product": product,
        "nav": "devices",
        "selection": selection,
        "form": form,
        "next": htmx.next_url(request, list_url),
        "impact": None,
    }
    template = "devices/devices_edit_groups_dialog.html"
    if not selection.is_valid():
        return htmx.dialog(request, template, context, name="edit-groups-dialog")
    devices = selection.devices()
    context["selected_count"] = devices.count()

    if request.method == "POST" and form.is_valid():
        add, remove = list(form.cleaned_data["add"]), list(form.cleaned_data["remove"])
        if "preview" not in request.POST:
            changed = services.devices_edit_groups(
                product=product, devices=devices, add=add, remove=remove, actor=request.user
            )
            message = f"{changed:,} device{'' if changed == 1 else 's'} {_summary(add, remove)}." if changed else (
                "Nothing changed: the selected devices were already in those groups."
            )
            return htmx.finished(request, message=message, events=("devicesChanged",), next=context["next"])
        context["impact"] = services.devices_edit_groups_impact(devices=devices, add=add, remove=remove)
    if htmx.is_htmx(request) and request.htmx.target == "edit-groups-impact":
        return render(request, f"{template}#edit-groups-impact", context)
    return htmx.dialog(request, template, context, name="edit-groups-dialog", refused=bool(form.errors))


def _device_context(request, membership, device, **extra) -> dict:
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "devices",
        "device": device,
        "device_groups": list(Group.objects.visible_to(membership).filter(memberships__device=device).order_by("name")),
        "target_explanation": targeting.explain(device.target_rule, device.target_group),
        "rollout_sentence": device_rollout_sentence(membership, device),
        "can_edit": membership.can_write,
        "editing": False,
    }
    context.update(extra)
    return context


def _describe(event, visible_names) -> str:
    """One line of the device's history, for people. `visible_names` (None: all) keeps the
    names of groups a restricted member cannot see out of it."""
    details = event.details or {}
    if event.action == "device.groups":
        added, removed = details.get("added") or [], details.get("removed") or []
        if visible_names is not None:
            added = [name for name in added if name in visible_names]
            removed = [name for name in removed if name in visible_names]
        parts = []
        if added:
            parts.append("Added to " + ", ".join(added))
        if removed:
            parts.append(("removed from " if parts else "Removed from ") + ", ".join(removed))
        if not parts:
            parts.append("Groups changed")
        others = event.device_count - 1
        suffix = f" (with {others} other device{'' if others == 1 else 's'})" if others > 0 else ""
        return " and ".join(parts) + suffix
    if event.action == "group.delete":
        if visible_names is not None and event.object_repr not in visible_names:
            return "Left a group: the group was deleted"
        return f"Left group {event.object_repr}: the group was deleted"
    if event.action == "device.lock":
        return f"Locked to v{details.get('locked_after')}"
    if event.action == "device.unlock":
        return f"Unlocked (was locked to v{details.get('locked_before')})"
    if event.action == "device.development_mark":
        return "Marked as a development device"
    if event.action == "device.development_unmark":
        return "No longer a development device"
    if event.action == "device.key_issue":
        return "Device key issued"
    if event.action == "device.key_rotate":
        return "Device key rotated: the previous key stopped working"
    if event.action == "firmware.update_targeted":
        return f"Targeted for an OTA update to v{details.get('to_version')}"
    if event.action == "firmware.update_succeeded":
        return f"Updated to v{details.get('to_version')}"
    if event.action in ("firmware.update_failed", "firmware.update_superseded"):
        reason = details.get("reason")
        return f"Update to v{details.get('to_version')} did not complete" + (f": {reason}" if reason else "")
    return f"{event.action} {event.object_repr}".strip()


def _history(device, membership) -> list:
    events = list(
        AuditEvent.objects.filter(product_id=device.product_id)
        .touching_device(device.device_id)
        .select_related("actor")[:HISTORY_LENGTH]
    )
    visible_names = None
    if membership.restricted_group_ids() is not None:
        visible_names = set(Group.objects.visible_to(membership).values_list("name", flat=True))
    for event in events:
        event.summary = _describe(event, visible_names)
    return events


DEVICE_PARTIALS = {"device-header", "device-key", "device-history"}


@login_required
@require_GET
@htmx.vary_on_htmx
def device_detail(request, product, device_id):
    membership = access.membership_for(request.user, product)
    device = Device.objects.get_for_member(membership, device_id)
    context = _device_context(request, membership, device)
    partial = request.htmx.target if htmx.is_htmx(request) and request.htmx.target in DEVICE_PARTIALS else None
    if partial in (None, "device-history"):
        context["history"] = _history(device, membership)
    return render(request, htmx.partial(request, "devices/device_detail.html", partial), context)


def _visible_group_names(membership, device) -> list[str]:
    return list(Group.objects.visible_to(membership).filter(memberships__device=device).order_by("name").values_list("name", flat=True))


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
@never_cache  # the answer to the POST holds the new key
def device_key(request, product, device_id):
    """"Rotate device key" (or issue the first): confirm, then show the new key once."""
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.visible_to(membership).select_related("product").get_by_device_id(device_id)
    template = "devices/device_key_dialog.html"
    context = {
        "membership": membership, "product": membership.product, "nav": "devices", "device": device,
        "action": reverse("devices:key", kwargs={"product": membership.product.slug, "device_id": device.device_id}),
        "device_url": reverse("devices:detail", kwargs={"product": membership.product.slug, "device_id": device.device_id}),
    }
    if request.method == "GET":
        return htmx.dialog(request, template, context, name="device-key-dialog")
    context["issued_key"] = device_services.device_key_issue(device=device, actor=request.user)
    response = render(request, htmx.partial(request, template, "device-key-dialog-body"), context)
    return trigger_client_event(response, "devicesChanged", {})


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def device_groups(request, product, device_id):
    """The device header in edit mode ("+ Add groups" / "Edit"); "Done" posts the groups chosen
    and those shown when editing began, and the groups added and removed between them are saved."""
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.get_for_member(membership, device_id)
    visible = {group.name: group for group in Group.objects.visible_to(membership).order_by("name")}
    restricted = membership.restricted_group_ids() is not None
    form = forms.DeviceGroupsForm(request.POST if request.method == "POST" else None, choices=visible)
    context = _device_context(request, membership, device, editing=True, form=form, can_create=not restricted, warning=None)
    if request.method == "POST":
        selected = form._names(request.POST.getlist("groups"))
        shown = form._names(request.POST.getlist("shown"))
    else:
        selected = shown = [group.name for group in context["device_groups"]]
    # Names typed but not saved yet stay in the picker when the form comes back with an error.
    context["group_options"] = [(name, getattr(visible.get(name), "color", "")) for name in [*visible, *(n for n in selected if n not in visible)]]
    context["selected_names"] = set(selected)
    context["shown_names"] = shown
    if request.method == "POST" and form.is_valid():
        add, remove = form.add, form.remove
        after = services.device_groups_edit_target(membership=membership, device=device, add=add, remove=remove)
        if after["version"] != device.target_version and form.cleaned_data["confirmed"] != form.signature():
            context["warning"] = {
                "old": device.target_version,
                "new": after["version"],
                "why": targeting.explain(after["rule"], after["group"]),
                "signature": form.signature(),
            }
        else:
            try:
                services.device_groups_edit(membership=membership, device=device, add=add, remove=remove, actor=request.user)
            except ValidationError as error:
                form.add_error("groups", error.messages)
            else:
                expected = {*(name for name in shown if name not in remove), *add}
                return _device_groups_saved(
                    request, membership, device, created=any(name not in visible for name in add), expected=expected
                )
    if htmx.is_htmx(request):
        return render(request, "devices/device_detail.html#device-header", context)
    context["history"] = _history(device, membership)
    return render(request, "devices/device_detail.html", context)


def _changed_meanwhile(expected: set, now: list[str]) -> str:
    """What someone else changed while this editor was open, said plainly (or "")."""
    joined = sorted(set(now) - expected)
    left = sorted(expected - set(now))
    parts = []
    if joined:
        parts.append("it is also in " + ", ".join(joined))
    if left:
        parts.append("it is no longer in " + ", ".join(left))
    return f"Its groups were also changed elsewhere while you were editing: {' and '.join(parts)}." if parts else ""


def _device_groups_saved(request, membership, device, *, created: bool, expected: set) -> HttpResponse:
    product = membership.product
    detail_url = reverse("devices:detail", kwargs={"product": product.slug, "device_id": device.device_id})
    if not Device.objects.visible_to(membership).filter(pk=device.pk).exists():
        # A restricted member took the device out of their last group: it is no longer theirs to see.
        messages.success(request, f"{device} saved; it is no longer in any of your groups.")
        list_url = reverse("devices:list", kwargs={"product": product.slug})
        return HttpResponseClientRedirect(list_url) if request.htmx else redirect(list_url)
    meanwhile = _changed_meanwhile(expected, _visible_group_names(membership, device))
    message = f"Groups of {device} saved." + (f" {meanwhile}" if meanwhile else "")
    if not request.htmx:
        messages.success(request, message)
        return redirect(detail_url)
    device = Device.objects.get_for_member(membership, device.device_id)
    response = render(
        request, "devices/device_detail.html#device-header", _device_context(request, membership, device, meanwhile=meanwhile)
    )
    for event in ("devicesChanged", "firmwareChanged", *(("groupsChanged",) if created else ())):
        trigger_client_event(response, event, {})
    return htmx.message_event(response, message)


# Quarantine -----------------------------------------------------------------------------------

QUARANTINE_ACTIONS = {
    "approve": (device_services.quarantine_approve, "approved: it is now a device of the product",
                "approved: they are now devices of the product"),
    "deny": (device_services.quarantine_deny, "denied: its contacts are refused from now on",
             "denied: their contacts are refused from now on"),
}


def _quarantine_choice(post) -> tuple[str | None, list[str]]:
    """A row's own button (`approve=<id>` / `deny=<id>`), or a bulk `action` over ticked `devices`."""
    for action in QUARANTINE_ACTIONS:
        if post.get(action):
            return action, [post[action]]
    action = post.get("action")
    return (action if action in QUARANTINE_ACTIONS else None), post.getlist("devices")


@login_required
@require_http_methods(["GET", "POST"])
def quarantine(request, product):
    """Devices that contacted the product without being imported, waiting for Approve or Deny."""
    if request.method == "POST":
        membership = access.membership_for(request.user, product, write=True, product_wide=True)
        action, raw_ids = _quarantine_choice(request.POST)
        device_ids = [device_id for device_id in map(normalize_device_id, raw_ids) if device_id]
        if action is None or not device_ids:
            messages.error(request, "Tick the devices to approve or deny, then choose Approve or Deny.")
        else:
            service, one, many = QUARANTINE_ACTIONS[action]
            done = service(product=membership.product, device_ids=device_ids, actor=request.user)
            if len(done) == 1:
                messages.success(request, f"{done[0]} was {one}.")
            elif done:
                messages.success(request, f"{len(done)} devices were {many}.")
            else:
                messages.error(request, "Nothing changed: those devices are no longer waiting in quarantine.")
        return redirect("devices:quarantine", product=membership.product.slug)

    membership = access.membership_for(request.user, product)
    entries = QuarantinedDevice.objects.none()
    # Quarantined devices are in no group: a member limited to groups sees none of them.
    if membership.restricted_group_ids() is None:
        entries = QuarantinedDevice.objects.waiting().filter(product=membership.product)
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "devices",
        "page": Paginator(entries, 50).get_page(request.GET.get("page")),
        "can_decide": membership.can_write and membership.restricted_group_ids() is None,
    }
    return render(request, "devices/quarantine_list.html", context)
