"""/v1/products/:product/webhooks: create, list, delete, test, deliveries; who may."""

import pytest

from console import webhooks
from console.models import AccessToken, AuditEvent, Membership, Webhook, WebhookDelivery
from tests.api.conftest import ApiClient, error_of

pytestmark = pytest.mark.django_db

URL = "https://ci.example.com/fleet-events"


@pytest.fixture
def hook(personas):
    return webhooks.webhook_create(product=personas.product, url=URL, description="CI", actor=personas.admin)


def test_an_administrator_creates_a_webhook_and_gets_its_secret_once(api, personas):
    response = api("admin").post("/v1/products/acme/webhooks", {"url": URL, "description": "CI"})
    assert response.status_code == 201
    body = response.json()["webhook"]
    stored = Webhook.objects.get(product=personas.product)
    assert body == {"id": stored.pk, "url": URL, "description": "CI", "active": True, "created_by": "administrator",
                    "created_at": body["created_at"], "secret": stored.secret}
    assert AuditEvent.objects.filter(action="webhook.create", actor=personas.admin).exists()

    listed = api("admin").get(f"/v1/products/{personas.product.pk}/webhooks").json()
    assert listed == {"webhooks": [{key: value for key, value in body.items() if key != "secret"}]}
    assert stored.secret not in api("admin").get("/v1/products/acme/webhooks").content.decode()


def test_the_owner_may_too_and_a_form_encoded_create_works(personas):
    owner = Membership.objects.get(product=personas.product, role="owner").user
    response = ApiClient(AccessToken.issue(user=owner)[1]).form("POST", "/v1/products/acme/webhooks", "url=https%3A%2F%2Fexample.com%2Fh")
    assert response.status_code == 201 and response.json()["webhook"]["url"] == "https://example.com/h"


def test_an_http_url_is_a_400_on_the_url_field_and_nothing_is_stored(api):
    response = api("admin").post("/v1/products/acme/webhooks", {"url": "http://example.com/h"})
    assert response.status_code == 400
    body = error_of(response)
    assert body["error"] == "invalid_request" and "Use https://" in body["fields"]["url"][0]
    assert not Webhook.objects.exists()


def test_an_unknown_field_or_a_missing_url_is_a_400(api):
    assert error_of(api("admin").post("/v1/products/acme/webhooks", {"url": URL, "secret": "mine"}))["fields"] == {"secret": ["Unknown field."]}
    assert error_of(api("admin").post("/v1/products/acme/webhooks", {}))["fields"] == {"url": ["This field is required."]}
    assert not Webhook.objects.exists()


def test_deleting_a_webhook_is_a_204_and_removes_it(api, hook):
    assert api("admin").delete(f"/v1/products/acme/webhooks/{hook.pk}").status_code == 204
    assert not Webhook.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.delete").exists()


def test_a_test_event_is_queued_and_answered_with_its_delivery(api, hook):
    response = api("admin").post(f"/v1/products/acme/webhooks/{hook.pk}/test")
    assert response.status_code == 202
    delivery = response.json()["delivery"]
    stored = WebhookDelivery.objects.get()
    assert delivery["id"] == stored.pk and delivery["event"] == "webhook.test" and delivery["status"] == "pending"
    assert delivery["payload"]["product"] == "acme" and delivery["attempts"] == 0


def test_deliveries_are_listed_newest_first_and_filtered_by_status(api, personas, hook):
    first = webhooks.emit(product=personas.product, event="rollout.started", data={"rollout": 1})[0]
    second = webhooks.emit(product=personas.product, event="rollout.completed", data={"rollout": 1})[0]
    WebhookDelivery.objects.filter(pk=first.pk).update(status="failed", attempts=6, last_status_code=500, last_error="HTTP 500")

    listed = api("admin").get(f"/v1/products/acme/webhooks/{hook.pk}/deliveries").json()["deliveries"]
    assert [d["id"] for d in listed] == [second.pk, first.pk]
    assert listed[1] | {"created_at": None, "next_attempt_at": None} == {
        "id": first.pk, "webhook_id": hook.pk, "event": "rollout.started", "status": "failed", "attempts": 6,
        "last_status_code": 500, "last_error": "HTTP 500", "next_attempt_at": None, "delivered_at": None,
        "created_at": None, "payload": first.payload,
    }
    failed = api("admin").get(f"/v1/products/acme/webhooks/{hook.pk}/deliveries", {"status": "failed"}).json()
    assert [d["id"] for d in failed["deliveries"]] == [first.pk]
    assert [d["id"] for d in api("admin").get(f"/v1/products/acme/webhooks/{hook.pk}/deliveries", {"limit": 1}).json()["deliveries"]] == [second.pk]
    assert api("admin").get(f"/v1/products/acme/webhooks/{hook.pk}/deliveries", {"status": "lost"}).status_code == 400


@pytest.mark.parametrize("persona", ["developer", "support", "viewer", "restricted"])
def test_other_members_get_403_and_change_nothing(api, persona, hook):
    client = api(persona)
    for response in (
        client.get("/v1/products/acme/webhooks"),
        client.post("/v1/products/acme/webhooks", {"url": "https://example.com/x"}),
        client.delete(f"/v1/products/acme/webhooks/{hook.pk}"),
        client.post(f"/v1/products/acme/webhooks/{hook.pk}/test"),
        client.get(f"/v1/products/acme/webhooks/{hook.pk}/deliveries"),
    ):
        assert response.status_code == 403
        assert error_of(response)["error_description"] == "Only the product's Owner and Administrators manage webhooks."
    assert list(Webhook.objects.all()) == [hook] and not WebhookDelivery.objects.exists()


def test_outsiders_get_404_and_another_products_webhook_is_a_404(api, personas, hook):
    outsider = api("outsider")
    for response in (
        outsider.get("/v1/products/acme/webhooks"),
        outsider.post("/v1/products/acme/webhooks", {"url": "https://example.com/x"}),
        outsider.delete(f"/v1/products/acme/webhooks/{hook.pk}"),
        outsider.post(f"/v1/products/acme/webhooks/{hook.pk}/test"),
        outsider.get(f"/v1/products/acme/webhooks/{hook.pk}/deliveries"),
        # the outsider's own product, naming acme's webhook
        outsider.delete(f"/v1/products/other/webhooks/{hook.pk}"),
        outsider.get(f"/v1/products/other/webhooks/{hook.pk}/deliveries"),
    ):
        assert response.status_code == 404 and error_of(response)["error"] == "not_found"
    assert Webhook.objects.filter(pk=hook.pk).exists() and not WebhookDelivery.objects.exists()


def test_without_a_token_it_is_a_401(api):
    assert api(None).get("/v1/products/acme/webhooks").status_code == 401


def test_the_webhook_endpoints_are_in_the_openapi_schema_with_examples(client):
    schema = client.get("/v1/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/v1/products/{product}/webhooks"]) == {"get", "post"}
    assert set(paths["/v1/products/{product}/webhooks/{webhook_id}"]) == {"delete"}
    assert set(paths["/v1/products/{product}/webhooks/{webhook_id}/test"]) == {"post"}
    assert set(paths["/v1/products/{product}/webhooks/{webhook_id}/deliveries"]) == {"get"}
    schemas = schema["components"]["schemas"]
    assert schemas["WebhookCreated"]["examples"][0]["secret"].startswith("whsec_")
    assert "secret" not in schemas["WebhookOut"]["properties"]
    assert schemas["DeliveryOut"]["examples"][0]["event"] == "rollout.halted"
    assert schemas["WebhookCreate"]["examples"][0]["url"].startswith("https://")
