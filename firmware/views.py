"""Console views of the firmware app: the firmware list, uploads, releases with their impact
preview, and the firmware section of the device page (lock, unlock, development)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods

from console import access, htmx
from devices.models import Device
from firmware import forms, lint, services
from firmware.models import Firmware
from firmware.services import rollouts
from groups.models import Group

EVENTS = ("firmwareChanged",)


def _firmware(membership, version: int) -> Firmware:
    return get_object_or_404(Firmware.objects.select_related("product"), product=membership.product, version=version)


def _list_url(product) -> str:
    return reverse("firmware:list", kwargs={"product": product.slug})


def _device_url(product, device) -> str:
    try:
        return reverse("devices:detail", kwargs={"product": product.slug, "device_id": device.device_id})
    except NoReverseMatch:
        return reverse("devices:list", kwargs={"product": product.slug})


def _context(membership, **more) -> dict:
    return {"membership": membership, "product": membership.product, "nav": "firmware", **more}


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
@htmx.vary_on_htmx
def firmware_list(request, product):
    membership = access.membership_for(request.user, product)
    product = membership.product
    firmware = Firmware.objects.for_product(product)
    versions = list(firmware.select_related("uploaded_by").prefetch_related("released_groups"))
    counts = firmware.running_counts(Device.objects.visible_to(membership))
    restricted = membership.restricted_group_ids()
    for firmware in versions:
        firmware.device_count = counts.get(firmware.version, 0)
        firmware.is_default = product.default_firmware_id == firmware.id
        firmware.groups = sorted(
            (group for group in firmware.released_groups.all() if restricted is None or group.id in restricted),
            key=lambda group: group.name,
        )
        firmware.is_released = firmware.is_default or bool(firmware.groups)
    live = _live_rollout(product)
    summary = None
    if live is not None:
        from firmware.rollout_views import progress

        summary = progress(membership, live, list(live.stages.prefetch_related("groups")))
    context = _context(
        membership, versions=versions, max_bytes=settings.FIRMWARE_MAX_BYTES, live_rollout=live, summary=summary,
        live_rollout_url=_rollout_url(product, live) if live else None,
    )
    return render(request, htmx.partial(request, "firmware/firmware_list.html", "firmware-table"), context)


@login_required
@require_GET
def firmware_lint(request, product):
    """Release lint, loaded into the firmware and group pages after they show (`?group=` keeps
    the warnings that concern one group)."""
    membership = access.membership_for(request.user, product)
    warnings = lint.release_lint(product=membership.product, membership=membership)
    group = request.GET.get("group")
    if group:
        warnings = [warning for warning in warnings if group in warning.groups]
    return render(request, "firmware/firmware_lint.html", _context(membership, warnings=warnings, group=group))


@login_required
@require_GET
@htmx.vary_on_htmx
def firmware_progress(request, product):
    """Rollout progress per targeted version; lazily loaded by the list (it reads the whole fleet)."""
    membership = access.membership_for(request.user, product)
    rollouts = Firmware.objects.rollout_progress(devices=Device.objects.visible_to(membership), product=membership.product)
    context = _context(membership, rollouts=rollouts)
    return render(request, htmx.partial(request, "firmware/firmware_progress.html", "rollout-cells"), context)


# ---------------------------------------------------------------------------------------------
# Upload and delete


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
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
            return htmx.finished(
                request, message=f"Uploaded v{firmware.version} “{firmware.title}”.", events=EVENTS,
                next=_list_url(product),
            )
    context = _context(membership, form=form)
    return htmx.dialog(request, "firmware/firmware_upload_dialog.html", context, name="firmware-upload-dialog")


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
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
            return htmx.finished(request, message=f"Deleted v{version}.", events=EVENTS, next=_list_url(membership.product))
    # Say up front what would stop the delete, with the way to the devices concerned.
    locked = services.firmware_locked_devices(firmware).count()
    devices_url = reverse("devices:list", kwargs={"product": membership.product.slug})
    context = _context(
        membership, firmware=firmware, error=error, locked=locked, locked_url=f"{devices_url}?locked={firmware.version}",
        running=Device.objects.filter(product=membership.product, firmware_version=firmware.version).count(),
    )
    return htmx.dialog(request, "firmware/firmware_delete_dialog.html", context, name="firmware-delete-dialog")


# ---------------------------------------------------------------------------------------------
# Release: choose groups → "Next" → confirmation with the impact → "Release this firmware"


def _release_request(membership, firmware, form) -> dict:
    """The release a valid form asks for, as arguments of `release_plan` and `firmware_release`.

    A member restricted to groups has no product default or intelligent field: they stay as they are.
    """
    return {
        "firmware": firmware,
        "groups": form.cleaned_data["groups"],
        "product_default": form.cleaned_data.get("product_default"),
        "intelligent": form.cleaned_data.get("intelligent"),
        "membership": membership,
    }


def _rollout_url(product, rollout) -> str:
    return reverse("firmware:rollout", kwargs={"product": product.slug, "rollout_id": rollout.pk})


def _live_rollout(product):
    """The product's live rollout, without a query when there is none."""
    return rollouts.live_rollout(product) if product.live_rollout_id else None


def _release_form_dialog(request, membership, firmware, form, *, refused=False):
    live = _live_rollout(membership.product)
    released = (
        membership.product.default_firmware_id == firmware.id
        or Group.objects.filter(product=membership.product, released_firmware=firmware).exists()
    )
    devices_url = reverse("devices:list", kwargs={"product": membership.product.slug})
    context = _context(
        membership, firmware=firmware, form=form, proven=services.ever_reported_running(firmware), released=released,
        development_url=f"{devices_url}?development=true",
        live_rollout=live, live_rollout_url=_rollout_url(membership.product, live) if live else None,
        staged=form.is_bound and form.data.get("how", "all_at_once") != "all_at_once",
    )
    return htmx.dialog(
        request, "firmware/firmware_release_dialog.html", context, name="firmware-release-dialog", refused=refused
    )


@login_required
@require_GET
@htmx.vary_on_htmx
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
@htmx.vary_on_htmx
def firmware_release_confirm(request, product, version):
    membership = access.membership_for(request.user, product, write=True)
    firmware = _firmware(membership, version)
    data = request.POST if request.method == "POST" else request.GET
    form = forms.ReleaseForm(data, membership=membership)
    if not form.is_valid():
        return _release_form_dialog(request, membership, firmware, form, refused=True)
    release = _release_request(membership, firmware, form)
    try:
        spec = form.rollout_spec(membership)
        if request.method == "POST":
            plan = services.firmware_release(**release, rollout=spec, actor=request.user)
            product = membership.product
            if spec is not None:
                product.refresh_from_db(fields=["live_rollout"])
                message = (f"Started the staged rollout of v{firmware.version}: {spec.summary}." if spec.starts_at is None
                           else f"Scheduled the staged rollout of v{firmware.version}: {spec.summary}.")
                next_url = _rollout_url(product, product.live_rollout) if product.live_rollout_id else _list_url(product)
                return htmx.finished(request, message=message, events=EVENTS, next=next_url)
            verb = "Released" if plan.releases_anything else "Unreleased"
            return htmx.finished(request, message=f"{verb} v{firmware.version}.", events=EVENTS, next=_list_url(product))
        plan = services.release_plan(**release, rollout=spec)
        plan.check()
        if plan.is_empty:
            raise ValidationError(f"Choose the groups to release v{firmware.version} to, or make it the product default.")
    except ValidationError as error:
        _add_errors(form, error)
        return _release_form_dialog(request, membership, firmware, form, refused=True)

    # The whole fleet's figures (kept for the release that follows, see ReleasePlan.impact), or
    # those of the devices a member restricted to groups sees.
    restricted = membership.restricted_group_ids() is not None
    measured = plan.impact(Device.objects.visible_to(membership) if restricted else None)
    impact = measured.as_json()
    stages = []
    if spec is not None:
        by_stage = measured.by_stage or {}
        stages = [{"number": index + 1, "label": stage.label, "devices": by_stage.get(index, 0), "spec": stage}
                  for index, stage in enumerate(spec.stages)]
    gates = {(stage.max_failure_percent, stage.min_updated, stage.soak) for stage in spec.stages} if spec else set()
    gate = spec.stages[0] if spec else None
    shown = [group for group in plan.groups_after if access.shown_group_name(membership, group.name) == group.name]
    context = _context(
        membership, firmware=firmware, form=form, plan=plan, impact=impact, query=data.urlencode(),
        target_groups=shown, target_groups_hidden=len(plan.groups_after) - len(shown),
        spec=spec, stages=stages, gate=gate, same_gate=len(gates) <= 1,
        gate_percent=f"{gate.max_failure_percent.normalize():f}" if gate else None,
        judged_after=rollouts.judged_after(float(gate.max_failure_percent), gate.min_updated) if gate else None,
        soak_minutes=int(gate.soak.total_seconds() // 60) if gate else None,
        timeout_minutes=int(spec.timeout.total_seconds() // 60) if spec else None,
        rollout_data=form.rollout_data(),
    )
    return htmx.dialog(
        request, "firmware/firmware_release_confirm_dialog.html", context, name="firmware-release-confirm-dialog"
    )


# ---------------------------------------------------------------------------------------------
# The device page's firmware section


def _section_context(membership, device) -> dict:
    from firmware.rollout_views import device_rollout_sentence

    return _context(membership, device=device, device_url=_device_url(membership.product, device),
                    rollout_sentence=device_rollout_sentence(membership, device))


@login_required
@require_GET
@htmx.vary_on_htmx
def device_firmware(request, product, device_id):
    membership = access.membership_for(request.user, product)
    device = Device.objects.get_for_member(membership, device_id)
    if not request.htmx:
        return redirect(_device_url(membership.product, device))
    return render(request, "firmware/device_firmware.html", _section_context(membership, device))


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def device_lock(request, product, device_id):
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.get_for_member(membership, device_id)
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
                return htmx.finished(
                    request, message=f"Locked {device} to v{version}.", events=EVENTS,
                    next=_device_url(membership.product, device),
                )
        if not form.errors:
            preview = services.device_target_preview(device=device, locked=version, membership=membership)
    context = _section_context(membership, device) | {"form": form, "preview": preview, "versions": versions}
    return htmx.dialog(
        request, "firmware/device_lock_dialog.html", context, name="device-lock-dialog", refused=bool(form.errors)
    )


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def device_unlock(request, product, device_id):
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.get_for_member(membership, device_id)
    if request.method == "POST":
        services.device_lock(device=device, version=None, actor=request.user)
        return htmx.finished(
            request, message=f"Unlocked {device}.", events=EVENTS, next=_device_url(membership.product, device)
        )
    preview = services.device_target_preview(device=device, locked=None, membership=membership)
    context = _section_context(membership, device) | {
        "preview": preview,
        "title": f"Unlock {device}",
        "action": reverse("firmware:device_unlock", kwargs={"product": membership.product.slug, "device_id": device.device_id}),
        "confirm": "Unlock",
        "explanation": f"The device stops being held at v{device.desired_firmware_version} and follows its groups and the product default again.",
    }
    return htmx.dialog(request, "firmware/device_change_dialog.html", context, name="device-change-dialog")


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def device_development(request, product, device_id):
    """Mark or unmark a development device (the dialog offers the opposite of its state)."""
    membership = access.membership_for(request.user, product, write=True)
    device = Device.objects.get_for_member(membership, device_id)
    development = not device.development
    if request.method == "POST":
        development = request.POST.get("development") in {"true", "on", "1"}
        services.device_development_set(device=device, development=development, actor=request.user)
        message = f"Marked {device} as a development device." if development else f"{device} is no longer a development device."
        return htmx.finished(request, message=message, events=EVENTS, next=_device_url(membership.product, device))
    preview = services.device_target_preview(device=device, development=development, membership=membership)
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
    return htmx.dialog(request, "firmware/device_change_dialog.html", context, name="device-change-dialog")

