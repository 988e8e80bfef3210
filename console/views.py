from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from console import access, forms, htmx, services, webhooks
from console import activity as activity_sentences
from console.models import AccessToken, AuditEvent, Membership, Role, Webhook, WebhookDelivery
from devices.models import Device, normalize_device_id
from groups import undo
from groups.models import Group


class LoginView(auth_views.LoginView):
    """Django's sign-in; guesses are throttled by django-axes (console.signin)."""

    redirect_authenticated_user = True


@login_required
def home(request):
    memberships = list(Membership.objects.for_user(request.user).select_related("product").order_by("product__name"))
    if len(memberships) == 1:
        return redirect("product_home", product=memberships[0].product.slug)
    return render(request, "console/home.html", {"memberships": memberships})


@login_required
def product_home(request, product):
    membership = access.membership_for(request.user, product)
    devices = Device.objects.visible_to(membership)
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "home",
        "device_count": (
            membership.product.device_count if membership.restricted_group_ids() is None else devices.count()
        ),
        "online_count": devices.filter(online=True).count(),
        "group_count": Group.objects.visible_to(membership).count(),
    }
    return render(request, "console/product_home.html", context)


# Team ---------------------------------------------------------------------------------------

def _team_context(membership, **extra):
    members = Membership.objects.team(membership.product_id)
    return {
        "membership": membership,
        "product": membership.product,
        "nav": "team",
        "members": members,
        "groups": Group.objects.filter(product=membership.product).order_by("name"),
        "roles": Role.choices,
        "invite_form": extra.pop("invite_form", None) or forms.InviteForm(),
        **extra,
    }


@login_required
def team(request, product):
    membership = access.membership_for(request.user, product)
    return render(request, "console/team.html", _team_context(membership))


@login_required
@require_POST
def team_invite(request, product):
    membership = access.membership_for(request.user, product, manage_team=True)
    form = forms.InviteForm(request.POST)
    if form.is_valid():
        try:
            invited = services.membership_invite(
                product=membership.product, identifier=form.cleaned_data["identifier"],
                role=form.cleaned_data["role"], actor=request.user,
            )
        except ValidationError as error:
            forms.add_service_errors(form, error)
        else:
            messages.success(request, f"{invited.user.username} joined the team as {invited.get_role_display()}.")
            return redirect("team", product=membership.product.slug)
    return render(request, "console/team.html", _team_context(membership, invite_form=form), status=400)


@login_required
@require_POST
def team_member(request, product, member_id):
    membership = access.membership_for(request.user, product, manage_team=True)
    member = get_object_or_404(Membership.objects.select_related("user", "product"), pk=member_id, product=membership.product)
    form = forms.MemberForm(request.POST, product=membership.product)
    try:
        if request.POST.get("remove"):
            services.membership_remove(membership=member, actor=request.user)
            messages.success(request, f"{member.user.username} was removed from the team.")
        elif form.is_valid():
            member = services.membership_change_role(membership=member, role=form.cleaned_data["role"], actor=request.user)
            services.membership_restrict(membership=member, groups=form.cleaned_data["groups"], actor=request.user)
            messages.success(request, f"{member.user.username} is now {member.get_role_display()}.")
        else:
            messages.error(request, f"{member.user.username} was not changed: choose a role and groups from the lists.")
    except ValidationError as error:
        messages.error(request, f"{member.user.username} was not changed: " + " ".join(error.messages))
    return redirect("team", product=membership.product.slug)


# Personal API tokens ------------------------------------------------------------------------

def _framing_product(request) -> dict:
    """The product whose sidebar frames a page that belongs to no product (the API tokens): the
    one the person came from (`?product=`), if they are a member of it."""
    slug = request.GET.get("product") or ""
    membership = Membership.objects.for_user(request.user).select_related("product").filter(product__slug=slug).first()
    return {"membership": membership, "product": membership.product} if slug and membership else {}


@never_cache  # it shows a new token's raw value once
@login_required
def tokens(request):
    created = None
    form = forms.TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, raw, _refresh = services.token_create(
                user=request.user, name=form.cleaned_data["name"], expires_in=form.cleaned_data["days"] * 86400
            )
        except ValidationError as error:
            forms.add_service_errors(form, error)
        else:
            created = {"token": token, "raw": raw}
            form = forms.TokenForm()
    context = {
        "form": form,
        "created": created,
        "tokens": AccessToken.objects.filter(user=request.user).select_related("user").order_by("-created_at"),
        "now": timezone.now(),
        "nav": "tokens",
        **_framing_product(request),
    }
    return render(request, "console/tokens.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def token_revoke(request, token_id):
    token = get_object_or_404(AccessToken, pk=token_id, user=request.user)
    services.token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name or token.pk}” was revoked; scripts using it now get 401.")
    framing = _framing_product(request)
    return redirect(f"{reverse('tokens')}?product={framing['product'].slug}" if framing else reverse("tokens"))


# Activity -----------------------------------------------------------------------------------

ACTIVITY_KINDS = {
    "group": "Groups",
    "device": "Device groups",
    "firmware": "Firmware",
    "team": "Team",
    "webhook": "Webhooks",
}


@login_required
def activity(request, product):
    membership = access.membership_for(request.user, product)
    events = AuditEvent.objects.filter(product=membership.product).select_related("actor")
    if membership.restricted_group_ids() is not None:
        # A member limited to some groups sees only their own actions, never the wider fleet's.
        events = events.filter(actor=request.user)
    actor = request.GET.get("actor", "").strip().replace("\x00", "")
    kind = request.GET.get("kind", "")
    device = request.GET.get("device", "").strip().lower()
    obj = request.GET.get("object", "").strip().replace("\x00", "")
    device_error = ""
    if actor:
        events = events.filter(actor__username=actor)
    if kind in ACTIVITY_KINDS:
        events = events.filter(action__startswith=f"{kind}.")
    if obj:
        events = events.filter(object_repr__icontains=obj)
    if device:
        if normalize_device_id(device):
            events = events.touching_device(device)
        else:
            device_error = "A device ID is 24 hexadecimal characters (0-9, a-f)."
            events = events.none()
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    sentences = activity_sentences.Sentences(membership)
    for event in page.object_list:
        event.sentence = sentences.describe(event)
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "activity",
        "page": page,
        "kinds": ACTIVITY_KINDS,
        "filters": {"actor": actor, "kind": kind, "device": device, "object": obj},
        "device_error": device_error,
        "actors": Membership.objects.filter(product=membership.product).values_list("user__username", flat=True).order_by("user__username"),
        "devices_url": sentences.devices_url,
        "can_undo": membership.can_write,
        "undoable": undo.UNDOABLE,
    }
    return render(request, "console/activity.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def activity_undo(request, product, event_id):
    """Undo a batch group edit: a preview of what would be reverted and its firmware impact,
    then the undo itself (recorded as its own event)."""
    membership = access.membership_for(request.user, product, write=True)
    event = undo.undoable_event(membership, event_id)
    activity_url = reverse("activity", kwargs={"product": membership.product.slug})
    if request.method == "POST":
        try:
            changed = undo.edit_undo(membership=membership, event=event, actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect(activity_url) if not request.htmx else htmx.finished(
                request, message=" ".join(error.messages), next=activity_url
            )
        return htmx.finished(
            request, message=f"Undone: {changed:,} device{'' if changed == 1 else 's'} changed back.",
            events=("devicesChanged", "activityChanged"), next=activity_url,
        )
    context = {
        "membership": membership,
        "product": membership.product,
        "nav": "activity",
        "event": event,
        "plan": undo.edit_undo_preview(membership=membership, event=event),
        "next": activity_url,
    }
    return htmx.dialog(request, "console/activity_undo_dialog.html", context, name="undo-dialog")


# Webhooks -----------------------------------------------------------------------------------

RECENT_DELIVERIES = 20


def _webhooks_context(membership, **extra):
    recent = WebhookDelivery.objects.order_by("-created_at", "-id")[:RECENT_DELIVERIES]
    hooks = (
        Webhook.objects.filter(product=membership.product)
        .select_related("created_by")
        .prefetch_related(Prefetch("deliveries", queryset=recent, to_attr="recent_deliveries"))
    )
    return {
        "membership": membership,
        "product": membership.product,
        "nav": "webhooks",
        "webhooks": hooks,
        # While anything is pending the list polls itself; the answer without pending stops it.
        "pending": WebhookDelivery.objects.filter(
            webhook__product=membership.product, status=WebhookDelivery.Status.PENDING
        ).exists(),
        "events": webhooks.EVENTS,
        "form": extra.pop("form", None) or forms.WebhookForm(),
        **extra,
    }


@never_cache  # a created webhook's secret is shown once
@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def webhook_list(request, product):
    """The webhooks with their recent deliveries, and "Add webhook" (which shows the secret once)."""
    membership = access.membership_for_webhooks(request.user, product)
    if request.method == "GET":
        return render(request, htmx.partial(request, "console/webhooks.html", "webhook-list"), _webhooks_context(membership))
    form = forms.WebhookForm(request.POST)
    created = None
    if form.is_valid():
        try:
            created = webhooks.webhook_create(
                product=membership.product, url=form.cleaned_data["url"],
                description=form.cleaned_data["description"], actor=request.user,
            )
        except ValidationError as error:
            forms.add_service_errors(form, error)
        else:
            form = forms.WebhookForm()
    context = _webhooks_context(membership, form=form, created=created)
    if htmx.is_htmx(request):
        # htmx swaps only 2xx answers: a refused form comes back with 200 and its errors.
        response = render(request, "console/webhooks.html#webhook-create", context)
        return trigger_client_event(response, "webhooksChanged", {}) if created else response
    return render(request, "console/webhooks.html", context, status=400 if form.errors else 200)


def _webhook_for(membership, webhook_id) -> Webhook:
    return get_object_or_404(Webhook.objects.select_related("product"), pk=webhook_id, product=membership.product)


@login_required
@require_POST
def webhook_test(request, product, webhook_id):
    """"Send test event": queued for the worker; the delivery log shows how it went."""
    membership = access.membership_for_webhooks(request.user, product)
    delivery = webhooks.webhook_send_test(webhook=_webhook_for(membership, webhook_id), actor=request.user)
    message = f"Test event queued (delivery {delivery.pk}). Its result appears in the delivery log."
    if request.htmx:
        response = trigger_client_event(HttpResponse(status=204), "webhooksChanged", {})
        return htmx.message_event(response, message)
    messages.success(request, message)
    return redirect("webhooks", product=membership.product.slug)


@login_required
@require_http_methods(["GET", "POST"])
@htmx.vary_on_htmx
def webhook_delete(request, product, webhook_id):
    """Delete a webhook after a confirmation dialog."""
    membership = access.membership_for_webhooks(request.user, product)
    hook = _webhook_for(membership, webhook_id)
    list_url = reverse("webhooks", kwargs={"product": membership.product.slug})
    if request.method == "POST":
        webhooks.webhook_delete(webhook=hook, actor=request.user)
        return htmx.finished(request, message=f"Webhook {hook.url} was deleted; it gets no more events.",
                             events=("webhooksChanged",), next=list_url)
    context = {"membership": membership, "product": membership.product, "nav": "webhooks", "webhook": hook,
               "pending": hook.deliveries.filter(status=WebhookDelivery.Status.PENDING).count()}
    return htmx.dialog(request, "console/webhook_delete_dialog.html", context, name="webhook-delete-dialog")
