"""*(ours)* `/v1/products/:product/webhooks`: a product's webhooks and their deliveries, through
console.webhooks. Owners and Administrators only; the secret is in the create answer alone."""

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import ConfigDict, Field

from console import access, webhooks
from console.api.errors import error_responses
from console.api.parsing import RequestSchema, Timestamp, timestamp
from console.models import Webhook, WebhookDelivery

router = Router()
WEBHOOKS = "/v1/products/{product}/webhooks"

WEBHOOK_EXAMPLE = {
    "id": 4,
    "url": "https://ci.example.com/fleet-events",
    "description": "Post rollout events to the release channel",
    "active": True,
    "created_by": "alice",
    "created_at": "2026-03-02T09:15:02.512Z",
}
DELIVERY_EXAMPLE = {
    "id": 118,
    "webhook_id": 4,
    "event": "rollout.halted",
    "status": "pending",
    "attempts": 2,
    "last_status_code": 503,
    "last_error": "HTTP 503: upstream unavailable",
    "next_attempt_at": "2026-03-02T09:20:04.001Z",
    "delivered_at": None,
    "created_at": "2026-03-02T09:17:31.870Z",
    "payload": {"id": 118, "event": "rollout.halted", "created_at": "2026-03-02T09:17:31.870Z", "product": "acme-tracker",
                "data": {"rollout": 9, "version": 12, "reason": "failure rate above the gate"}},
}


class WebhookOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [WEBHOOK_EXAMPLE]})

    id: int
    url: str
    description: str
    active: bool
    created_by: str | None = Field(description="Username of who created it (null once that account is gone).")
    created_at: Timestamp


class WebhookCreated(WebhookOut):
    model_config = ConfigDict(json_schema_extra={"examples": [{**WEBHOOK_EXAMPLE, "secret": "whsec_9f0c…"}]})

    secret: str = Field(description="Signs every delivery (Fleet-Signature). Returned only here: store it now.")


class WebhookList(Schema):
    webhooks: list[WebhookOut]


class WebhookEnvelope(Schema):
    webhook: WebhookCreated


class WebhookCreate(RequestSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://ci.example.com/fleet-events", "description": "Release channel"}]},
    )

    url: str = Field(description="https:// only (http:// to 127.0.0.1, ::1 or localhost on a development server).")
    description: str = Field("", description="What the webhook is for, at most 255 characters.")


class DeliveryOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [DELIVERY_EXAMPLE]})

    id: int
    webhook_id: int
    event: str = Field(description=f"One of {', '.join(webhooks.EVENTS)}.")
    status: str = Field(description="pending (queued or waiting for a retry), delivered, or failed (gave up).")
    attempts: int
    last_status_code: int | None = Field(description="The receiver's HTTP status at the last attempt (null: no answer).")
    last_error: str
    next_attempt_at: Timestamp
    delivered_at: Timestamp
    created_at: Timestamp
    payload: dict = Field(description="The JSON body sent: id, event, created_at, product, data.")


class DeliveryEnvelope(Schema):
    delivery: DeliveryOut


class DeliveryList(Schema):
    deliveries: list[DeliveryOut]


class DeliveryQuery(Schema):
    status: str | None = Field(None, pattern="^(pending|delivered|failed)$", description="Only deliveries in this status.")
    limit: int = Field(50, ge=1, le=100, description="How many, newest first (at most 100).")


def webhook_json(webhook: Webhook) -> dict:
    return {
        "id": webhook.pk,
        "url": webhook.url,
        "description": webhook.description,
        "active": webhook.active,
        "created_by": webhook.created_by.username if webhook.created_by else None,
        "created_at": timestamp(webhook.created_at),
    }


def delivery_json(delivery: WebhookDelivery) -> dict:
    return {
        "id": delivery.pk,
        "webhook_id": delivery.webhook_id,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": timestamp(delivery.next_attempt_at),
        "delivered_at": timestamp(delivery.delivered_at),
        "created_at": timestamp(delivery.created_at),
        "payload": delivery.payload,
    }


def _webhook(membership, webhook_id: int) -> Webhook:
    return get_object_or_404(Webhook.objects.select_related("product", "created_by"), pk=webhook_id, product=membership.product)


@router.get(WEBHOOKS, response={200: WebhookList, **error_responses(403, 404)}, summary="List webhooks")
def list_webhooks(request, product: str):
    """*(ours)* The product's webhooks, oldest first, without their secrets (Owners and Administrators)."""
    membership = access.membership_for_webhooks(request.user, product)
    hooks = Webhook.objects.filter(product=membership.product).select_related("created_by")
    return {"webhooks": [webhook_json(hook) for hook in hooks]}


@router.post(WEBHOOKS, response={201: WebhookEnvelope, **error_responses(403, 404)}, summary="Create a webhook")
def create_webhook(request, product: str, payload: WebhookCreate):
    """*(ours)* A new webhook for the product's rollout events. The answer holds its `secret`, the
    only time it is shown: receivers check each delivery's `Fleet-Signature` with it."""
    membership = access.membership_for_webhooks(request.user, product)
    hook = webhooks.webhook_create(product=membership.product, url=payload.url, description=payload.description,
                                   actor=request.user)
    return Status(201, {"webhook": {**webhook_json(hook), "secret": hook.secret}})


@router.delete(WEBHOOKS + "/{webhook_id}", response={204: None, **error_responses(403, 404)}, summary="Delete a webhook")
def delete_webhook(request, product: str, webhook_id: int):
    """*(ours)* The webhook and its delivery log; deliveries still waiting are not sent."""
    membership = access.membership_for_webhooks(request.user, product)
    webhooks.webhook_delete(webhook=_webhook(membership, webhook_id), actor=request.user)
    return Status(204, None)


@router.post(
    WEBHOOKS + "/{webhook_id}/test", response={202: DeliveryEnvelope, **error_responses(403, 404)},
    summary="Send a test event",
)
def test_webhook(request, product: str, webhook_id: int):
    """*(ours)* Queue a `webhook.test` event for this webhook; 202 with the delivery, whose outcome
    the deliveries list shows once the worker has sent it."""
    membership = access.membership_for_webhooks(request.user, product)
    delivery = webhooks.webhook_send_test(webhook=_webhook(membership, webhook_id), actor=request.user)
    return Status(202, {"delivery": delivery_json(delivery)})


@router.get(
    WEBHOOKS + "/{webhook_id}/deliveries", response={200: DeliveryList, **error_responses(403, 404)},
    summary="List a webhook's deliveries",
)
def list_deliveries(request, product: str, webhook_id: int, filters: Query[DeliveryQuery]):
    """*(ours)* The webhook's deliveries, newest first: status, attempts, the last answer and the next retry."""
    membership = access.membership_for_webhooks(request.user, product)
    deliveries = _webhook(membership, webhook_id).deliveries.all()
    if filters.status:
        deliveries = deliveries.filter(status=filters.status)
    return {"deliveries": [delivery_json(delivery) for delivery in deliveries[: filters.limit]]}
