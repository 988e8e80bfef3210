"""/products/<slug>/webhooks/: add (secret shown once), send test, delete, the delivery log."""

import json

import pytest

from console import webhooks
from console.models import AuditEvent, Webhook, WebhookDelivery
from tests.conftest import HTMX

pytestmark = pytest.mark.django_db

PAGE = "/products/acme/webhooks/"
URL = "https://ci.example.com/fleet-events"


@pytest.fixture
def hook(personas):
    return webhooks.webhook_create(product=personas.product, url=URL, description="CI", actor=personas.admin)


def test_the_empty_page_says_what_to_do_and_offers_the_form(client_for, personas):
    page = client_for(personas.admin).get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert "No webhooks yet. Add the HTTPS address" in html
    assert 'id="id_url"' in html and "Add webhook" in html
    assert 'href="/products/acme/webhooks/" aria-current="page"' in html
    assert page["Cache-Control"].startswith("max-age=0")


def test_adding_a_webhook_shows_its_secret_once(client_for, personas):
    client = client_for(personas.admin)
    response = client.post(PAGE, {"url": URL, "description": "CI"})
    assert response.status_code == 200
    hook = Webhook.objects.get(product=personas.product)
    assert (hook.url, hook.description, hook.created_by) == (URL, "CI", personas.admin)
    html = response.content.decode()
    assert "Copy this signing secret now" in html and f'value="{hook.secret}"' in html
    assert hook.secret not in client.get(PAGE).content.decode()
    assert AuditEvent.objects.filter(action="webhook.create", actor=personas.admin).exists()


def test_adding_with_htmx_answers_the_form_region_with_the_secret_and_refreshes_the_list(client_for, personas):
    response = client_for(personas.admin).post(PAGE, {"url": URL}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<section id="webhook-create">')
    assert Webhook.objects.get().secret in html
    assert json.loads(response["HX-Trigger"]) == {"webhooksChanged": {}}


def test_an_http_address_is_refused_next_to_the_field_and_nothing_is_stored(client_for, personas):
    response = client_for(personas.admin).post(PAGE, {"url": "http://example.com/h", "description": "x"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="url-errors"' in html and "Use https://" in html and 'value="http://example.com/h"' in html
    assert not Webhook.objects.exists()


def test_an_htmx_refusal_is_a_200_fragment_with_the_error_and_no_event(client_for, personas):
    response = client_for(personas.admin).post(PAGE, {"url": "not an address"}, **HTMX)
    assert response.status_code == 200 and "HX-Trigger" not in response
    html = response.content.decode()
    assert "<html" not in html and "Enter a complete address" in html and 'aria-invalid="true"' in html
    assert not Webhook.objects.exists()


def test_send_test_event_with_htmx_queues_it_and_says_so_without_a_reload(client_for, personas, hook):
    response = client_for(personas.admin).post(f"{PAGE}{hook.pk}/test/", **HTMX)
    assert response.status_code == 204
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert delivery.event == "webhook.test" and delivery.status == "pending"
    events = json.loads(response["HX-Trigger"])
    assert events["webhooksChanged"] == {}
    assert events["showMessage"]["value"].startswith(f"Test event queued (delivery {delivery.pk})")


def test_send_test_event_without_htmx_redirects_to_the_page(client_for, personas, hook):
    response = client_for(personas.admin).post(f"{PAGE}{hook.pk}/test/")
    assert response.status_code == 302 and response["Location"] == PAGE
    assert WebhookDelivery.objects.filter(webhook=hook, event="webhook.test").count() == 1


def test_send_test_event_takes_post_only(client_for, personas, hook):
    assert client_for(personas.admin).get(f"{PAGE}{hook.pk}/test/").status_code == 405
    assert not WebhookDelivery.objects.exists()


def test_the_log_shows_each_delivery_and_polls_while_one_is_pending(client_for, personas, hook):
    delivery = webhooks.webhook_send_test(webhook=hook, actor=personas.admin)
    client = client_for(personas.admin)
    html = client.get(PAGE, **HTMX).content.decode()
    assert html.lstrip().startswith('<div id="webhook-list"') and "<html" not in html
    assert 'hx-trigger="webhooksChanged from:body, every 3s"' in html
    assert f'id="delivery-{delivery.pk}"' in html and "Not sent yet" in html

    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=6, last_status_code=503,
                                                         last_error="HTTP 503: down for maintenance")
    html = client.get(PAGE, **HTMX).content.decode()
    assert 'hx-trigger="webhooksChanged from:body"' in html and "every 3s" not in html
    assert "HTTP 503" in html and "down for maintenance" in html and ">Failed<" in html


def test_the_list_reads_a_constant_number_of_queries(client_for, personas, hook, django_assert_max_num_queries):
    for n in range(3):
        extra = webhooks.webhook_create(product=personas.product, url=f"https://example.com/{n}", actor=personas.admin)
        for _ in range(3):
            webhooks.webhook_send_test(webhook=extra, actor=personas.admin)
    client = client_for(personas.admin)
    with django_assert_max_num_queries(8):
        assert client.get(PAGE, **HTMX).status_code == 200


def test_delete_asks_first_in_a_dialog_then_deletes(client_for, personas, hook):
    client = client_for(personas.admin)
    webhooks.webhook_send_test(webhook=hook, actor=personas.admin)
    dialog = client.get(f"{PAGE}{hook.pk}/delete/", **HTMX)
    html = dialog.content.decode()
    assert dialog.status_code == 200 and html.startswith("<dialog data-modal") and "1 pending delivery" in html
    assert Webhook.objects.filter(pk=hook.pk).exists()

    response = client.post(f"{PAGE}{hook.pk}/delete/", **HTMX)
    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert list(events) == ["webhooksChanged", "showMessage", "closeModal"]
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.delete").exists()


def test_delete_without_javascript_is_a_page_and_a_redirect(client_for, personas, hook):
    client = client_for(personas.admin)
    assert "Delete this webhook?" in client.get(f"{PAGE}{hook.pk}/delete/").content.decode()
    response = client.post(f"{PAGE}{hook.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == PAGE
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("persona", ["developer", "support", "viewer", "restricted"])
def test_other_members_get_403_and_no_link(client_for, personas, persona, hook):
    client = client_for(getattr(personas, persona))
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"url": "https://example.com/x"}).status_code == 403
    assert client.post(f"{PAGE}{hook.pk}/test/", **HTMX).status_code == 403
    assert client.post(f"{PAGE}{hook.pk}/delete/").status_code == 403
    assert list(Webhook.objects.all()) == [hook] and not WebhookDelivery.objects.exists()
    assert "/webhooks/" not in client.get("/products/acme/team/").content.decode()


def test_outsiders_get_404_even_for_their_own_products_path_with_our_webhook(client_for, personas, hook):
    client = client_for(personas.outsider)
    assert client.get(PAGE).status_code == 404
    assert client.post(f"{PAGE}{hook.pk}/test/").status_code == 404
    assert client.post(f"{PAGE}{hook.pk}/delete/").status_code == 404
    assert client.post(f"/products/other/webhooks/{hook.pk}/delete/").status_code == 404
    assert client.post(f"/products/other/webhooks/{hook.pk}/test/").status_code == 404
    assert Webhook.objects.filter(pk=hook.pk).exists() and not WebhookDelivery.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_activity_page_tells_webhook_changes(client_for, personas, hook):
    html = client_for(personas.admin).get("/products/acme/activity/?kind=webhook").content.decode()
    assert f"added the webhook {URL}" in html
