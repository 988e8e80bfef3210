"""Staged rollouts: stages opened by the rule, gates counted as devices report, halts, the
actions, and the task queue's checks, all against stored state."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from console.models import AuditEvent
from devices.models import Device
from firmware import services
from firmware.models import BUCKETS, FirmwareUpdate, Rollout, RolloutStage, rollout_bucket
from firmware.services import rollouts
from groups.models import Group
from tests.factories import DeviceFactory
from tests.firmware.helpers import rollout_fleet
from tests.tasks import run_due_tasks, waiting_tasks

pytestmark = pytest.mark.django_db


def targets(devices):
    rows = Device.objects.with_target().filter(pk__in=[d.pk for d in devices]).values_list("pk", "target_version")
    return dict(rows)


def staged(personas, firmware, groups, stages, **options):
    spec = rollouts.rollout_spec(product=firmware.product, stages=stages, **options)
    services.firmware_release(firmware=firmware, groups=groups, rollout=spec, actor=personas.developer)
    return Rollout.objects.get(firmware=firmware, status__in=Rollout.LIVE)


def pass_time(rollout, delta):
    """As if `delta` had passed: the rollout's stored times and its queued checks move back."""
    from django_tasks_db.models import DBTaskResult

    Rollout.objects.filter(pk=rollout.pk).update(stage_opened_at=F("stage_opened_at") - delta, starts_at=F("starts_at") - delta)
    RolloutStage.objects.filter(rollout=rollout, opened_at__isnull=False).update(opened_at=F("opened_at") - delta)
    FirmwareUpdate.objects.filter(rollout=rollout).update(created_at=F("created_at") - delta)
    DBTaskResult.objects.filter(status="READY").update(run_after=F("run_after") - delta)


def handshake(device, version):
    device.refresh_from_db()
    return services.device_handshake(device=device, firmware_version=version)


@pytest.fixture
def fleet(personas):
    return rollout_fleet(personas, size=200, canary=5)


def test_a_staged_release_opens_only_the_first_stage(personas, fleet):
    devices = fleet["devices"]
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "10%, 100%", soak_minutes=30)

    assert rollout.status == Rollout.Status.RUNNING and rollout.current_stage == 0
    open_ = {d.pk for d in devices if rollout_bucket(d.pk, rollout.seed) < BUCKETS // 10}
    assert 0 < len(open_) < 60
    assert targets(devices) == {d.pk: (5 if d.pk in open_ else 4) for d in devices}
    # The group's own release is unchanged until the rollout completes.
    fleet["everyone"].refresh_from_db()
    assert fleet["everyone"].released_firmware == fleet["v4"] and fleet["everyone"].rolling_firmware == fleet["v5"]
    stages = list(rollout.stages.all())
    assert [s.targeted for s in stages] == [len(open_), 200 - len(open_)]
    assert AuditEvent.objects.filter(action="rollout.started").count() == 1


def test_the_preview_counts_each_stage_as_the_rollout_places_devices(personas, fleet):
    spec = rollouts.rollout_spec(product=fleet["product"], stages="prerelease, 25%, 100%")
    plan = services.release_plan(firmware=fleet["v5"], groups=[fleet["everyone"]], rollout=spec)
    impact = plan.impact()
    seed = rollouts.seed_for(fleet["v5"])
    canary = {d.pk for d in fleet["devices"][:5]}
    expected = {}
    for device in fleet["devices"]:
        index = rollouts.stage_of(spec.stages, seed=seed, device_pk=device.pk,
                                  group_ids={fleet["canary"].id} if device.pk in canary else set())
        expected[index] = expected.get(index, 0) + 1
    assert impact.total == 200
    assert impact.by_stage == expected and expected[0] == 5


def test_a_canary_group_stage_opens_its_members_first(personas, fleet):
    devices = fleet["devices"]
    staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%")

    assert targets(devices) == {d.pk: (5 if d in devices[:5] else 4) for d in devices}


def test_a_device_joining_a_targeted_group_falls_into_its_stage_by_the_same_rule(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "50%, 100%")
    newcomer = DeviceFactory(product=fleet["product"], firmware_version=3)
    fleet["everyone"].devices.add(newcomer)

    expected = 5 if rollout_bucket(newcomer.pk, rollout.seed) < BUCKETS // 2 else 4
    assert targets([newcomer]) == {newcomer.pk: expected}


def test_offers_updates_and_failures_count_in_the_devices_stage(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%", max_failure_percent=50)
    first, second = fleet["devices"][:2]

    assert handshake(first, 4).version == 5
    assert handshake(second, 4).version == 5
    handshake(first, 5)  # updated
    services.device_update_failed(device=second, version=5, reason="flash write error")

    stage = rollout.stages.get(index=0)
    assert (stage.offered, stage.updated, stage.failed) == (2, 1, 1)
    assert Device.objects.get(pk=first.pk).rollout_id == rollout.pk
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING  # 50% is not above 50%


def test_a_failure_past_the_gate_halts_at_once_and_stops_offers(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%", max_failure_percent=20)
    a, b, d, e, c = fleet["devices"][:5]  # the canary stage's five devices
    for device in (a, b, d, e):
        handshake(device, 4)

    services.device_update_failed(device=a, version=5, reason="battery low")
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING  # 1 of 4: judged once the stage's 5 are offered
    services.device_update_failed(device=d, version=5, reason="battery low")

    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.HALTED  # 2 failures are more than 20% of the stage's 5
    assert rollout.halted_reason == "Halted: 2 of 4 devices in stage 1 failed, 50.0% > 20%"
    event = AuditEvent.objects.get(action="rollout.halted")
    assert event.details["failed"] == 2 and event.details["offered"] == 4
    # No further offers: c was in the open stage but had not been offered; b keeps its offer.
    assert handshake(c, 4) is None
    assert targets([b, c]) == {b.pk: 5, c.pk: 4}


def test_the_queue_opens_the_next_stage_after_the_soak_once_the_gate_passes(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%", soak_minutes=30, min_updated=2)
    assert waiting_tasks("rollout_tick")
    run_due_tasks()
    rollout.refresh_from_db()
    assert rollout.current_stage == 0  # not soaked yet

    pass_time(rollout, timedelta(minutes=31))
    run_due_tasks()
    rollout.refresh_from_db()
    assert rollout.current_stage == 0  # soaked, but fewer than 2 devices updated

    for device in fleet["devices"][:2]:
        handshake(device, 4)
        handshake(device, 5)
    pass_time(rollout, timedelta(minutes=1))
    run_due_tasks()
    rollout.refresh_from_db()
    assert rollout.current_stage == 1
    assert set(targets(fleet["devices"]).values()) == {5}


def test_the_last_stage_completes_and_the_release_becomes_the_groups(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "100%", soak_minutes=0, min_updated=0)
    run_due_tasks()

    rollout.refresh_from_db()
    fleet["everyone"].refresh_from_db()
    fleet["product"].refresh_from_db()
    assert rollout.status == Rollout.Status.COMPLETED
    assert fleet["everyone"].released_firmware == fleet["v5"] and fleet["everyone"].rolling_firmware is None
    assert fleet["product"].live_rollout is None
    assert set(targets(fleet["devices"]).values()) == {5}


def test_offered_devices_that_never_report_time_out_as_failures(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%", timeout_minutes=15,
                     max_failure_percent=10)
    handshake(fleet["devices"][0], 4)

    pass_time(rollout, timedelta(minutes=16))
    run_due_tasks()

    stage = rollout.stages.get(index=0)
    assert (stage.failed, stage.timed_out) == (1, 1)
    assert FirmwareUpdate.objects.get(rollout=rollout).reason.startswith("Timed out")
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.HALTED


def test_abort_sends_waiting_devices_back_and_keeps_updated_ones(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%")
    done, offered_only = fleet["devices"][:2]
    handshake(done, 4), handshake(done, 5), handshake(offered_only, 4)

    impact = rollouts.action_impact(rollout, "abort")
    rollouts.rollout_act(rollout=rollout, action="abort", actor=personas.developer)

    assert impact.summary.startswith("1 devices offered v5 and not yet updated go back to their previous target, and 198 more")
    assert set(targets(fleet["devices"][1:]).values()) == {4}
    assert targets([done]) == {done.pk: 5}
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.ABORTED
    assert Group.objects.get(pk=fleet["everyone"].pk).rolling_firmware is None


def test_rollback_targets_updated_devices_at_the_version_they_ran_before(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%")
    v3_device = fleet["devices"][0]
    handshake(v3_device, 3), handshake(v3_device, 5)
    other = fleet["devices"][1]
    handshake(other, 4), handshake(other, 5)

    impact = rollouts.action_impact(rollout, "rollback")
    rollouts.rollout_act(rollout=rollout, action="rollback", actor=personas.developer)

    assert impact.devices == 2 and impact.by_version == {3: 1, 4: 1}
    assert targets([v3_device, other, fleet["devices"][2]]) == {v3_device.pk: 3, other.pk: 4, fleet["devices"][2].pk: 4}
    # The next release decides afresh.
    services.firmware_release(firmware=fleet["v5"], groups=[fleet["everyone"]], actor=personas.developer)
    assert set(targets(fleet["devices"]).values()) == {5}


def test_pause_and_resume_with_acknowledgement(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%", max_failure_percent=10)
    handshake(fleet["devices"][0], 4)
    services.device_update_failed(device=fleet["devices"][0], version=5)
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.HALTED

    with pytest.raises(ValidationError) as refused:
        rollouts.rollout_act(rollout=rollout, action="resume", actor=personas.developer)
    assert "Acknowledge the 1 failures" in str(refused.value)
    rollouts.rollout_act(rollout=rollout, action="resume", actor=personas.developer, acknowledge=True)
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING and rollout.halted_reason == ""
    assert handshake(fleet["devices"][1], 4).version == 5

    rollouts.rollout_act(rollout=rollout, action="pause", actor=personas.developer)
    assert handshake(fleet["devices"][2], 4) is None


def test_a_release_waits_while_a_rollout_is_live(personas, fleet):
    staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%")
    with pytest.raises(ValidationError) as refused:
        services.firmware_release(firmware=fleet["v4"], groups=[fleet["canary"]], actor=personas.developer)
    assert "v5 is rolling out" in str(refused.value)


def test_bad_stages_say_what_to_fix_and_change_nothing(personas, fleet):
    for stages, message in [
        ("10%, 50%", "end the stages with 100%"),
        ("50%, 10%, 100%", "Shares are cumulative"),
        ("nosuchgroup, 100%", "Unknown group: nosuchgroup"),
        ("10%, prerelease, 100%", "Stages of named groups come first"),
    ]:
        with pytest.raises(ValidationError) as refused:
            rollouts.rollout_spec(product=fleet["product"], stages=stages)
        assert message in str(refused.value)
    assert not Rollout.objects.exists()


def test_stage_of_agrees_with_its_sql(personas, fleet):
    from django.db import connection

    spec = rollouts.rollout_spec(product=fleet["product"], stages="prerelease, 3%, 40%, 100%")
    seed = 777
    sql, params = rollouts.stage_sql(spec.stages, seed=seed, device="d")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT d.id, {sql} FROM devices_device d WHERE d.product_id = %s", [*params, fleet["product"].pk])
        in_sql = dict(cursor.fetchall())
    in_sql = {pk: stage for pk, stage in in_sql.items() if pk in {d.pk for d in fleet["devices"]}}
    canary = {d.pk for d in fleet["devices"][:5]}
    in_python = {d.pk: rollouts.stage_of(spec.stages, seed=seed, device_pk=d.pk,
                                         group_ids={fleet["canary"].id} if d.pk in canary else set())
                 for d in fleet["devices"]}
    assert in_sql == in_python


def test_a_scheduled_rollout_opens_nothing_until_its_start(personas, fleet):
    starts = timezone.now() + timedelta(hours=1)
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%", starts_at=starts.isoformat())

    assert rollout.status == Rollout.Status.SCHEDULED and rollout.current_stage == -1
    assert set(targets(fleet["devices"]).values()) == {4}
    assert run_due_tasks() == 0  # its check waits for the start

    pass_time(rollout, timedelta(minutes=61))
    run_due_tasks()
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING and rollout.current_stage == 0
    assert targets(fleet["devices"][:6]) == {d.pk: (5 if i < 5 else 4) for i, d in enumerate(fleet["devices"][:6])}
    assert list(AuditEvent.objects.filter(action__startswith="rollout.").order_by("id").values_list("action", flat=True)) == [
        "rollout.scheduled", "rollout.started", "rollout.stage_opened"]


def test_a_device_page_sentence_says_when_its_stage_opens(personas, fleet):
    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 50%, 100%")
    canary_device = fleet["devices"][0]
    later = next(d for d in fleet["devices"][5:] if rollout_bucket(d.pk, rollout.seed) >= BUCKETS // 2)
    row = {d.pk: d.target_rollout_open for d in Device.objects.with_target().filter(pk__in=[canary_device.pk, later.pk])}

    assert rollouts.device_status(canary_device, rollout_open=row[canary_device.pk]) == (
        "v5 is rolling out; this device's stage 1 (prerelease) is open.")
    assert rollouts.device_status(later, rollout_open=row[later.pk]) == (
        "v5 is rolling out; this device's stage opens at 100% (stage 3 of 3).")


def test_the_device_sentence_hides_a_canary_group_outside_a_restricted_members_access(personas, fleet):
    from console.models import Membership

    rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%")
    membership = Membership.objects.get(user=personas.restricted, product=fleet["product"])
    membership.restricted_groups.set([fleet["everyone"]])
    device = fleet["devices"][0]
    opened = Device.objects.with_target().get(pk=device.pk).target_rollout_open

    sentence = rollouts.device_status(device, rollout_open=opened, membership=membership)
    assert sentence == "v5 is rolling out; this device's stage 1 (a group outside your access) is open."
    assert rollout.current_stage == 0


@pytest.mark.parametrize("failures, offered, targeted, halts", [
    (1, 10, 1000, False),   # 10% of 10 offered: too few to judge 5% (20 needed)
    (1, 20, 1000, False),   # 5% of 20 is within 5%
    (2, 20, 1000, True),    # 10% of 20
    (1, 5, 100, False),     # 20% of 5 offered, but one failure in the stage's 100 is still within 5%
    (2, 5, 10, True),       # 2 failures are already more than 5% of the stage's 10
    (1, 1, 1, True),        # a stage of one device that failed
    (0, 50, 50, False),
])
def test_the_gate_judges_a_rate_over_enough_devices_or_once_it_cannot_pass(failures, offered, targeted, halts):
    assert rollouts.gate_fails(failures=failures, offered=offered, targeted=targeted, limit=5.0, min_updated=10) is halts


def test_an_abort_ends_the_offers_still_pending_so_a_later_rollout_counts_its_own(personas, fleet):
    first = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%")
    device = fleet["devices"][0]
    handshake(device, 4)
    rollouts.rollout_act(rollout=first, action="abort", actor=personas.developer)
    assert FirmwareUpdate.objects.get(rollout=first).reason == "Superseded: the v5 rollout was aborted."

    second = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%")
    assert handshake(device, 4).version == 5
    handshake(device, 5)

    assert second.stages.get(index=0).updated == 1 and first.stages.get(index=0).updated == 0


def test_a_staged_release_takes_its_previews_figures_until_the_product_changes(personas, fleet):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def plan():
        spec = rollouts.rollout_spec(product=fleet["product"], stages="prerelease, 100%")
        return services.release_plan(firmware=fleet["v5"], groups=[fleet["everyone"]], rollout=spec)

    assert plan().impact().by_stage == {0: 5, 1: 195}
    with CaptureQueriesContext(connection) as again:
        assert plan().impact().by_stage == {0: 5, 1: 195}
    assert not any("COUNT(*)" in query["sql"] for query in again)  # no statement over the fleet

    # A change of the product (an audited batch edit) makes the figures be counted afresh.
    from groups import services as group_services

    group_services.devices_edit_groups(product=fleet["product"], devices=Device.objects.filter(pk=fleet["devices"][9].pk),
                                       actor=personas.developer, add=[fleet["canary"]])
    assert plan().impact().by_stage == {0: 6, 1: 194}
    services.firmware_release(firmware=fleet["v5"], groups=[fleet["everyone"]], actor=personas.developer,
                              rollout=rollouts.rollout_spec(product=fleet["product"], stages="prerelease, 100%"))
    assert [stage.targeted for stage in Rollout.objects.get().stages.all()] == [6, 194]


def test_a_check_counts_any_number_of_timed_out_devices_in_the_same_queries(personas, fleet):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def check_with_late(count):
        rollout = staged(personas, fleet["v5"], [fleet["everyone"]], "prerelease, 100%", timeout_minutes=15,
                         max_failure_percent=100)
        rollouts.rollout_act(rollout=rollout, action="advance", actor=personas.developer)  # everyone open
        for device in fleet["devices"][10:10 + count]:
            handshake(device, 4)
        pass_time(rollout, timedelta(minutes=16))
        rollout.refresh_from_db()
        with CaptureQueriesContext(connection) as queries:
            rollouts.tick(rollout.pk, rollout.tick_generation)
        assert rollout.stages.get(index=1).timed_out == count
        rollouts.rollout_act(rollout=rollout, action="abort", actor=personas.developer)
        return len(queries)

    assert check_with_late(2) == check_with_late(40)
