"""Who may do what, on every route of the console and the API, for every persona.

The table below names each route once; `test_every_route_is_in_the_table` walks the URL
configuration, so a new route fails the suite until someone decides who may use it.
Statuses per persona kind:
- read: every member 200; outsider 404; anonymous sign-in redirect (console) or 401 (API).
- write: Owner, Administrator and Developer get through (any status but 401/403/404/405/5xx);
  Support and View-only 403; outsider 404; anonymous sign-in redirect or 401.
- team: like write, but only the Owner and Administrators get through.
The member restricted to one group gets what `RESTRICTED` says (their group's objects only).
"""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from console.models import AccessToken, AuditEvent, Membership, Webhook
from devices.models import Device
from firmware import services as firmware_services
from firmware.models import Rollout
from groups import services
from firmware.services import rollouts
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db

DEVICE = "0000000000000000000000aa"
PERSONAS = ["owner", "administrator", "developer", "support", "viewer", "partner", "outsider", "anonymous"]

# name: (kind, method, path, body). {p} product slug, {d} device id, {g} the partner's group
# (id in the console, name in the API), {m} the viewer's membership id, {e} the partner's batch edit.
CONSOLE = {
    "product_home": ("read", "get", "/products/{p}/", None),
    "team": ("read", "get", "/products/{p}/team/", None),
    "team_invite": ("team", "post", "/products/{p}/team/invite/", {"identifier": "nobody", "role": "viewer"}),
    "team_member": ("team", "post", "/products/{p}/team/{m}/", {"role": "support"}),
    "activity": ("read", "get", "/products/{p}/activity/", None),
    "activity_undo": ("write", "get", "/products/{p}/activity/{e}/undo/", None),
    "devices:export": ("read", "get", "/products/{p}/devices/export.csv", None),
    "groups:import": ("write", "get", "/products/{p}/groups/import/", None),
    "devices:list": ("read", "get", "/products/{p}/devices/", None),
    "devices:edit_groups": ("write", "post", "/products/{p}/devices/edit-groups/", {"ids": ["{d}"], "add": ["{gname}"]}),
    "devices:detail": ("read", "get", "/products/{p}/devices/{d}/", None),
    "devices:quarantine": ("write", "post", "/products/{p}/devices/quarantine/", {"approve": "{d}"}),
    "devices:groups": ("write", "post", "/products/{p}/devices/{d}/groups/", {"groups": ["{gname}"]}),
    "devices:key": ("write", "post", "/products/{p}/devices/{d}/key/", {}),
    "groups:list": ("read", "get", "/products/{p}/groups/", None),
    "groups:detail": ("read", "get", "/products/{p}/groups/{g}/", None),
    "groups:create": ("write", "post", "/products/{p}/groups/new/", {"name": "matrix-new", "color": "#112233"}),
    "groups:edit": ("write", "post", "/products/{p}/groups/{g}/edit/", {"name": "{gname}", "description": "x", "color": "#112233"}),
    "groups:delete": ("write", "post", "/products/{p}/groups/{g}/delete/", {}),
    "firmware:list": ("read", "get", "/products/{p}/firmware/", None),
    "firmware:upload": ("write", "post", "/products/{p}/firmware/upload/", {"version": "9", "title": "x"}),
    "firmware:progress": ("read", "get", "/products/{p}/firmware/progress/", None),
    "firmware:lint": ("read", "get", "/products/{p}/firmware/lint/", None),
    "firmware:release": ("write", "get", "/products/{p}/firmware/3/release/", None),
    "firmware:release_confirm": ("write", "post", "/products/{p}/firmware/3/release/confirm/", {"groups": ["{g}"]}),
    "firmware:delete": ("write", "post", "/products/{p}/firmware/3/delete/", {}),
    "firmware:rollouts": ("read", "get", "/products/{p}/firmware/rollouts/", None),
    "firmware:rollout": ("read", "get", "/products/{p}/firmware/rollouts/{r}/", None),
    "firmware:rollout_action": ("write", "post", "/products/{p}/firmware/rollouts/{r}/pause/", {}),
    "firmware:device_section": ("read", "get", "/products/{p}/firmware/devices/{d}/", None),
    "firmware:device_lock": ("write", "post", "/products/{p}/firmware/devices/{d}/lock/", {"version": "3"}),
    "firmware:device_unlock": ("write", "post", "/products/{p}/firmware/devices/{d}/unlock/", {}),
    "firmware:device_development": ("write", "post", "/products/{p}/firmware/devices/{d}/development/", {"development": "true"}),
    "webhooks": ("team", "get", "/products/{p}/webhooks/", None),
    "webhook_test": ("team", "post", "/products/{p}/webhooks/{w}/test/", {}),
    "webhook_delete": ("team", "get", "/products/{p}/webhooks/{w}/delete/", None),
}
API = {
    "api:list_groups": ("read", "get", "/v1/products/{p}/groups", None),
    "api:create_group": ("write", "post", "/v1/products/{p}/groups", {"name": "matrix-new"}),
    "api:get_group": ("read", "get", "/v1/products/{p}/groups/{gname}", None),
    "api:edit_group": ("write", "put", "/v1/products/{p}/groups/{gname}", {"description": "x"}),
    "api:delete_group": ("write", "delete", "/v1/products/{p}/groups/{gname}", None),
    "api:list_devices": ("read", "get", "/v1/products/{p}/devices", None),
    "api:devices_edit_groups": ("write", "put", "/v1/products/{p}/devices",
                               {"action": "groups", "devices": ["{d}"], "metadata": {"add": ["{gname}"]}}),
    "api:import_devices": ("write", "post", "/v1/products/{p}/devices", {"id": "0000000000000000000000cc"}),
    "api:get_device": ("read", "get", "/v1/products/{p}/devices/{d}", None),
    "api:update_device": ("write", "put", "/v1/products/{p}/devices/{d}", {"notes": "x"}),
    "api:remove_device": ("write", "delete", "/v1/products/{p}/devices/{d}", None),
    "api:unclaim_device": ("write", "delete", "/v1/products/{p}/devices/{d}/owner", None),
    "api:get_product": ("read", "get", "/v1/products/{p}", None),
    "api:list_team": ("read", "get", "/v1/products/{p}/team", None),
    "api:issue_device_key": ("write", "post", "/v1/products/{p}/devices/{d}/key", None),
    "api:list_firmware": ("read", "get", "/v1/products/{p}/firmware", None),
    "api:upload_firmware": ("write", "post", "/v1/products/{p}/firmware", {}),
    "api:get_firmware": ("read", "get", "/v1/products/{p}/firmware/3", None),
    "api:edit_firmware": ("write", "put", "/v1/products/{p}/firmware/3", {"title": "x"}),
    "api:delete_firmware": ("write", "delete", "/v1/products/{p}/firmware/3", None),
    "api:download_firmware": ("read", "get", "/v1/products/{p}/firmware/3/binary", None),
    "api:release_firmware": ("write", "put", "/v1/products/{p}/firmware/release", {"version": 3, "groups": ["{gname}"]}),
    "api:export_devices": ("read", "get", "/v1/products/{p}/devices.csv", None),
    "api:import_memberships": ("write", "post", "/v1/products/{p}/memberships/import", {}),
    "api:preview_undo": ("write", "get", "/v1/products/{p}/events/{e}/undo", None),
    "api:apply_undo": ("write", "post", "/v1/products/{p}/events/{e}/undo", None),
    "api:release_lint": ("read", "get", "/v1/products/{p}/release_lint", None),
    "api:impact": ("read", "get", "/v1/products/{p}/impact?action=edit_groups_for_firmware&firmware_version=3", None),
    "api:list_webhooks": ("team", "get", "/v1/products/{p}/webhooks", None),
    "api:create_webhook": ("team", "post", "/v1/products/{p}/webhooks", {"url": "https://example.com/new"}),
    "api:delete_webhook": ("team", "delete", "/v1/products/{p}/webhooks/{w}", None),
    "api:test_webhook": ("team", "post", "/v1/products/{p}/webhooks/{w}/test", None),
    "api:list_deliveries": ("team", "get", "/v1/products/{p}/webhooks/{w}/deliveries", None),
    "api:list_rollouts": ("read", "get", "/v1/products/{p}/rollouts", None),
    "api:create_rollout": ("write", "post", "/v1/products/{p}/rollouts", {"version": 3, "groups": ["{gname}"], "stages": "100%"}),
    "api:get_rollout": ("read", "get", "/v1/products/{p}/rollouts/{r}", None),
    "api:rollout_impact": ("read", "get", "/v1/products/{p}/rollouts/{r}/impact?action=abort", None),
    "api:pause_rollout": ("write", "post", "/v1/products/{p}/rollouts/{r}/pause", None),
    "api:resume_rollout": ("write", "post", "/v1/products/{p}/rollouts/{r}/resume", {"acknowledge": True}),
    "api:advance_rollout": ("write", "post", "/v1/products/{p}/rollouts/{r}/advance", None),
    "api:abort_rollout": ("write", "post", "/v1/products/{p}/rollouts/{r}/abort", None),
    "api:rollback_rollout": ("write", "post", "/v1/products/{p}/rollouts/{r}/rollback", None),
}
# The device gateway: a device's own credentials, never a member's (test below).
GATEWAY = {
    "api:handshake_endpoint": ("post", "/v1/device/handshake", {"firmware_version": 3}),
    "api:update_failed": ("post", "/v1/device/update_failed", {"version": 3, "reason": "x"}),
    "api:download": ("get", "/v1/device/firmware/3?expires=9999999999&signature=x", None),
}
# Routes outside any product, tested elsewhere: sign-in and out, the user's own tokens, the
# API's token endpoints, schema and docs.
NOT_PRODUCT_SCOPED = {
    "home", "login", "logout", "tokens", "token_revoke", "api:openapi-json", "api:openapi-view",
    "api:create_token", "api:revoke_current_token", "api:api-root", *GATEWAY,
    # The caller's own user, tokens, products and devices (tests/api/test_users_tokens_products.py).
    "api:get_user", "api:list_tokens", "api:revoke_all_tokens", "api:revoke_token", "api:list_products",
    "api:lookup_serial_number", "api:list_reachable_devices", "api:get_reachable_device",
}
# The partner (a Developer restricted to group partner-fleet) on writes: 403 where a change
# would reach beyond their group (creating, renaming or deleting groups, uploading or deleting
# firmware, importing or removing devices); through elsewhere, on their group's device.
RESTRICTED_FORBIDDEN = {
    "groups:create", "groups:edit", "groups:delete", "firmware:upload", "firmware:delete", "devices:quarantine",
    "api:create_group", "api:edit_group", "api:delete_group", "api:import_devices", "api:remove_device",
    "api:upload_firmware", "api:delete_firmware", "api:edit_firmware",
    # The world's rollout releases to a group outside the partner's.
    "api:pause_rollout", "api:resume_rollout", "api:advance_rollout", "api:abort_rollout", "api:rollback_rollout",
    "firmware:rollout_action",
}


def route_names():
    names = set()

    def walk(resolver, namespace=None):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    continue
                walk(pattern, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)

    walk(get_resolver())
    return names


def test_every_route_is_in_the_table():
    assert route_names() == set(CONSOLE) | set(API) | NOT_PRODUCT_SCOPED


def expected(name, kind, persona, api):
    if persona == "anonymous":
        return {401} if api else {302}
    if persona == "outsider":
        return {404}
    allowed = {"read": PERSONAS[:6], "write": ["owner", "administrator", "developer", "partner"],
               "team": ["owner", "administrator"]}[kind]
    if persona == "partner" and name in RESTRICTED_FORBIDDEN:
        return {403}
    if persona in allowed:
        return None  # through: checked as "not refused"
    return {403}


@pytest.fixture
def world(personas):
    cache.clear()
    device = DeviceFactory(product=personas.product, device_id=DEVICE, firmware_version=3)
    personas.restricted_group.memberships.create(device=device)
    FirmwareFactory(product=personas.product, version=3)
    # The partner's own batch edit (so theirs to undo): out of their group and back.
    for change in ("remove", "add"):
        services.devices_edit_groups(product=personas.product, devices=Device.objects.filter(pk=device.pk),
                                     actor=personas.restricted, **{change: [personas.restricted_group]})
    return {
        "e": AuditEvent.objects.filter(action="device.groups").latest("id").pk,
        "p": personas.product.slug,
        "d": DEVICE,
        "g": personas.restricted_group.pk,
        "gname": personas.restricted_group.name,
        "m": Membership.objects.get(user=personas.viewer).pk,
        "w": Webhook.objects.create(product=personas.product, url="https://example.com/hooks").pk,
        "r": _live_rollout(personas).pk,
    }


def _live_rollout(personas):
    """A running rollout of v4 (a version of its own, so deleting v3 stays possible) to a group
    outside the partner's."""
    firmware = FirmwareFactory(product=personas.product, version=4, ever_released=True)
    group = GroupFactory(product=personas.product, name="rollout-fleet")
    spec = rollouts.rollout_spec(product=personas.product, stages="50%, 100%")
    firmware_services.firmware_release(firmware=firmware, groups=[group], rollout=spec, actor=personas.admin)
    return Rollout.objects.get(firmware=firmware)


def fill(value, world, *, api):
    if isinstance(value, str):
        if api:
            value = value.replace("{g}", "{gname}")
        return value.format(**world)
    if isinstance(value, list):
        return [fill(item, world, api=api) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, world, api=api) for key, item in value.items()}
    return value


def call(client, method, path, body, *, api, headers):
    if method == "get":
        return client.get(path, **headers)
    if api:
        return client.generic(method.upper(), path, json.dumps(body or {}), content_type="application/json", **headers)
    return client.post(path, body or {}, **headers)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(CONSOLE) + sorted(API))
def test_each_persona_gets_what_their_role_allows(personas, world, name, persona):
    api = name.startswith("api:")
    kind, method, path, body = (API if api else CONSOLE)[name]
    client, headers = Client(), {}
    if persona != "anonymous":
        user = get_user_model().objects.get(username=persona)
        if api:
            _token, raw, _ = AccessToken.issue(user=user)
            headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
        else:
            client.force_login(user)
    response = call(client, method, fill(path, world, api=api), fill(body, world, api=api), api=api, headers=headers)

    wanted = expected(name, kind, persona, api)
    if wanted is None:
        assert response.status_code not in {401, 403, 404, 405} and response.status_code < 500, response.status_code
    else:
        assert response.status_code in wanted, response.status_code
    if wanted == {302}:
        assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("persona", PERSONAS[:-1])
@pytest.mark.parametrize("name", sorted(GATEWAY))
def test_no_members_token_or_session_acts_as_a_device(personas, world, name, persona):
    method, path, body = GATEWAY[name]
    user = get_user_model().objects.get(username=persona)
    _token, raw, _ = AccessToken.issue(user=user)
    client = Client()
    client.force_login(user)

    response = call(client, method, path, body, api=True, headers={"HTTP_AUTHORIZATION": f"Bearer {raw}"})

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert Device.objects.get(device_id=DEVICE).last_handshake_at is None
