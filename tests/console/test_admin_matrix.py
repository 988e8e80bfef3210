"""Who may do what in the admin: every registered model's changelist, add, change, delete and
action URL, for every persona (all of them staff with *every* model permission, so the product
role alone decides) and an object of each product.

The models come from the admin's registry: `test_every_admin_model_is_in_the_table` fails for a
new one until someone writes down who may see and change it. Kinds of access (Membership.allows):
"view" any member, "write" Developer and above (a restricted member within their groups),
"product" unrestricted Developer and above, "team" Owner and Administrators, "own" the token's
user, "superuser" nobody here, None nobody through the admin.
"""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group as UserGroup
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client

from console.models import AccessToken, AuditEvent, Membership, Role, Webhook, WebhookDelivery
from firmware.models import FirmwareUpdate, Rollout
from groups.models import GroupMembership
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PERSONAS = ["owner", "administrator", "developer", "support", "viewer", "partner", "outsider"]
PRODUCTS = ["acme", "other"]

# model: (who sees it, add, change, delete)
RULES = {
    "console.product": ("view", None, "team", None),
    "console.membership": ("view", "team", "team", "team"),
    "console.accesstoken": ("own", None, None, None),
    "console.auditevent": ("view", None, None, None),
    "console.webhook": ("team", None, None, None),
    "console.webhookdelivery": ("team", None, None, None),
    "devices.device": ("view", None, "write", "product"),
    "groups.group": ("view", "product", "product", "product"),
    "firmware.firmware": ("view", None, "product", None),
    "firmware.firmwareupdate": ("view", None, None, None),
    "firmware.rollout": ("view", None, None, None),
    "auth.user": ("superuser", "superuser", "superuser", "superuser"),
    "auth.group": ("superuser", "superuser", "superuser", "superuser"),
    "axes.accessattempt": ("superuser", "superuser", "superuser", "superuser"),
    "axes.accesslog": ("superuser", "superuser", "superuser", "superuser"),
    "axes.accessfailurelog": ("superuser", "superuser", "superuser", "superuser"),
}
# action: (the kind of access it takes, or the model's delete rule for "delete", and its form data
# beyond the selection; {group}/{spare} are filled per product).
ACTIONS = {
    "delete_selected": ("delete", {"post": "yes"}),
    "add_to_group": ("write", {"group": "{spare}", "apply": "Confirm"}),
    "remove_from_group": ("write", {"group": "{group}", "apply": "Confirm"}),
    "revoke": ("own", {}),
    "cleanup_expired_attempts": ("superuser", {}),
}
WRITE_ROLES = {Role.OWNER, Role.ADMINISTRATOR, Role.DEVELOPER}


def registry():
    return {f"{model._meta.app_label}.{model._meta.model_name}": model_admin for model, model_admin in admin.site._registry.items()}


def test_every_admin_model_is_in_the_table():
    assert set(registry()) == set(RULES)


def test_every_admin_action_is_in_the_table():
    names = {name for model_admin in registry().values() for _func, name, _desc in model_admin._get_base_actions()}
    assert names == set(ACTIONS)


@pytest.fixture
def world(personas):
    """One object of every model in each product (in Acme, inside the partner's groups)."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    users = {user.username: user for user in get_user_model().objects.all()}
    other_viewer = UserFactory(username="other-viewer")
    MembershipFactory(user=other_viewer, product=personas.other_product, role=Role.VIEWER)
    permissions = list(Permission.objects.all())
    for username in PERSONAS:
        users[username].is_staff = True
        users[username].save(update_fields=["is_staff"])
        users[username].user_permissions.set(permissions)
    objects = {}
    for slug, product, group, member, actor in [
        ("acme", personas.product, personas.restricted_group, users["viewer"], users["partner"]),
        ("other", personas.other_product, GroupFactory(product=personas.other_product, name="other-group"), other_viewer, users["outsider"]),
    ]:
        spare = GroupFactory(product=product, name=f"{slug}-spare")
        if slug == "acme":
            Membership.objects.get(user=users["partner"]).restricted_groups.add(spare)
        device = DeviceFactory(product=product, firmware_version=1)
        group.memberships.create(device=device)
        firmware = FirmwareFactory(product=product, version=1)
        token_user = users["developer"] if slug == "acme" else users["outsider"]
        webhook = Webhook.objects.create(product=product, url=f"https://{slug}.example.com/hooks")
        objects[slug] = {
            "console.product": product,
            "console.membership": Membership.objects.get(user=member, product=product),
            "console.accesstoken": AccessToken.issue(user=token_user)[0],
            "console.auditevent": AuditEvent.record(product=product, actor=actor, action="matrix.test"),
            "console.webhook": webhook,
            "console.webhookdelivery": WebhookDelivery.objects.create(webhook=webhook, event="webhook.test"),
            "devices.device": device,
            "groups.group": group,
            "firmware.firmware": firmware,
            "firmware.firmwareupdate": FirmwareUpdate.objects.create(product=product, device=device, from_version=None, to_version=1),
            "firmware.rollout": Rollout.objects.create(product=product, firmware=firmware, seed=1, timeout=timedelta(hours=1),
                                                       status=Rollout.Status.COMPLETED),
            "auth.user": token_user,
            "auth.group": UserGroup.objects.create(name=f"{slug}-staff"),
            "axes.accessattempt": AccessAttempt.objects.create(username=f"{slug}-guess", ip_address="10.0.0.1", user_agent="x", failures_since_start=1),
            "axes.accesslog": AccessLog.objects.create(username=f"{slug}-guess", ip_address="10.0.0.1", user_agent="x"),
            "axes.accessfailurelog": AccessFailureLog.objects.create(username=f"{slug}-guess", ip_address="10.0.0.1", user_agent="x"),
            "_fill": {"{group}": str(group.pk), "{spare}": str(spare.pk)},
            "_token_user": token_user.username,
        }
    return objects


def role_in(persona, slug):
    if slug == "other":
        return (Role.OWNER, False) if persona == "outsider" else (None, False)
    if persona == "outsider":
        return None, False
    if persona == "partner":
        return Role.DEVELOPER, True
    return Role(persona), False


def allows(need, persona, slug, objects):
    role, restricted = role_in(persona, slug)
    if need == "own":
        return objects["_token_user"] == persona
    if need in (None, "superuser") or role is None:
        return False
    return {
        "view": True,
        "write": role in WRITE_ROLES,
        "product": role in WRITE_ROLES and not restricted,
        "team": role in {Role.OWNER, Role.ADMINISTRATOR},
    }[need]


def any_product_allows(need, persona, world):
    return any(allows(need, persona, slug, world[slug]) for slug in PRODUCTS)


def snapshot():
    models = [model for model in admin.site._registry] + [GroupMembership]
    return {model.__name__: sorted(map(repr, model.objects.values_list())) for model in models}


def refused_post(client, url, data):
    before = snapshot()
    response = client.post(url, data)
    assert snapshot() == before, url
    return response.status_code


def allowed_post(client, url, data):
    """The POST goes through (changing something, with an audit event); undone afterwards."""
    with transaction.atomic():
        before, events = snapshot(), AuditEvent.objects.count()
        response = client.post(url, data)
        changed = snapshot() != before
        audited = AuditEvent.objects.count() > events
        transaction.set_rollback(True)
    return response.status_code, changed, audited


def fill(data, objects):
    return {key: objects["_fill"].get(value, value) if isinstance(value, str) else value for key, value in data.items()}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("model", sorted(RULES))
def test_each_persona_gets_what_their_role_allows_in_the_admin(world, model, persona):
    model_admin = registry()[model]
    seen, add, change, delete = RULES[model]
    base = f"/admin/{model.replace('.', '/')}/"
    client = Client()
    client.force_login(get_user_model().objects.get(username=persona))

    assert client.get(base).status_code == (403 if seen == "superuser" else 200)
    assert client.get(f"{base}add/").status_code == (200 if any_product_allows(add, persona, world) else 403)
    if not any_product_allows(add, persona, world):
        assert refused_post(client, f"{base}add/", {}) == 403

    for slug in PRODUCTS:
        objects = world[slug]
        obj = objects[model]
        visible = allows(seen, persona, slug, objects)
        hidden = 403 if seen == "superuser" else 404
        listing = client.get(base).content.decode()
        if seen != "superuser":
            assert (f"{base}{obj.pk}/change/" in listing) == visible, (slug, "listed")

        page = client.get(f"{base}{obj.pk}/change/")
        assert page.status_code == (200 if visible else hidden), (slug, "change page")
        if visible:
            assert page.context["has_change_permission"] == allows(change, persona, slug, objects), (slug, "editable")
        if not (visible and allows(change, persona, slug, objects)):
            assert refused_post(client, f"{base}{obj.pk}/change/", {}) == (403 if visible else hidden), (slug, "change")

        may_delete = visible and allows(delete, persona, slug, objects)
        assert client.get(f"{base}{obj.pk}/delete/").status_code == (200 if may_delete else 403 if visible else hidden)
        if may_delete:
            status, changed, audited = allowed_post(client, f"{base}{obj.pk}/delete/", {"post": "yes"})
            assert (status, changed, audited) == (302, True, True), (slug, "delete")
        else:
            assert refused_post(client, f"{base}{obj.pk}/delete/", {"post": "yes"}) == (403 if visible else hidden)

        for _func, action, _desc in model_admin._get_base_actions():
            need, data = ACTIONS[action]
            need = delete if need == "delete" else need
            post = {"action": action, "_selected_action": [obj.pk], "index": 0, **fill(data, objects)}
            if visible and allows(need, persona, slug, objects):
                status, changed, audited = allowed_post(client, base, post)
                assert (status, changed, audited) == (302, True, True), (slug, action)
            else:
                assert refused_post(client, base, post) in {200, 302, 403}, (slug, action)
