"""Webhook deliveries made by the real task worker to a real HTTP receiver on 127.0.0.1."""

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from console import webhooks
from console.models import Webhook, WebhookDelivery
from tests.console.webhook_receiver import Receiver
from tests.tasks import run_due_tasks, waiting_tasks

# The worker commits and checks its connection as in production: transactional tests.
pytestmark = pytest.mark.django_db(transaction=True)

TASK = "console.tasks.deliver_webhook"


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def hook(personas, receiver):
    return webhooks.webhook_create(product=personas.product, url=receiver.url, description="CI", actor=personas.admin)


def make_waiting_tasks_due() -> None:
    """Time passes: every queued attempt is due now."""
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now() - timedelta(seconds=1))


def test_an_emitted_event_reaches_the_receiver_signed_with_the_webhooks_secret(personas, hook, receiver):
    with transaction.atomic():
        [delivery] = webhooks.emit(product=personas.product, event="rollout.started", data={"rollout": 7, "version": 3})
    assert run_due_tasks() == 1

    [got] = receiver.received
    assert got.path == "/hooks/fleet"
    assert got.headers["Fleet-Event"] == "rollout.started"
    assert got.headers["Fleet-Delivery"] == str(delivery.pk)
    assert got.headers["Content-Type"] == "application/json"
    assert webhooks.verify_signature(hook.secret, got.headers["Fleet-Signature"], got.body)
    assert not webhooks.verify_signature("whsec_someone_else", got.headers["Fleet-Signature"], got.body)
    body = json.loads(got.body)
    assert body["id"] == delivery.pk and body["event"] == "rollout.started" and body["product"] == "acme"
    assert body["data"] == {"rollout": 7, "version": 3}
    assert body["created_at"].endswith("Z")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == ("delivered", 1, 200, "")
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    assert waiting_tasks(TASK) == []


def test_each_active_webhook_of_the_product_gets_its_own_delivery_and_no_other_product_does(personas, hook, receiver):
    second = webhooks.webhook_create(product=personas.product, url=receiver.url + "/2", actor=personas.admin)
    Webhook.objects.create(product=personas.product, url=receiver.url + "/off", active=False)
    webhooks.webhook_create(product=personas.other_product, url=receiver.url + "/other", actor=personas.outsider)

    deliveries = webhooks.emit(product=personas.product, event="rollout.completed", data={})
    assert {d.webhook_id for d in deliveries} == {hook.pk, second.pk}
    assert run_due_tasks() == 2
    assert sorted(r.path for r in receiver.received) == ["/hooks/fleet", "/hooks/fleet/2"]


def test_emit_inside_a_rolled_back_transaction_sends_nothing(personas, hook, receiver):
    with pytest.raises(RuntimeError), transaction.atomic():
        webhooks.emit(product=personas.product, event="rollout.halted", data={"reason": "failures"})
        raise RuntimeError("the rollout change failed")

    assert WebhookDelivery.objects.count() == 0
    assert waiting_tasks(TASK) == []
    assert run_due_tasks() == 0
    assert receiver.received == []


def test_deliveries_queued_while_no_worker_runs_are_sent_when_one_starts(personas, hook, receiver):
    for event in ("rollout.started", "rollout.stage_opened", "rollout.completed"):
        webhooks.emit(product=personas.product, event=event, data={})
    assert len(waiting_tasks(TASK)) == 3 and receiver.received == []

    assert run_due_tasks() == 3
    assert [r.headers["Fleet-Event"] for r in receiver.received] == ["rollout.started", "rollout.stage_opened", "rollout.completed"]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_failed_attempt_is_recorded_and_retried_with_backoff(personas, hook, receiver):
    receiver.statuses = [500, 500, 204]
    [delivery] = webhooks.emit(product=personas.product, event="rollout.aborted", data={})

    before = timezone.now()
    run_due_tasks()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error == "HTTP 500: receiver is down"
    [retry] = waiting_tasks(TASK)
    assert retry.args_kwargs["args"] == [delivery.pk]
    assert retry.run_after == delivery.next_attempt_at
    assert before + timedelta(seconds=30) <= retry.run_after <= timezone.now() + timedelta(seconds=30)
    assert run_due_tasks() == 0  # not due yet

    make_waiting_tasks_due()
    before = timezone.now()
    run_due_tasks()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 2)
    [retry] = waiting_tasks(TASK)
    assert before + timedelta(minutes=2) <= retry.run_after <= timezone.now() + timedelta(minutes=2)

    make_waiting_tasks_due()
    run_due_tasks()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == ("delivered", 3, 204, "")
    assert len(receiver.received) == 3
    assert {r.body for r in receiver.received} == {receiver.received[0].body}  # the same event each time
    assert waiting_tasks(TASK) == []


def test_it_gives_up_after_the_sixth_failed_attempt(personas, hook, receiver):
    receiver.statuses = [503]
    [delivery] = webhooks.emit(product=personas.product, event="rollout.rolled_back", data={})
    waits = []
    for _attempt in range(webhooks.MAX_ATTEMPTS):
        make_waiting_tasks_due()
        before = timezone.now()
        run_due_tasks()
        for task in waiting_tasks(TASK):
            waits.append(round((task.run_after - before).total_seconds()))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 6, 503)
    assert delivery.next_attempt_at is None
    assert waits == [30, 120, 600, 3600, 21600]
    assert len(receiver.received) == 6
    assert waiting_tasks(TASK) == []


def test_an_unreachable_receiver_is_a_failed_attempt_with_the_reason(personas, receiver):
    receiver.stop()
    hook = webhooks.webhook_create(product=personas.product, url=receiver.url, actor=personas.admin)
    receiver.start()  # keep the fixture's stop() working; the hook points at the old, closed port
    [delivery] = webhooks.emit(product=personas.product, event="rollout.started", data={})
    run_due_tasks()
    delivery.refresh_from_db()
    assert hook.url != receiver.url
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error.startswith("Could not connect")
    assert len(waiting_tasks(TASK)) == 1


def test_a_redirect_is_not_followed(personas, hook, receiver):
    receiver.statuses = [302]
    [delivery] = webhooks.emit(product=personas.product, event="rollout.started", data={})
    run_due_tasks()
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302 and "redirects are not followed" in delivery.last_error
    assert len(receiver.received) == 1


def test_a_delivery_whose_webhook_was_deleted_is_dropped(personas, hook, receiver):
    webhooks.emit(product=personas.product, event="rollout.started", data={})
    webhooks.webhook_delete(webhook=hook, actor=personas.admin)
    assert run_due_tasks() == 1
    assert receiver.received == [] and WebhookDelivery.objects.count() == 0


def test_a_test_event_goes_to_its_webhook_only(personas, hook, receiver):
    webhooks.webhook_create(product=personas.product, url=receiver.url + "/other", actor=personas.admin)
    delivery = webhooks.webhook_send_test(webhook=hook, actor=personas.admin)
    run_due_tasks()
    [got] = receiver.received
    assert got.path == "/hooks/fleet" and got.headers["Fleet-Event"] == "webhook.test"
    assert json.loads(got.body)["data"]["sent_by"] == "administrator"
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_the_signature_is_fresh_for_each_attempt(personas, hook, receiver):
    receiver.statuses = [500, 200]
    webhooks.emit(product=personas.product, event="rollout.resumed", data={})
    run_due_tasks()
    make_waiting_tasks_due()
    run_due_tasks()
    for got in receiver.received:
        stamp = int(got.headers["Fleet-Signature"].split(",")[0].removeprefix("t="))
        assert abs(time.time() - stamp) < 60
        assert webhooks.verify_signature(hook.secret, got.headers["Fleet-Signature"], got.body)
