"""Webhooks: a product's HTTPS endpoints for rollout events, signed, delivered by the task queue.

`emit()` is called inside the transaction that makes the change: the deliveries and their tasks
are rows written in that same transaction, so a rollback sends nothing and a worker that was down
catches up. Each attempt is one task (console.tasks.deliver_webhook); a failed attempt records what
it got and enqueues the next one with `run_after` (BACKOFF), until MAX_ATTEMPTS.

Receivers check `Fleet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
with `verify_signature()` (or its few lines in their own language; README, "Webhooks").
"""

import hashlib
import hmac
import ipaddress
import json
import time
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from console.api.parsing import timestamp
from console.models import AuditEvent, Webhook, WebhookDelivery

EVENTS = (
    "rollout.scheduled",
    "rollout.started",
    "rollout.stage_opened",
    "rollout.halted",
    "rollout.paused",
    "rollout.resumed",
    "rollout.advanced",
    "rollout.completed",
    "rollout.aborted",
    "rollout.rolled_back",
    "webhook.test",
)

TIMEOUT_SECONDS = 5
# Seconds to wait after the 1st, 2nd, ... failed attempt; the 6th failure gives up.
BACKOFF = (30, 120, 600, 3600, 6 * 3600)
MAX_ATTEMPTS = len(BACKOFF) + 1
MAX_WEBHOOKS_PER_PRODUCT = 10
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
USER_AGENT = "FleetConsole-Webhooks/1"


# ---------------------------------------------------------------------------------------------
# URL rules


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_url(url: str) -> str:
    """The URL, stripped, if webhooks may be sent to it; a ValidationError on `url` otherwise."""
    url = (url or "").strip()
    if not url:
        raise ValidationError({"url": ["Enter the address that should receive the events, starting with https://."]})
    if len(url) > 500:
        raise ValidationError({"url": ["Use an address of at most 500 characters."]})
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError({"url": ["Enter a complete address such as https://example.com/fleet-events (https only)."]}) from None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError({"url": ["Leave the user name and password out of the address; check the Fleet-Signature header instead."]})
    if parts.scheme == "http":
        if not _is_loopback(parts.hostname or ""):
            raise ValidationError({"url": ["Use https://: webhooks are sent over HTTPS only, so that the events and their signatures cannot be read or changed on the way."]})
        if not settings.WEBHOOKS_ALLOW_LOOPBACK:
            raise ValidationError({"url": ["Use https://: plain http:// to this machine is allowed only on a development server."]})
    return url


# ---------------------------------------------------------------------------------------------
# Signatures


def sign(secret: str, body: bytes, at: int) -> str:
    """The Fleet-Signature header for this body sent at unix time `at`."""
    digest = hmac.new(secret.encode(), str(at).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes | str, tolerance: int = 300, now: float | None = None) -> bool:
    """Whether `header` (Fleet-Signature) signs this raw request body with this secret, and was made
    within `tolerance` seconds of now (an old, replayed delivery fails). Check the body exactly as
    received, before parsing it."""
    if isinstance(body, str):
        body = body.encode()
    at, signatures = None, []
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            at = int(value)
        elif key == "v1":
            signatures.append(value)
    if at is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - at) > tolerance:
        return False
    expected = sign(secret, body, at).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


# ---------------------------------------------------------------------------------------------
# Emitting events


def _deliver(webhook: Webhook, *, event: str, data: dict) -> WebhookDelivery:
    from console.tasks import deliver_webhook

    now = timezone.now()
    delivery = WebhookDelivery.objects.create(webhook=webhook, event=event, created_at=now, next_attempt_at=now)
    delivery.payload = {
        "id": delivery.pk,
        "event": event,
        "created_at": timestamp(now),
        "product": webhook.product.slug,
        "data": data,
    }
    delivery.save(update_fields=["payload"])
    deliver_webhook.enqueue(delivery.pk)
    return delivery


@transaction.atomic
def emit(*, product, event: str, data: dict) -> list[WebhookDelivery]:
    """Queue `event` for every active webhook of the product. Call it inside the transaction of the
    change it reports: nothing is sent if that rolls back. `data` must be JSON-serializable."""
    if event not in EVENTS:
        raise ValueError(f"Unknown webhook event {event!r}; add it to console.webhooks.EVENTS")
    json.dumps(data)  # refuse what the payload column could not store, here rather than at commit
    webhooks = Webhook.objects.filter(product=product, active=True).select_related("product")
    return [_deliver(webhook, event=event, data=data) for webhook in webhooks]


# ---------------------------------------------------------------------------------------------
# Services: one per action, for the console, the API and anything else.


@transaction.atomic
def webhook_create(*, product, url: str, description: str = "", actor) -> Webhook:
    """A new active webhook. Its `secret` is on the returned object: show it once."""
    url = validate_url(url)
    description = (description or "").strip()
    if len(description) > 255:
        raise ValidationError({"description": ["Use at most 255 characters."]})
    existing = Webhook.objects.select_for_update().filter(product=product)
    if existing.filter(url=url).exists():
        raise ValidationError({"url": ["This product already sends events to this address."]})
    if existing.count() >= MAX_WEBHOOKS_PER_PRODUCT:
        raise ValidationError({"url": [f"A product has at most {MAX_WEBHOOKS_PER_PRODUCT} webhooks; delete one first."]})
    webhook = Webhook.objects.create(product=product, url=url, description=description,
                                     created_by=actor if getattr(actor, "pk", None) else None)
    AuditEvent.record(product=product, actor=actor, action="webhook.create", obj=webhook, webhook_id=webhook.pk, url=url)
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor) -> None:
    """Delete the webhook and its delivery log; deliveries still queued are dropped."""
    AuditEvent.record(product=webhook.product, actor=actor, action="webhook.delete", obj=webhook,
                      webhook_id=webhook.pk, url=webhook.url)
    webhook.delete()


@transaction.atomic
def webhook_send_test(*, webhook: Webhook, actor) -> WebhookDelivery:
    """Queue a `webhook.test` event for this one webhook (active or not)."""
    delivery = _deliver(webhook, event="webhook.test", data={
        "message": "A test event from Fleet Console. Check its Fleet-Signature with your webhook's secret.",
        "sent_by": getattr(actor, "username", None),
    })
    AuditEvent.record(product=webhook.product, actor=actor, action="webhook.test", obj=webhook,
                      webhook_id=webhook.pk, delivery_id=delivery.pk)
    return delivery


# ---------------------------------------------------------------------------------------------
# Delivery (run by the task)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not an instruction: following it could lead a signed POST anywhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxies from the environment: the URL rules above are about where the POST really goes.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def _post(url: str, body: bytes, headers: dict) -> tuple[int | None, str]:
    """POST once: (status code or None, error text; empty when it was a 2xx)."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        excerpt = error.read(200).decode("utf-8", "replace").strip() if error.fp else ""
        reason = f"HTTP {error.code}" + (f": {excerpt}" if excerpt else f" {error.reason}")
        if 300 <= error.code < 400:
            reason = f"HTTP {error.code}: redirects are not followed; give the final address."
        return error.code, reason
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            return None, f"No answer within {TIMEOUT_SECONDS} seconds."
        return None, f"Could not connect: {reason}"
    except TimeoutError:
        return None, f"No answer within {TIMEOUT_SECONDS} seconds."
    except Exception as error:  # any other broken answer is a failed attempt, never a crashed retry chain
        return None, f"{type(error).__name__}: {error}"


def delivery_attempt(delivery_id: int) -> str:
    """Send a pending delivery once and record the outcome; on failure queue the next attempt (or
    give up after MAX_ATTEMPTS). Returns the delivery's status (or "gone")."""
    from console.tasks import deliver_webhook

    delivery = WebhookDelivery.objects.select_related("webhook__product").filter(pk=delivery_id).first()
    if delivery is None:
        return "gone"  # its webhook was deleted meanwhile
    if delivery.status != WebhookDelivery.Status.PENDING:
        return delivery.status
    webhook = delivery.webhook
    try:
        url = validate_url(webhook.url)  # the rules may have changed since it was created
    except ValidationError as refused:
        code, error = None, " ".join(refused.messages)
        retry = False
    else:
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Fleet-Event": delivery.event,
            "Fleet-Delivery": str(delivery.pk),
            "Fleet-Signature": sign(webhook.secret, body, int(time.time())),
        }
        code, error = _post(url, body, headers)
        retry = True
    with transaction.atomic():
        # The webhook may have been deleted while the request was out; then there is nothing to record.
        if not WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).exists():
            return "gone"
        now = timezone.now()
        delivery.attempts += 1
        delivery.last_status_code = code
        delivery.last_error = error[:500]
        if not error:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = WebhookDelivery.Status.DELIVERED, now, None
        elif retry and delivery.attempts < MAX_ATTEMPTS:
            delivery.next_attempt_at = now + timedelta(seconds=BACKOFF[delivery.attempts - 1])
            deliver_webhook.using(run_after=delivery.next_attempt_at).enqueue(delivery.pk)
        else:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
        delivery.save(update_fields=["attempts", "last_status_code", "last_error", "status", "delivered_at", "next_attempt_at"])
    return delivery.status
