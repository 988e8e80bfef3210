"""The console side of staged rollouts: the release dialog's "How to release", the confirmation
per stage, the rollout list and page, its actions, the devices filter and the Activity sentences."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.activity import Sentences
from console.models import AuditEvent, Membership
from devices.models import Device
from firmware import services
from firmware.models import FirmwareUpdate, Rollout, RolloutSample
from firmware.services import rollouts
from tests.factories import DeviceFactory
from tests.firmware.helpers import proven_firmware, rollout_fleet

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


@pytest.fixture
def fleet(personas):
    return rollout_fleet(personas, size=120, canary=5)


def staged(personas, fleet, stages="prerelease, 10%, 100%", **options):
    spec = rollouts.rollout_spec(product=fleet["product"], stages=stages, **options)
    services.firmware_release(firmware=fleet["v5"], groups=[fleet["everyone"]], rollout=spec, actor=personas.developer)
    return Rollout.objects.get(firmware=fleet["v5"], status__in=Rollout.LIVE)


def fail(device, reason="flash write error"):
    device.refresh_from_db()
    services.device_handshake(device=device, firmware_version=4)
    device.refresh_from_db()
    services.device_update_failed(device=device, version=5, reason=reason)


# ---------------------------------------------------------------------------------------------
# The release dialog and its confirmation


def test_the_release_dialog_offers_how_to_release_with_all_at_once_chosen(client, personas, fleet):
    client.force_login(personas.developer)

    body = client.get("/products/acme/firmware/5/release/", headers=HX).content.decode()

    assert "How to release" in body
    assert '<input type="radio" name="how" value="all_at_once" id="id_how_all_at_once" checked>' in body
    for label in ("Canary 1% → 10% → 100%", "Phased 1% → 10% → 50% → 100%", "Custom stages", "Soak time (minutes)",
                  "Max failure rate (%)", "Min devices updated", "Timeout (minutes)", 'type="datetime-local"'):
        assert label in body


def test_the_confirmation_counts_devices_per_stage_and_states_the_gate(client, personas, fleet):
    client.force_login(personas.developer)
    spec = rollouts.rollout_spec(product=fleet["product"], stages="prerelease, 10%, 100%")
    expected = services.release_plan(firmware=fleet["v5"], groups=[fleet["everyone"]], rollout=spec).impact().by_stage

    response = client.get("/products/acme/firmware/5/release/confirm/", {
        "groups": "everyone", "how": "custom", "stages": "prerelease, 10%, 100%", "max_failure_percent": "5",
    }, headers=HX)

    body = response.content.decode()
    assert response.status_code == 200
    assert f"<strong>Stage 1 (prerelease):</strong> <span class=\"stage-devices\">{expected[0]} devices</span>" in body
    assert f"<strong>Stage 2 (10%):</strong> <span class=\"stage-devices\">{expected.get(1, 0)} device" in body
    assert f"<strong>Stage 3 (100%):</strong> <span class=\"stage-devices\">{expected[2]} devices</span>" in body
    assert expected[0] == 5 and sum(expected.values()) == 120
    assert "halts by itself if more than 5% of a stage's offered devices fail" in body
    assert '<input type="hidden" name="stages" value="prerelease, 10%, 100%">' in body
    assert not Rollout.objects.exists()


def test_confirming_a_canary_release_starts_the_rollout(client, personas, fleet):
    client.force_login(personas.developer)

    response = client.post("/products/acme/firmware/5/release/confirm/", {
        "groups": ["everyone"], "how": "canary", "soak_minutes": "30", "max_failure_percent": "2.5", "min_updated": "3",
        "timeout_minutes": "45",
    }, headers=HX)

    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert "firmwareChanged" in events and events["showMessage"]["value"].startswith("Started the staged rollout of v5: 1% → 10% → 100%")
    rollout = Rollout.objects.get()
    assert rollout.status == Rollout.Status.RUNNING and rollout.timeout.total_seconds() == 45 * 60
    stages = list(rollout.stages.all())
    assert [s.share for s in stages] == [100, 1000, 10000]
    assert {(s.soak.total_seconds(), float(s.max_failure_percent), s.min_updated) for s in stages} == {(1800, 2.5, 3)}


def test_all_at_once_releases_as_before(client, personas, fleet):
    client.force_login(personas.developer)

    response = client.post("/products/acme/firmware/5/release/confirm/", {"groups": ["everyone"], "how": "all_at_once"}, headers=HX)

    assert response.status_code == 204
    fleet["everyone"].refresh_from_db()
    assert fleet["everyone"].released_firmware == fleet["v5"] and not Rollout.objects.exists()


@pytest.mark.parametrize("field, data, message", [
    ("stages", {"how": "custom", "stages": "nosuchgroup, 100%"}, "Unknown group: nosuchgroup"),
    ("stages", {"how": "custom", "stages": "10%, 50%"}, "end the stages with 100%"),
    ("stages", {"how": "custom", "stages": ""}, "List the stages"),
    ("max_failure_percent", {"how": "canary", "max_failure_percent": "150"}, "between 0 and 100"),
    ("soak_minutes", {"how": "canary", "soak_minutes": "soon"}, "as a number"),
    ("timeout_minutes", {"how": "canary", "timeout_minutes": "0"}, "between 1 and"),
    ("starts_at", {"how": "canary", "starts_at": "2001-01-01T08:00"}, "The start is in the past"),
])
def test_a_wrong_rollout_field_is_shown_next_to_it_and_nothing_starts(client, personas, fleet, field, data, message):
    client.force_login(personas.developer)

    response = client.post("/products/acme/firmware/5/release/confirm/", {"groups": ["everyone"], **data}, headers=HX)

    body = response.content.decode()
    assert response.status_code == 200 and not body.lstrip().startswith("<dialog")
    error_id = "id_stages_error" if field == "stages" and data["how"] == "custom" else f"id_{field}_error"
    start = body.index(f'id="{error_id}"')
    assert message in body[start:start + 400]
    assert not Rollout.objects.exists()
    fleet["everyone"].refresh_from_db()
    assert fleet["everyone"].released_firmware == fleet["v4"]


def test_a_release_while_a_rollout_is_live_is_refused_with_a_link_to_it(client, personas, fleet):
    rollout = staged(personas, fleet)
    v6 = proven_firmware(fleet["product"], 6)
    client.force_login(personas.developer)

    response = client.get(f"/products/acme/firmware/{v6.version}/release/confirm/", {"groups": "everyone"}, headers=HX)

    body = response.content.decode()
    assert "v5 is rolling out to this product (running)" in body
    assert f'<a href="/products/acme/firmware/rollouts/{rollout.pk}/" id="live-rollout-link">' in body


# ---------------------------------------------------------------------------------------------
# The rollout page and list


def test_the_rollout_page_shows_the_stages_the_chart_and_the_failure_reasons(client, personas, fleet):
    rollout = staged(personas, fleet, max_failure_percent=50, min_updated=100)
    canary = fleet["devices"][:3]
    for device in canary:
        device.refresh_from_db()
        services.device_handshake(device=device, firmware_version=4)
    for device, reason in zip(canary, ("flash write error", "battery too low", "flash write error")):
        device.refresh_from_db()
        services.device_update_failed(device=device, version=5, reason=reason)
    client.force_login(personas.viewer)

    response = client.get(f"/products/acme/firmware/rollouts/{rollout.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="rollout-status">Halted</span>' in body
    # Judged once the canary's 5 are offered, or when failures pass 50% of all 5: the third.
    assert "Halted: 3 of 3 devices in stage 1 failed, 100.0% &gt; 50%" in body
    assert '<tr data-stage="1" aria-current="step" class="current">' in body
    assert "<td>flash write error</td><td class=\"num\">2</td>" in body
    assert "<td>battery too low</td><td class=\"num\">1</td>" in body
    assert f'href="/products/acme/devices/?rollout_failed={rollout.pk}"' in body
    assert '<svg viewBox="0 0 640 220" role="img" aria-labelledby="chart-title chart-desc">' in body
    assert 'hx-trigger="every 5s, rolloutChanged from:body"' in body
    # A viewer sees no actions.
    assert "data-action=" not in body


def test_the_polled_region_stops_polling_once_the_rollout_has_ended(client, personas, fleet):
    rollout = staged(personas, fleet)
    rollouts.rollout_act(rollout=rollout, action="abort", actor=personas.developer)
    client.force_login(personas.developer)

    response = client.get(f"/products/acme/firmware/rollouts/{rollout.pk}/", headers=HX)

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="rollout-live"') and "<html" not in body
    assert "every 5s" not in body and 'hx-trigger="rolloutChanged from:body"' in body
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_a_developer_sees_the_actions_the_state_allows(client, personas, fleet):
    rollout = staged(personas, fleet)
    client.force_login(personas.developer)

    body = client.get(f"/products/acme/firmware/rollouts/{rollout.pk}/").content.decode()

    assert [a for a in rollouts.ACTIONS if f'data-action="{a}"' in body] == ["pause", "advance", "abort", "rollback"]


def test_the_rollout_list_shows_rollouts_newest_first(client, personas, fleet):
    first = staged(personas, fleet)
    rollouts.rollout_act(rollout=first, action="abort", actor=personas.developer)
    v6 = proven_firmware(fleet["product"], 6)
    spec = rollouts.rollout_spec(product=fleet["product"], stages="50%, 100%")
    services.firmware_release(firmware=v6, groups=[fleet["everyone"]], rollout=spec, actor=personas.developer)
    second = Rollout.objects.get(firmware=v6)
    client.force_login(personas.viewer)

    body = client.get("/products/acme/firmware/rollouts/").content.decode()

    assert body.index(f'data-rollout="{second.pk}"') < body.index(f'data-rollout="{first.pk}"')
    assert "Aborted" in body and "Running" in body and "1 of 2" in body


def test_outsiders_get_404_for_rollouts(client, personas, fleet):
    rollout = staged(personas, fleet)
    client.force_login(personas.outsider)

    assert client.get(f"/products/acme/firmware/rollouts/{rollout.pk}/").status_code == 404
    assert client.get("/products/acme/firmware/rollouts/").status_code == 404
    assert client.post(f"/products/acme/firmware/rollouts/{rollout.pk}/pause/").status_code == 404


def test_another_products_rollout_is_404(client, personas, fleet):
    rollout = staged(personas, fleet)
    Membership.objects.create(user=personas.developer, product=personas.other_product, role="developer")
    client.force_login(personas.developer)

    assert client.get(f"/products/other/firmware/rollouts/{rollout.pk}/").status_code == 404


def test_the_rollout_page_costs_the_same_queries_whatever_the_fleet_the_failures_and_the_samples(client, personas, fleet):
    rollout = staged(personas, fleet, max_failure_percent=100)
    client.force_login(personas.developer)
    url = f"/products/acme/firmware/rollouts/{rollout.pk}/"
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for device in fleet["devices"][:5]:
        fail(device, f"reason {device.pk % 7}")
    more = DeviceFactory.create_batch(60, product=fleet["product"], firmware_version=4)
    fleet["everyone"].devices.add(*more)
    RolloutSample.objects.bulk_create(  # a day of the task queue's checks, in short
        RolloutSample(rollout=rollout, at=timezone.now(), offered=n, updated=n, failed=0) for n in range(30)
    )
    with CaptureQueriesContext(connection) as large:
        response = client.get(url)

    assert response.status_code == 200 and "reason" in response.content.decode()
    assert len(large) == len(small)


# ---------------------------------------------------------------------------------------------
# Actions


def test_each_action_dialog_shows_its_impact_first(client, personas, fleet):
    rollout = staged(personas, fleet)
    client.force_login(personas.developer)

    for action in ("pause", "advance", "abort", "rollback"):
        body = client.get(f"/products/acme/firmware/rollouts/{rollout.pk}/{action}/", headers=HX).content.decode()
        assert body.lstrip().startswith("<dialog data-modal")
        assert rollouts.action_impact(rollout, action).summary.replace("'", "&#x27;") in body
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING


def test_pause_through_the_page(client, personas, fleet):
    rollout = staged(personas, fleet)
    client.force_login(personas.developer)

    response = client.post(f"/products/acme/firmware/rollouts/{rollout.pk}/pause/", headers=HX)

    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert "rolloutChanged" in events and events["showMessage"]["value"] == "Paused the v5 rollout."
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.PAUSED
    assert AuditEvent.objects.filter(action="rollout.paused", actor=personas.developer).exists()


def test_advance_through_the_page_opens_the_next_stage(client, personas, fleet):
    rollout = staged(personas, fleet)
    client.force_login(personas.developer)

    response = client.post(f"/products/acme/firmware/rollouts/{rollout.pk}/advance/", headers=HX)

    assert json.loads(response["HX-Trigger"])["showMessage"]["value"] == "Opened stage 2 of the v5 rollout."
    rollout.refresh_from_db()
    assert rollout.current_stage == 1


def test_resume_after_failures_needs_the_acknowledgement(client, personas, fleet):
    rollout = staged(personas, fleet, max_failure_percent=10)
    fail(fleet["devices"][0])
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.HALTED
    client.force_login(personas.developer)
    url = f"/products/acme/firmware/rollouts/{rollout.pk}/resume/"

    dialog = client.get(url, headers=HX).content.decode()
    refused = client.post(url, headers=HX)
    rollout.refresh_from_db()
    status_after_refusal = rollout.status
    done = client.post(url, {"acknowledge": "on"}, headers=HX)

    assert "I acknowledge the 1 failure" in dialog
    assert refused.status_code == 200 and 'id="id_acknowledge_error"' in refused.content.decode()
    assert status_after_refusal == Rollout.Status.HALTED
    assert done.status_code == 204
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING and rollout.halted_reason == ""


def test_abort_and_roll_back_through_the_page(client, personas, fleet):
    rollout = staged(personas, fleet)
    client.force_login(personas.developer)

    aborted = client.post(f"/products/acme/firmware/rollouts/{rollout.pk}/abort/", headers=HX)
    rollout.refresh_from_db()
    status_after_abort = rollout.status
    rolled = client.post(f"/products/acme/firmware/rollouts/{rollout.pk}/rollback/", headers=HX)

    assert aborted.status_code == 204 and status_after_abort == Rollout.Status.ABORTED
    assert json.loads(aborted["HX-Trigger"])["showMessage"]["value"].startswith("Aborted the v5 rollout")
    assert rolled.status_code == 204
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.ROLLED_BACK


def test_a_refused_action_shows_the_servers_message(client, personas, fleet):
    rollout = staged(personas, fleet)
    rollouts.rollout_act(rollout=rollout, action="abort", actor=personas.developer)
    client.force_login(personas.developer)

    response = client.post(f"/products/acme/firmware/rollouts/{rollout.pk}/pause/", headers=HX)

    assert response.status_code == 200
    body = response.content.decode()
    assert "This rollout is aborted: it cannot be paused." in body and "<button type=\"submit\"" not in body


def test_viewers_may_not_act(client, personas, fleet):
    rollout = staged(personas, fleet)
    client.force_login(personas.viewer)

    response = client.post(f"/products/acme/firmware/rollouts/{rollout.pk}/pause/", headers=HX)

    assert response.status_code == 403
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING


def test_a_restricted_member_acts_only_within_their_groups(client, personas, fleet):
    rollout = staged(personas, fleet)
    client.force_login(personas.restricted)

    page = client.get(f"/products/acme/firmware/rollouts/{rollout.pk}/").content.decode()
    response = client.post(f"/products/acme/firmware/rollouts/{rollout.pk}/pause/", headers=HX)

    assert "data-action=" not in page
    assert response.status_code == 403 and "only a member with access to the whole product" in response.content.decode()
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING


def test_an_unknown_action_is_404(client, personas, fleet):
    rollout = staged(personas, fleet)
    client.force_login(personas.developer)

    assert client.post(f"/products/acme/firmware/rollouts/{rollout.pk}/explode/").status_code == 404


# ---------------------------------------------------------------------------------------------
# The firmware page, the devices filter, the device page, Activity


def test_the_firmware_page_shows_the_live_rollout(client, personas, fleet):
    rollout = staged(personas, fleet, max_failure_percent=10)
    fail(fleet["devices"][0])
    client.force_login(personas.viewer)

    body = client.get("/products/acme/firmware/").content.decode()

    assert "v5 is rolling out" in body and "Halted" in body and "stage 1 of 3 (prerelease)" in body
    assert "Halted: 1 of 1 devices in stage 1 failed, 100.0% &gt; 10%" in body
    assert f'href="/products/acme/firmware/rollouts/{rollout.pk}/"' in body
    assert 'href="/products/acme/firmware/rollouts/"' in body


def test_the_devices_filter_failed_in_a_rollout(client, personas, fleet):
    rollout = staged(personas, fleet, max_failure_percent=100)
    failed = fleet["devices"][:2]
    for device in failed:
        fail(device)
    client.force_login(personas.viewer)

    response = client.get(f"/products/acme/devices/?rollout_failed={rollout.pk}")

    body = response.content.decode()
    shown = set(Device.objects.filter(device_id__in=[d.device_id for d in fleet["devices"] if d.device_id in body]))
    assert shown == {Device.objects.get(pk=d.pk) for d in failed}
    assert 'id="rollout-failed-chip"' in body and "Failed in" in body and "the v5 rollout" in body
    assert FirmwareUpdate.objects.filter(rollout=rollout, status="failed").count() == 2


def test_the_devices_filter_of_another_products_rollout_matches_nothing(client, personas, fleet):
    rollout = staged(personas, fleet, max_failure_percent=100)
    fail(fleet["devices"][0])
    other_member = personas.outsider
    client.force_login(other_member)

    body = client.get(f"/products/other/devices/?rollout_failed={rollout.pk}").content.decode()

    assert fleet["devices"][0].device_id not in body


def test_the_device_page_says_when_its_stage_opens(client, personas, fleet):
    staged(personas, fleet, stages="prerelease, 100%")
    canary, later = fleet["devices"][0], fleet["devices"][50]
    client.force_login(personas.viewer)

    open_body = client.get(f"/products/acme/devices/{canary.device_id}/").content.decode()
    later_body = client.get(f"/products/acme/devices/{later.device_id}/").content.decode()

    assert "v5 is rolling out; this device&#x27;s stage 1 (prerelease) is open." in open_body
    assert "v5 is rolling out; this device&#x27;s stage opens at 100% (stage 2 of 2)." in later_body


def test_activity_tells_the_rollout_events(personas, fleet):
    rollout = staged(personas, fleet, max_failure_percent=10)
    fail(fleet["devices"][0])
    membership = Membership.objects.get(user=personas.developer, product=personas.product)
    sentences = Sentences(membership)

    told = {event.action: str(sentences.describe(event)) for event in AuditEvent.objects.filter(action__startswith="rollout.")}

    link = f'<a href="/products/acme/firmware/rollouts/{rollout.pk}/">v5 rollout</a>'
    assert told["rollout.halted"] == f"halted the {link}: 1 of 1 devices in stage 1 failed, 100.0% &gt; 10%"
    assert told["rollout.stage_opened"] == f"opened stage 1 of 3 (prerelease) of the {link}: 5 devices"
    assert told["rollout.started"].startswith(f"started the {link} (prerelease → 10% → 100%): 120 devices targeted")
