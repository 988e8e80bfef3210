"""Console views of the firmware app: the firmware list, uploads, releases with their impact
preview, and the firmware section of the device page (lock, unlock, development)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from console import access
from devices.models import Device
from firmware import forms, services
from firmware.models import Firmware
from groups.models import Group


def _firmware(membership, version: int) -> Firmware:
    return get_object_or_404(Firmware.objects.select_related("product"), product=membership.product, version=version)


def _device(membership, device_id: str) -> Device:
    devices = Device.objects.visible_to(membership).with_target().select_related("product")
    return get_object_or_404(devices, device_id=device_id.lower())


def _list_url(product) -> str:
    return reverse("firmware:list", kwargs={"product": product.slug})


def _device_url(product, device) -> str:
    try:
        return reverse("devices:detail", kwargs={"product": product.slug, "device_id": device.device_id})
    except NoReverseMatch:
        return reverse("devices:list", kwargs={"product": product.slug})


def _dialog(request, template: str, context: dict, *, status: int = 200):
    """A dialog: a `<dialog data-modal>` for htmx, a full page without JavaScript."""
    context["base"] = "firmware/_modal.html" if request.htmx else "firmware/_page.html"
    if request.htmx and status == 400:
        # htmx swaps only 2xx responses; the re-rendered dialog carries the errors itself.
        status = 200
    context.setdefault("nav", "firmware")
    return render(request, template, context, status=status)


def _done(request, message: str, next_url: str, event: str = "firmwareChanged"):
    """Success: 204 with events for htmx (the dialog closes, interested regions refresh)."""
    if request.htmx:
        response = HttpResponse(status=204)
        # Events fire in this order on the form, which closeModal takes out of the document:
        # domain events first, so that they still bubble up to the regions listening on body.
        trigger_client_event(response, event)
        trigger_client_event(response, "showMessage", {"value": message})
        trigger_client_event(response, "closeModal")
        return response
    messages.success(request, message)
    return redirect(next_url)


def _add_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


# ---------------------------------------------------------------------------------------------
# The firmware list


@login_required
@require_GET
@vary_on_headers("HX-Request")
def firmware_list(request, product):
    membership = access.membership_for(request.user, product)
    product = membership.product
    devices = Device.objects.visible_to(membership)
    versions = list(
        Firmware.objects.for_product(product)
        .select_related("uploaded_by")
        .prefetch_related("released_groups")
    )
    counts = services.device_counts(devices=devices)
    restricted = membership.restricted_group_ids()
    for firmware in versions:
        firmware.device_count = counts.get(firmware.version, 0)
        firmware.is_default = product.default_firmware_id == firmware.id
        firmware.groups = sorted(
            (group for group in firmware.released_groups.all() if restricted is None or group.id in restricted),
            key=lambda group: group.name,
        )
        firmware.is_released = firmware.is_default or bool(firmware.groups)
    context = {
        "membership": membership,
        "product": product,
        "nav": "firmware",
        "versions": versions,
        "max_bytes": settings.FIRMWARE_MAX_BYTES,
    }
    template = "firmware/firmware_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#firmware-table"
    return render(request, template, context)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def firmware_progress(request, product):
    """Rollout progress per targeted version; lazily loaded by the list (it reads the whole fleet)."""
    membership = access.membership_for(request.user, product)
    rollouts = services.rollout_progress(devices=Device.objects.visible_to(membership), product=membership.product)
    versions = list(Firmware.objects.for_product(membership.product).values_list("version", flat=True))
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "firmware",
        "rollouts": [rollouts.get(version) or services.Rollout(version) for version in versions],
    }
    template = "firmware/firmware_progress.html"
    if request.htmx:
        template += "#rollout-cells"
    return render(request, template, context)


# ---------------------------------------------------------------------------------------------
# Upload and delete


@login_required
@require_http_methods(["GET", "POST"])
def firmware_upload(request, product):
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    product = membership.product
    form = forms.UploadForm(request.POST or None, request.FILES or None, max_bytes=settings.FIRMWARE_MAX_BYTES)
    if request.method == "POST" and form.is_valid():
        try:
            firmware = services.firmware_upload(
                product=product,
                version=form.cleaned_data["version"],
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                binary=form.cleaned_data["binary"],
                actor=request.user,
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            return _done(request, f"Uploaded v{firmware.version} “{firmware.title}”.", _list_url(product))
    status = 400 if form.is_bound and form.errors else 200
    return _dialog(
        request, "firmware/firmware_upload_dialog.html",
        {"membership": membership, "product": product, "form": form}, status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def firmware_delete(request, product, version):
    membership = access.membership_for(request.user, product, write=True, product_wide=True)
    firmware = _firmware(membership, version)
    error = None
    if request.method == "POST":
        try:
            services.firmware_delete(firmware=firmware, actor=request.user)
        except ValidationError as exc:
            error = exc.message_dict.get("version", exc.messages)[0]
        else:
            return _done(request, f"Deleted v{version}.", _list_url(membership.product))
    return _dialog(
        request, "firmware/firmware_delete_dialog.html",
        {"membership": membership, "product": membership.product, "firmware": firmware, "error": error},
        status=400 if error else 200,
    )


# ---------------------------------------------------------------------------------------------
# Release: choose groups → "Next" → confirmation with the impact → "Release this firmware"


def _release_arguments(membership, firmware, form) -> dict:
    """The service arguments for a valid release form, for this member.

    A member restricted to groups only changes those: the version stays released to the groups
    they cannot see, and the product default stays as it is.
    """
    return {
        "groups": services.release_groups_for(membership=membership, firmware=firmware, groups=form.cleaned_data["groups"]),
        "product_default": form.cleaned_data.get("product_default") if "product_default" in form.fields else None,
        "intelligent": form.cleaned_data["intelligent"],
    }


def _release_form_dialog(request, membership, firmware, form, *, status=200):
    return _dialog(
        request, "firmware/firmware_release_dialog.html",
        {
            "membership": membership,
            "product": membership.product,
            "firmware": firmware,
            "form": form,
            "proven": services.ever_reported_running(firmware),
        },
        status=status,
    )


@login_required
@require_GET
def firmware_release(request, product, version):
    membership = access.membership_for(request.user, product, write=True)
    firmware = _firmware(membership, version)
    if request.GET:
        form = forms.ReleaseForm(request.GET, membership=membership)
        form.is_valid()
        form.errors.clear()
    else:
        form = forms.ReleaseForm(
            membership=membership,
            initial={
                "groups": list(Group.objects.visible_to(membership).filter(released_firmware=firmware)),
                "product_default": membership.product.default_firmware_id == firmware.id,
                "intelligent": firmware.intelligent,
            },
        )
    return _release_form_dialog(request, membership, firmware, form)


@login_required
@require_http_methods(["GET", "POST"])
def firmware_release_confirm(request, product, version):
    membership = access.membership_for(request.user, product, write=True)
    firmware = _firmware(membership, version)
    data = request.POST if request.method == "POST" else request.GET
    form = forms.ReleaseForm(data, membership=membership)
    if not form.is_valid():
        return _release_form_dialog(request, membership, firmware, form, status=400)
    arguments = _release_arguments(membership, firmware, form)
    try:
        if request.method == "POST":
            services.firmware_release(firmware=firmware, actor=request.user, **arguments)
            released = bool(arguments["groups"]) or arguments["product_default"] or (
                arguments["product_default"] is None and membership.product.default_firmware_id == firmware.id
            )
            verb = "Released" if released else "Unreleased"
            return _done(request, f"{verb} v{firmware.version}.", _list_url(membership.product))
        services.release_check(firmware=firmware, groups=arguments["groups"], product_default=arguments["product_default"])
    except ValidationError as error:
        _add_errors(form, error)
        return _release_form_dialog(request, membership, firmware, form, status=400)

    before = list(Group.objects.filter(product=membership.product, released_firmware=firmware).order_by("name"))
    after = sorted(arguments["groups"], key=lambda group: group.name)
    default_before = membership.product.default_firmware_id == firmware.id
    default_after = default_before if arguments["product_default"] is None else arguments["product_default"]
    impact = services.release_impact(
        firmware=firmware, groups=arguments["groups"], product_default=arguments["product_default"],
        devices=Device.objects.visible_to(membership),
    )
    return _dialog(
        request, "firmware/firmware_release_confirm_dialog.html",
        {
            "membership": membership,
            "product": membership.product,
            "firmware": firmware,
            "form": form,
            "groups_after": after,
            "groups_added": [group for group in after if group not in before],
            "groups_removed": [group for group in before if group not in after],
            "default_before": default_before,
            "default_after": default_after,
            "releases_anything": bool(after) or default_after,
            "impact": impact,
            "by_version": impact.as_json()["by_version"],
            "by_target_version": impact.as_json()["by_target_version"],
            "query": data.urlencode(),
        },
    )


# ---------------------------------------------------------------------------------------------
# The device page's firmware section


def _section_context(membership, device) -> dict:
    return {
        "membership": membership,
        "product": membership.product,
        "device": device,
        "device_url": _device_url(membership.product, device),
    }


@login_required
@require_GET
@vary_on_headers("HX-Request")
def device_firmware(request, product, device_id):
    membership = access.membership_for(request.user, product)
    device = _device(membership, device_id)
    if not request.htmx:
        return redirect(_device_url(membership.product, device))
    return render(request, "firmware/device_firmware.html", _section_context(membership, device))


@login_required
@require_http_methods(["GET", "POST"])
def device_lock(request, product, device_id):
    membership = access.membership_for(request.user, product, write=True)
    device = _device(membership, device_id)
    versions = list(Firmware.objects.for_product(membership.product).only("version", "title"))
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = forms.LockForm(data, versions=versions, initial={"version": device.desired_firmware_version})
    preview = None
    if form.is_bound and form.is_valid():
        version = form.cleaned_data["version"]
        if request.method == "POST":
            try:
                services.device_lock(device=device, version=version, actor=request.user)
            except ValidationError as error:
                form.add_error("version", error.message_dict.get("desired_firmware_version", error.messages))
            else:
                return _done(request, f"Locked {device} to v{version}.", _device_url(membership.product, device))
        if not form.errors:
            preview = services.device_target_preview(device=device, locked=version)
    context = _section_context(membership, device) | {"form": form, "preview": preview, "versions": versions}
    return _dialog(request, "firmware/device_lock_dialog.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def device_unlock(request, product, device_id):
    membership = access.membership_for(request.user, product, write=True)
    device = _device(membership, device_id)
    if request.method == "POST":
        services.device_lock(device=device, version=None, actor=request.user)
        return _done(request, f"Unlocked {device}.", _device_url(membership.product, device))
    preview = services.device_target_preview(device=device, locked=None)
    context = _section_context(membership, device) | {
        "preview": preview,
        "title": f"Unlock {device}",
        "action": reverse("firmware:device_unlock", kwargs={"product": membership.product.slug, "device_id": device.device_id}),
        "confirm": "Unlock",
        "explanation": f"The device stops being held at v{device.desired_firmware_version} and follows its groups and the product default again.",
    }
    return _dialog(request, "firmware/device_change_dialog.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def device_development(request, product, device_id):
    """Mark or unmark a development device (the dialog offers the opposite of its state)."""
    membership = access.membership_for(request.user, product, write=True)
    device = _device(membership, device_id)
    development = not device.development
    if request.method == "POST":
        development = request.POST.get("development") in {"true", "on", "1"}
        services.device_development_set(device=device, development=development, actor=request.user)
        message = f"Marked {device} as a development device." if development else f"{device} is no longer a development device."
        return _done(request, message, _device_url(membership.product, device))
    preview = services.device_target_preview(device=device, development=development)
    context = _section_context(membership, device) | {
        "preview": preview,
        "title": "Mark as development device" if development else "Unmark development device",
        "action": reverse("firmware:device_development", kwargs={"product": membership.product.slug, "device_id": device.device_id}),
        "confirm": "Mark as development device" if development else "Unmark development device",
        "development": "true" if development else "false",
        "explanation": (
            "A development device receives no automatic product firmware: releases and its lock are ignored, so you can flash test builds on it."
            if development
            else "The device takes firmware from its lock, its groups and the product default again."
        ),
    }
    return _dialog(request, "firmware/device_change_dialog.html", context)

