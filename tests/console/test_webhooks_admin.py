"""The admin shows webhooks and their deliveries read-only, to the product's Owner and
Administrators (as the console does), never the secret, never another product's."""

import pytest

from console import webhooks
from console.models import Webhook
from tests.console.test_admin import make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooks(personas):
    ours = webhooks.webhook_create(product=personas.product, url="https://acme.example.com/h", actor=personas.admin)
    theirs = webhooks.webhook_create(product=personas.other_product, url="https://other.example.com/h", actor=personas.outsider)
    return ours, theirs, webhooks.webhook_send_test(webhook=ours, actor=personas.admin)


def test_an_administrator_sees_their_products_webhooks_and_deliveries_read_only(client, personas, hooks):
    ours, theirs, delivery = hooks
    client.force_login(make_staff(personas.admin))

    listing = client.get("/admin/console/webhook/").content.decode()
    assert "acme.example.com" in listing and "other.example.com" not in listing
    page = client.get(f"/admin/console/webhook/{ours.pk}/change/")
    assert page.status_code == 200 and page.context["has_change_permission"] is False
    assert ours.secret not in page.content.decode()
    assert client.get(f"/admin/console/webhookdelivery/{delivery.pk}/change/").status_code == 200
    assert client.get("/admin/console/webhook/add/").status_code == 403
    assert client.post(f"/admin/console/webhook/{ours.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/console/webhook/{ours.pk}/change/", {"url": "https://evil.example.com"}).status_code == 403
    assert Webhook.objects.get(pk=ours.pk).url == "https://acme.example.com/h"


def test_another_products_webhook_is_a_404(client, personas, hooks):
    _ours, theirs, _delivery = hooks
    client.force_login(make_staff(personas.admin))
    assert client.get(f"/admin/console/webhook/{theirs.pk}/change/").status_code == 404


@pytest.mark.parametrize("persona", ["developer", "support"])
def test_members_who_cannot_manage_webhooks_do_not_see_them(client, personas, persona, hooks):
    ours, _theirs, delivery = hooks
    client.force_login(make_staff(getattr(personas, persona)))
    listing = client.get("/admin/console/webhook/")
    assert listing.status_code == 200 and "acme.example.com" not in listing.content.decode()
    assert "example.com" not in client.get("/admin/console/webhookdelivery/").content.decode()
    assert client.get(f"/admin/console/webhook/{ours.pk}/change/").status_code == 404
    assert client.get(f"/admin/console/webhookdelivery/{delivery.pk}/change/").status_code == 404
