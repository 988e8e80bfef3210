"""Webhook services, URL rules and signatures (console.webhooks)."""

import hashlib
import hmac

import pytest
from django.core.exceptions import ValidationError

from console import webhooks
from console.models import AuditEvent, Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def url_error(url: str) -> str:
    with pytest.raises(ValidationError) as refused:
        webhooks.validate_url(url)
    return " ".join(refused.value.message_dict["url"])


@pytest.mark.parametrize("url", ["https://example.com/hooks", "https://hooks.example.com:8443/a?b=c",
                                 "http://127.0.0.1:9000/x", "http://localhost/x", "http://[::1]:8080/"])
def test_it_accepts_https_and_loopback_http_in_development(url):
    assert webhooks.validate_url(f"  {url} ") == url


def test_it_refuses_plain_http_to_other_hosts_and_says_to_use_https():
    assert "Use https://" in url_error("http://example.com/hooks")
    assert "Use https://" in url_error("http://10.0.0.8/hooks")


def test_it_refuses_loopback_http_when_the_setting_is_off(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    assert "only on a development server" in url_error("http://127.0.0.1:9000/x")
    assert webhooks.validate_url("https://127.0.0.1/x") == "https://127.0.0.1/x"


@pytest.mark.parametrize("url", ["", "example.com/hooks", "ftp://example.com/x", "https://", "https://exa mple.com"])
def test_it_refuses_what_is_not_a_complete_address(url):
    assert "https://" in url_error(url)


def test_it_refuses_credentials_in_the_address():
    assert "Leave the user name and password out" in url_error("https://user:pw@example.com/x")


def test_creating_a_webhook_stores_it_with_a_random_secret_and_audits_it(personas):
    hook = webhooks.webhook_create(product=personas.product, url=" https://example.com/a ", description=" CI ", actor=personas.admin)
    other = webhooks.webhook_create(product=personas.product, url="https://example.com/b", actor=personas.admin)
    hook.refresh_from_db()
    assert (hook.url, hook.description, hook.active, hook.created_by) == ("https://example.com/a", "CI", True, personas.admin)
    assert hook.secret.startswith("whsec_") and len(hook.secret) == 54 and hook.secret != other.secret
    event = AuditEvent.objects.get(action="webhook.create", object_repr="https://example.com/a")
    assert event.actor == personas.admin and event.details == {"webhook_id": hook.pk, "url": "https://example.com/a"}
    assert hook.secret not in str(event.details)


def test_a_refused_create_stores_nothing(personas):
    with pytest.raises(ValidationError):
        webhooks.webhook_create(product=personas.product, url="http://example.com", actor=personas.admin)
    assert not Webhook.objects.exists() and not AuditEvent.objects.filter(action="webhook.create").exists()


def test_the_same_address_twice_in_a_product_is_refused(personas):
    webhooks.webhook_create(product=personas.product, url="https://example.com/a", actor=personas.admin)
    with pytest.raises(ValidationError, match="already sends events to this address"):
        webhooks.webhook_create(product=personas.product, url="https://example.com/a", actor=personas.admin)
    webhooks.webhook_create(product=personas.other_product, url="https://example.com/a", actor=personas.outsider)


def test_a_product_has_at_most_ten_webhooks(personas):
    for n in range(webhooks.MAX_WEBHOOKS_PER_PRODUCT):
        webhooks.webhook_create(product=personas.product, url=f"https://example.com/{n}", actor=personas.admin)
    with pytest.raises(ValidationError, match="at most 10 webhooks; delete one first"):
        webhooks.webhook_create(product=personas.product, url="https://example.com/11", actor=personas.admin)


def test_a_long_description_is_refused_on_its_field(personas):
    with pytest.raises(ValidationError) as refused:
        webhooks.webhook_create(product=personas.product, url="https://example.com/a", description="x" * 256, actor=personas.admin)
    assert refused.value.message_dict == {"description": ["Use at most 255 characters."]}


def test_deleting_a_webhook_removes_its_deliveries_and_audits_it(personas):
    hook = webhooks.webhook_create(product=personas.product, url="https://example.com/a", actor=personas.admin)
    hook_id = hook.pk
    webhooks.webhook_send_test(webhook=hook, actor=personas.admin)
    webhooks.webhook_delete(webhook=hook, actor=personas.admin)
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.delete", details__webhook_id=hook_id).exists()


def test_a_test_event_is_queued_and_audited(personas):
    hook = webhooks.webhook_create(product=personas.product, url="https://example.com/a", actor=personas.admin)
    delivery = webhooks.webhook_send_test(webhook=hook, actor=personas.admin)
    delivery.refresh_from_db()
    assert (delivery.event, delivery.status, delivery.attempts) == ("webhook.test", "pending", 0)
    assert delivery.payload["id"] == delivery.pk and delivery.payload["product"] == "acme"
    assert AuditEvent.objects.filter(action="webhook.test", details__delivery_id=delivery.pk).exists()


def test_emit_refuses_an_event_it_does_not_know(personas):
    with pytest.raises(ValueError, match="rollout.exploded"):
        webhooks.emit(product=personas.product, event="rollout.exploded", data={})


def test_emit_without_webhooks_queues_nothing(personas):
    assert webhooks.emit(product=personas.product, event="rollout.started", data={}) == []


def test_the_events_are_the_rollout_events_and_the_test_event():
    assert set(webhooks.EVENTS) == {
        "rollout.scheduled", "rollout.started", "rollout.stage_opened", "rollout.paused", "rollout.halted",
        "rollout.resumed", "rollout.advanced", "rollout.completed", "rollout.aborted", "rollout.rolled_back",
        "webhook.test",
    }


# Signatures ----------------------------------------------------------------------------------

SECRET = "whsec_test"
BODY = b'{"id":1,"event":"webhook.test"}'


def header(at: int, body: bytes = BODY, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def test_sign_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body():
    assert webhooks.sign(SECRET, BODY, 1_700_000_000) == header(1_700_000_000)


def test_a_fresh_signature_of_the_exact_body_verifies():
    assert webhooks.verify_signature(SECRET, header(1_700_000_000), BODY, now=1_700_000_100)
    assert webhooks.verify_signature(SECRET, header(1_700_000_000), BODY.decode(), now=1_700_000_000)


def test_a_changed_body_a_wrong_secret_or_a_mangled_header_does_not_verify():
    good = header(1_700_000_000)
    assert not webhooks.verify_signature(SECRET, good, BODY + b" ", now=1_700_000_000)
    assert not webhooks.verify_signature("whsec_other", good, BODY, now=1_700_000_000)
    for bad in ("", "t=1700000000", "v1=" + good.split("v1=")[1], "t=abc," + good.split(",")[1], good.replace("v1=", "v0=")):
        assert not webhooks.verify_signature(SECRET, bad, BODY, now=1_700_000_000)


def test_a_signature_older_or_newer_than_the_tolerance_does_not_verify():
    assert not webhooks.verify_signature(SECRET, header(1_700_000_000), BODY, now=1_700_000_301)
    assert not webhooks.verify_signature(SECRET, header(1_700_000_000), BODY, now=1_699_999_699)
    assert webhooks.verify_signature(SECRET, header(1_700_000_000), BODY, tolerance=600, now=1_700_000_500)


def test_any_of_several_v1_signatures_may_match():
    mixed = f"t=1700000000,v1={'0' * 64},{header(1_700_000_000).split(',')[1]}"
    assert webhooks.verify_signature(SECRET, mixed, BODY, now=1_700_000_000)
