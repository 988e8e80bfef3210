"""/v1/products/:product/rollouts: start a staged release, read its figures as devices report,
each action with its impact first, refusals, who may, bad input, and the query count."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.models import AuditEvent, Product
from devices.models import Device
from firmware import services
from firmware.models import Rollout, RolloutStage
from firmware.services import rollouts
from groups.models import Group
from tests.api.conftest import error_of
from tests.factories import DeviceFactory
from tests.firmware.helpers import proven_firmware, rollout_fleet

pytestmark = pytest.mark.django_db

ROLLOUTS = "/v1/products/acme/rollouts"


def handshake(device, version):
    device.refresh_from_db()
    return services.device_handshake(device=device, firmware_version=version)


def targets(devices):
    return dict(Device.objects.with_target().filter(pk__in=[d.pk for d in devices]).values_list("pk", "target_version"))


@pytest.fixture
def fleet(personas):
    return rollout_fleet(personas, size=60, canary=4)


def start(api, persona="developer", **body):
    body = {"version": 5, "groups": ["everyone"], "stages": "prerelease, 100%", "max_failure_percent": 30, **body}
    response = api(persona).post(ROLLOUTS, body)
    assert response.status_code == 201, response.content
    return response.json()["rollout"]


def stored_state(product):
    """What a refused request must leave as it was."""
    return (
        list(Rollout.objects.values_list("id", "status")),
        list(Group.objects.filter(product=product).order_by("name").values_list("name", "released_firmware", "rolling_firmware")),
        Product.objects.get(pk=product.pk).default_firmware_id,
        AuditEvent.objects.count(),
    )


# ---------------------------------------------------------------------------------------------
# Starting


def test_a_developer_starts_a_staged_release_counted_per_stage_as_the_preview_counts(api, personas, fleet):
    spec = rollouts.rollout_spec(product=fleet["product"], stages="prerelease, 25%, 100%")
    preview = services.release_plan(firmware=fleet["v5"], groups=[fleet["everyone"]], rollout=spec).impact()

    body = start(api, stages="prerelease, 25%, 100%", soak_minutes=30, min_updated=3, timeout_minutes=90)

    stored = Rollout.objects.get()
    assert body["id"] == stored.pk and body["status"] == "running" == stored.status
    assert body["version"] == 5 and body["groups"] == ["everyone"] and body["sets_default"] is False
    assert body["current_stage"] == 1 and body["timeout_minutes"] == 90 and body["created_by"] == "developer"
    assert [stage["targeted"] for stage in body["stages"]] == [preview.by_stage.get(i, 0) for i in range(3)]
    assert sum(stage["targeted"] for stage in body["stages"]) == preview.total == 60
    assert [(s["number"], s["percent"], s["groups"]) for s in body["stages"]] == [
        (1, None, ["prerelease"]), (2, 25.0, []), (3, 100.0, [])]
    assert body["stages"][0]["gate"] == {"max_failure_percent": 30.0, "min_updated": 3, "soak_minutes": 30}
    assert body["stages"][0]["opened_at"] is not None and body["stages"][1]["opened_at"] is None
    fleet["everyone"].refresh_from_db()
    assert fleet["everyone"].released_firmware == fleet["v4"] and fleet["everyone"].rolling_firmware == fleet["v5"]
    assert targets(fleet["devices"]) == {d.pk: 5 if d in fleet["devices"][:4] else 4 for d in fleet["devices"]}
    release = AuditEvent.objects.get(action="firmware.release", details__version=5)
    assert release.details["rollout"] == stored.pk and release.actor == personas.developer


def test_stages_may_be_objects_each_overriding_the_gate(api, fleet):
    body = start(api, stages=[{"groups": ["prerelease"], "soak_minutes": 15, "min_updated": 2},
                              {"percent": 50}, {"percent": 100, "max_failure_percent": 2.5}])

    gates = [stage["gate"] for stage in body["stages"]]
    assert gates == [{"max_failure_percent": 30.0, "min_updated": 2, "soak_minutes": 15},
                     {"max_failure_percent": 30.0, "min_updated": 10, "soak_minutes": 60},
                     {"max_failure_percent": 2.5, "min_updated": 10, "soak_minutes": 60}]
    stored = RolloutStage.objects.get(rollout_id=body["id"], index=2)
    assert float(stored.max_failure_percent) == 2.5 and stored.share == 10_000


def test_a_list_of_strings_and_a_form_encoded_body_are_the_text_plan(api, fleet):
    assert [s["percent"] for s in start(api, stages=["prerelease", "50%", "100%"])["stages"]] == [None, 50.0, 100.0]
    Rollout.objects.update(status="aborted")
    Product.objects.update(live_rollout=None)

    response = api("developer").form("POST", ROLLOUTS, "version=5&groups=everyone&stages=10%25%2C+100%25")
    assert response.status_code == 201, response.content
    assert [s["percent"] for s in response.json()["rollout"]["stages"]] == [10.0, 100.0]


def test_a_scheduled_start_waits_and_says_when(api, fleet):
    at = (timezone.now() + timedelta(hours=3)).replace(microsecond=0)
    body = start(api, starts_at=at.strftime("%Y-%m-%dT%H:%M:%SZ"))

    assert body["status"] == "scheduled" and body["current_stage"] is None and body["started_at"] is None
    assert body["starts_at"] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert Rollout.objects.get().starts_at == at
    assert targets(fleet["devices"][:4]) == {d.pk: 4 for d in fleet["devices"][:4]}


def test_a_staged_default_release_sets_default_when_it_completes(api, personas, fleet):
    body = start(api, groups=None, product_default=True, stages="100%")

    assert body["sets_default"] is True and body["groups"] == []
    assert Product.objects.get(pk=fleet["product"].pk).default_firmware_id is None


# ---------------------------------------------------------------------------------------------
# Reading


def test_get_shows_each_stages_figures_as_devices_report_through_the_gateway(api, fleet):
    body = start(api)
    a, b, c, d = fleet["devices"][:4]  # the canary stage's four
    for device in (a, b, c, d):
        assert handshake(device, 4).version == 5
    handshake(a, 5)
    services.device_update_failed(device=b, version=5, reason="flash write error")
    assert Rollout.objects.get().status == "running"  # 1 of 4 is within 30%
    services.device_update_failed(device=c, version=5, reason="flash write error")

    got = api("viewer").get(f"{ROLLOUTS}/{body['id']}")

    assert got.status_code == 200
    stage = got.json()["rollout"]["stages"][0]
    assert {key: stage[key] for key in ("targeted", "offered", "updated", "failed", "timed_out", "pending", "failure_rate")} == {
        "targeted": 4, "offered": 4, "updated": 1, "failed": 2, "timed_out": 0, "pending": 1, "failure_rate": 50.0}
    assert got.json()["rollout"]["status"] == "halted"  # 50% > 30%
    assert got.json()["rollout"]["halted_reason"] == "Halted: 2 of 4 devices in stage 1 failed, 50.0% > 30%"
    assert got.json()["rollout"]["stages"][1]["offered"] == 0


def test_the_list_is_newest_first_filtered_by_status_and_paginated(api, fleet):
    first = start(api)
    assert api("developer").post(f"{ROLLOUTS}/{first['id']}/abort").status_code == 200
    second = start(api)

    listed = api("viewer").get(ROLLOUTS).json()
    assert [r["id"] for r in listed["rollouts"]] == [second["id"], first["id"]]
    assert listed["meta"] == {"page": 1, "per_page": 25, "total_pages": 1, "total": 2}
    assert listed["rollouts"][0] == api("viewer").get(f"{ROLLOUTS}/{second['id']}").json()["rollout"]
    aborted = api("viewer").get(ROLLOUTS, {"status": "aborted"}).json()
    assert [r["id"] for r in aborted["rollouts"]] == [first["id"]] and aborted["meta"]["total"] == 1
    page = api("viewer").get(ROLLOUTS, {"per_page": 1, "page": 2}).json()
    assert [r["id"] for r in page["rollouts"]] == [first["id"]] and page["meta"]["total_pages"] == 2
    assert api("viewer").get(ROLLOUTS, {"page": 3, "per_page": 1}).json()["rollouts"] == []
    assert error_of(api("viewer").get(ROLLOUTS, {"status": "lost"}))["fields"].keys() == {"status"}


def test_reading_a_rollout_costs_the_same_queries_whatever_the_size_of_the_fleet(api, fleet):
    body = start(api, stages="prerelease, 10%, 50%, 100%")
    client = api("viewer")
    url = f"{ROLLOUTS}/{body['id']}"
    client.get(url)

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    small = count()
    more = [DeviceFactory(product=fleet["product"], firmware_version=4) for _ in range(60)]
    fleet["everyone"].devices.add(*more)
    for device in more[:10]:
        handshake(device, 4)
    assert count() == small
    # token, membership, rollout, its groups, its stages, the stages' groups
    assert small == 6


# ---------------------------------------------------------------------------------------------
# Actions, each with its impact first


def test_pause_and_resume_with_their_impact(api, fleet):
    body = start(api)
    url = f"{ROLLOUTS}/{body['id']}"
    handshake(fleet["devices"][0], 4)

    impact = api("viewer").get(f"{url}/impact", {"action": "pause"}).json()
    assert impact == rollouts.action_impact(Rollout.objects.get(), "pause").as_json()
    assert impact["allowed"] is True and impact["devices"] == 1 and "No more devices will be offered v5" in impact["summary"]

    paused = api("developer").post(f"{url}/pause")
    assert paused.status_code == 200 and paused.json()["rollout"]["status"] == "paused"
    assert Rollout.objects.get().status == "paused"
    assert handshake(fleet["devices"][1], 4) is None
    assert AuditEvent.objects.filter(action="rollout.paused").count() == 1

    again = api("viewer").get(f"{url}/impact", {"action": "pause"}).json()
    assert again["allowed"] is False and again["summary"] == "This rollout is paused: it cannot be paused."

    resumed = api("developer").post(f"{url}/resume")  # no failures: nothing to acknowledge
    assert resumed.status_code == 200 and resumed.json()["rollout"]["status"] == "running"


def test_resume_after_failures_needs_the_acknowledgement(api, fleet):
    body = start(api, max_failure_percent=10)
    url = f"{ROLLOUTS}/{body['id']}"
    for device in fleet["devices"][:2]:
        handshake(device, 4)
    services.device_update_failed(device=fleet["devices"][0], version=5, reason="battery low")
    assert Rollout.objects.get().status == "halted"

    impact = api("developer").get(f"{url}/impact", {"action": "resume"}).json()
    assert impact["allowed"] is True and impact["summary"].startswith("Acknowledges 1 failure so far")
    for refused in (api("developer").post(f"{url}/resume"), api("developer").post(f"{url}/resume", {"acknowledge": False})):
        assert refused.status_code == 400
        assert error_of(refused)["fields"] == {"acknowledge": ["Acknowledge the 1 failures to resume: the gate then counts only new ones."]}
    assert Rollout.objects.get().status == "halted"

    resumed = api("developer").post(f"{url}/resume", {"acknowledge": True})
    assert resumed.status_code == 200
    assert resumed.json()["rollout"]["status"] == "running" and resumed.json()["rollout"]["halted_reason"] is None
    assert resumed.json()["rollout"]["stages"][0]["failure_rate"] == 0.0
    assert AuditEvent.objects.get(action="rollout.resumed").details["acknowledged"] == 1


def test_advance_opens_the_next_stage_now_and_then_completes(api, fleet):
    body = start(api)
    url = f"{ROLLOUTS}/{body['id']}"

    impact = api("developer").get(f"{url}/impact", {"action": "advance"}).json()
    assert impact["devices"] == 56 and impact["summary"].startswith("Opens stage 2 (100%) now")
    advanced = api("developer").post(f"{url}/advance").json()["rollout"]
    assert advanced["current_stage"] == 2 and advanced["stages"][1]["opened_at"] is not None
    assert set(targets(fleet["devices"]).values()) == {5}

    assert "completes now" in api("developer").get(f"{url}/impact", {"action": "advance"}).json()["summary"]
    done = api("developer").post(f"{url}/advance").json()["rollout"]
    assert done["status"] == "completed" and done["ended_at"] is not None
    fleet["everyone"].refresh_from_db()
    assert fleet["everyone"].released_firmware == fleet["v5"] and fleet["everyone"].rolling_firmware is None


def test_abort_sends_waiting_devices_back(api, fleet):
    body = start(api)
    url = f"{ROLLOUTS}/{body['id']}"
    a, b = fleet["devices"][:2]
    handshake(a, 4), handshake(b, 4), handshake(a, 5)

    impact = api("developer").get(f"{url}/impact", {"action": "abort"}).json()
    assert impact["allowed"] is True and impact["devices"] == 1
    aborted = api("developer").post(f"{url}/abort").json()["rollout"]

    assert aborted["status"] == "aborted" and aborted["ended_at"] is not None
    assert targets([a, b]) == {a.pk: 5, b.pk: 4}
    assert Product.objects.get(pk=fleet["product"].pk).live_rollout_id is None
    fleet["everyone"].refresh_from_db()
    assert fleet["everyone"].released_firmware == fleet["v4"] and fleet["everyone"].rolling_firmware is None


def test_rollback_targets_updated_devices_at_the_version_they_ran_before(api, fleet):
    body = start(api)
    url = f"{ROLLOUTS}/{body['id']}"
    a = fleet["devices"][0]
    handshake(a, 4), handshake(a, 5)

    impact = api("developer").get(f"{url}/impact", {"action": "rollback"}).json()
    assert impact["devices"] == 1 and impact["by_version"] == [{"version": 4, "total": 1}]
    rolled = api("developer").post(f"{url}/rollback")

    assert rolled.status_code == 200 and rolled.json()["rollout"]["status"] == "rolled_back"
    assert Device.objects.get(pk=a.pk).pinned_version == 4 and targets([a]) == {a.pk: 4}
    event = AuditEvent.objects.get(action="rollout.rolled_back")
    assert event.details["devices"] == 1 and event.actor.username == "developer"


def test_an_action_the_state_does_not_allow_is_a_400_that_says_why_and_changes_nothing(api, fleet):
    body = start(api)
    url = f"{ROLLOUTS}/{body['id']}"
    api("developer").post(f"{url}/abort")
    before = stored_state(fleet["product"])

    for action in ("pause", "resume", "advance", "abort"):
        refused = api("developer").post(f"{url}/{action}")
        assert refused.status_code == 400
        message = rollouts.action_impact(Rollout.objects.get(), action).summary
        assert message.startswith("This rollout is aborted: it cannot be")
        assert error_of(refused)["fields"] == {"action": [message]} and refused.json()["error_description"] == message
    assert stored_state(fleet["product"]) == before
    assert api("viewer").get(f"{url}/impact", {"action": "fly"}).status_code == 400


def test_a_release_while_a_rollout_is_live_is_refused(api, personas, fleet):
    start(api)
    v6 = proven_firmware(fleet["product"], 6)
    before = stored_state(fleet["product"])

    staged = api("developer").post(ROLLOUTS, {"version": 6, "groups": ["everyone"], "stages": "100%"})
    at_once = api("developer").put("/v1/products/acme/firmware/release", {"version": 6, "groups": ["everyone"]})

    message = "v5 is rolling out to this product (running). Let it complete, or abort or roll it back, before releasing again."
    for refused in (staged, at_once):
        assert refused.status_code == 400 and error_of(refused)["error_description"] == message
    assert stored_state(fleet["product"]) == before
    assert v6.pk not in Group.objects.values_list("released_firmware", flat=True)


def test_the_particle_release_endpoint_still_releases_all_at_once(api, fleet):
    response = api("developer").put("/v1/products/acme/firmware/release", {"version": 5, "groups": ["everyone"]})

    assert response.status_code == 200 and response.json()["groups"] == ["everyone"]
    assert not Rollout.objects.exists()
    assert set(targets(fleet["devices"]).values()) == {5}


# ---------------------------------------------------------------------------------------------
# Who may


def test_viewers_and_support_read_but_get_403_on_writes(api, fleet):
    body = start(api)
    url = f"{ROLLOUTS}/{body['id']}"
    before = stored_state(fleet["product"])
    for persona in ("viewer", "support"):
        client = api(persona)
        assert client.get(ROLLOUTS).status_code == 200 and client.get(url).status_code == 200
        assert client.get(f"{url}/impact", {"action": "abort"}).status_code == 200
        for response in [client.post(ROLLOUTS, {"version": 5, "groups": ["everyone"], "stages": "100%"})] + [
            client.post(f"{url}/{action}") for action in rollouts.ACTIONS
        ]:
            assert response.status_code == 403 and error_of(response)["error"] == "forbidden"
    assert stored_state(fleet["product"]) == before


def test_outsiders_get_404_for_the_product_and_for_its_rollout_through_their_own(api, fleet):
    body = start(api)
    url = f"{ROLLOUTS}/{body['id']}"
    before = stored_state(fleet["product"])
    outsider = api("outsider")
    responses = [outsider.get(ROLLOUTS), outsider.get(url), outsider.get(f"{url}/impact", {"action": "pause"}),
                 outsider.post(ROLLOUTS, {"version": 5, "groups": ["everyone"], "stages": "100%"})]
    responses += [outsider.post(f"{url}/{action}") for action in rollouts.ACTIONS]
    other = f"/v1/products/other/rollouts/{body['id']}"
    responses += [outsider.get(other), outsider.get(f"{other}/impact", {"action": "abort"}), outsider.post(f"{other}/abort")]
    for response in responses:
        assert response.status_code == 404 and error_of(response)["error"] == "not_found"
    assert stored_state(fleet["product"]) == before
    assert api(None).get(ROLLOUTS).status_code == 401


def test_a_restricted_member_is_refused_a_rollout_beyond_their_groups(api, personas, fleet):
    body = start(api)
    url = f"{ROLLOUTS}/{body['id']}"
    before = stored_state(fleet["product"])

    for action in rollouts.ACTIONS:
        refused = api("restricted").post(f"{url}/{action}")
        assert refused.status_code == 403
        assert "beyond the groups you have access to" in error_of(refused)["error_description"]
    assert stored_state(fleet["product"]) == before
    # They read it, without the names of groups outside their access.
    read = api("restricted").get(url).json()["rollout"]
    assert read["groups"] == [] and read["stages"][0]["groups"] == []
    # Nor may they start one beyond their groups.
    Rollout.objects.update(status="aborted")
    Product.objects.update(live_rollout=None)
    before = stored_state(fleet["product"])
    default = api("restricted").post(ROLLOUTS, {"version": 5, "product_default": True, "stages": "100%"})
    assert default.status_code == 403 and "cannot change the product default" in error_of(default)["error_description"]
    # A group outside their access is unknown to them.
    outside = api("restricted").post(ROLLOUTS, {"version": 5, "groups": ["everyone"], "stages": "100%"})
    assert outside.status_code == 400 and error_of(outside)["fields"] == {"groups": ["Unknown group: everyone."]}
    assert stored_state(fleet["product"]) == before


def test_a_restricted_member_stages_a_release_to_their_own_group(api, personas, fleet):
    fleet["canary"].delete()
    personas.restricted_group.devices.add(*fleet["devices"][:10])

    body = start(api, "restricted", groups=["partner-fleet"], stages="50%, 100%")

    assert body["groups"] == ["partner-fleet"] and sum(s["targeted"] for s in body["stages"]) == 10
    paused = api("restricted").post(f"{ROLLOUTS}/{body['id']}/pause")
    assert paused.status_code == 200 and Rollout.objects.get().status == "paused"


# ---------------------------------------------------------------------------------------------
# Bad input: a 400 naming the field, and nothing changed


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"stages": "nowhere, 100%"}, "stages", "Unknown group: nowhere."),
        ({"stages": [{"groups": ["nowhere"]}, {"percent": 100}]}, "stages", "Unknown group: nowhere."),
        ({"stages": "10%, 50%"}, "stages", "end the stages with 100%"),
        ({"stages": "50%, 10%, 100%"}, "stages", "Shares are cumulative"),
        ({"stages": ""}, "stages", "List the stages"),
        ({"stages": []}, "stages", "List the stages"),
        ({"stages": [{"percent": 10, "groups": ["prerelease"]}, {"percent": 100}]}, "stages", "not both"),
        ({"stages": [{"percent": "ten"}, {"percent": 100}]}, "stages", "Stage 1, percent: Input should be a valid number"),
        ({"stages": [{"percent": 100, "soak": 5}]}, "stages", "Stage 1, soak: Unknown field."),
        ({"stages": [{"percent": 100, "min_updated": -1}]}, "stages", "Stage 1, min_updated: Input should be greater than or equal to 0"),
        ({"stages": [{"percent": 50}, "100%"]}, "stages", "Stage 2: give every stage as an object"),
        ({"soak_minutes": -5}, "soak_minutes", "greater than or equal to 0"),
        ({"max_failure_percent": 101}, "max_failure_percent", "less than or equal to 100"),
        ({"min_updated": "ten"}, "min_updated", "valid integer"),
        ({"timeout_minutes": 0}, "timeout_minutes", "greater than or equal to 1"),
        ({"starts_at": "2020-01-01T08:00:00Z"}, "starts_at", "The start is in the past"),
        ({"starts_at": "next tuesday"}, "starts_at", "Enter the start as a date and time"),
        ({"starts_at": "2026-02-30T08:00:00Z"}, "starts_at", "Enter the start as a date and time"),
        ({"version": 99}, "version", "v99 is not a firmware version of this product."),
        ({"groups": ["nowhere"]}, "groups", "Unknown group: nowhere."),
        ({"groups": []}, "stages", "A staged release releases the version somewhere new"),
        ({"version": 4, "groups": [], "product_default": True}, "stages", "cannot also unrelease"),
        ({"color": "red"}, "color", "Unknown field."),
    ],
)
def test_bad_input_is_a_400_on_its_field_and_nothing_changes(api, fleet, change, field, says):
    before = stored_state(fleet["product"])
    body = {"version": 5, "groups": ["everyone"], "stages": "prerelease, 100%", **change}

    response = api("developer").post(ROLLOUTS, body)

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert list(error["fields"]) == [field] and says in error["fields"][field][0], error
    assert stored_state(fleet["product"]) == before


def test_a_version_no_device_ran_is_refused_with_the_proof_rule(api, personas, fleet):
    from tests.factories import FirmwareFactory

    FirmwareFactory(product=fleet["product"], version=7)
    before = stored_state(fleet["product"])
    response = api("developer").post(ROLLOUTS, {"version": 7, "groups": ["everyone"], "stages": "100%"})
    assert response.status_code == 400 and "No device of this product has reported running v7" in error_of(response)["fields"]["version"][0]
    assert stored_state(fleet["product"]) == before
