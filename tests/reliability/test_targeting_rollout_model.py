"""Property tests: the rule's two SQL forms agree with a reference model while a rollout is live.

The reference model of tests/reliability/test_targeting_model.py, extended with a product's live
rollout: the groups it releases its version to (`Group.rolling_firmware`), perhaps as the product
default, its stages (canary groups first, then cumulative shares), the stage opened last, its
status, the devices it has offered its version already (`Device.rollout`) and the devices a
stopped rollout kept on a version (`Device.pinned_version`). The per-row annotation
(`with_target()`), the set-based form (`fleet_targets_sql()`) and the impact preview built on it
(`targeting.impact`) must all say what the model says, for every device.
"""

from datetime import timedelta
from decimal import Decimal

from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from console.models import Product
from devices.models import Device
from firmware import targeting
from firmware.models import BUCKETS, Rollout, RolloutStage, rollout_bucket
from tests.reliability.test_targeting_model import GROUP_NAMES, VERSIONS, build_world, reference_impact

ROLLING = 6  # the version the rollout releases: above every other, so it wins wherever open
ALL_VERSIONS = [*VERSIONS, ROLLING]


def reference_open(device, rollout, memberships):
    """Whether the device's stage is open: offered already, or (while running) its bucket is below
    the open share or it is in a group of an open canary stage. The groups are the device's
    memberships as stored: a previewed group edit does not move a device into a canary stage."""
    if rollout is None:
        return False
    if device["offered"]:
        return True
    if rollout["status"] != Rollout.Status.RUNNING:
        return False
    opened = rollout["stages"][: rollout["current"] + 1]
    shares = [stage for stage in opened if isinstance(stage, int)]
    open_share = max(shares, default=0)
    if rollout_bucket(device["pk"], rollout["seed"]) < open_share:
        return True
    canary = {g for stage in opened if not isinstance(stage, int) for g in stage}
    return bool(canary & set(memberships))


def reference_target(device, memberships, releases, default, rollout, *, after=None):
    """DESIGN.md's precedence with rule 2b (pinned) and the live rollout's side where the device's
    stage is open; `after` is a change (releases, default, add, remove) not yet made."""
    after = after or {}
    if device["development"]:
        return None, "development", None
    if device["locked"] is not None:
        return device["locked"], "locked", None
    if device["pinned"] is not None:
        return device["pinned"], "pinned", None
    is_open = reference_open(device, rollout, memberships)
    groups = (set(memberships) - set(after.get("remove", ()))) | set(after.get("add", ()))
    released = []
    for group in groups:
        version = releases.get(group)
        if is_open and rollout is not None and group in rollout["groups"]:
            version = ROLLING
        if group in after.get("releases", {}):
            version = after["releases"][group]
        if version is not None:
            released.append((version, group))
    if released:
        version = max(v for v, _ in released)
        return version, "group", min(g for v, g in released if v == version)
    if "default" in after:
        chosen = after["default"]
    else:
        chosen = ROLLING if is_open and rollout is not None and rollout["sets_default"] else default
    if chosen is not None:
        return chosen, "product_default", None
    return None, "none", None


devices_strategy = st.lists(
    st.fixed_dictionaries({
        "development": st.booleans(),
        "locked": st.none() | st.sampled_from(VERSIONS),
        "running": st.none() | st.sampled_from(ALL_VERSIONS),
        "groups": st.sets(st.sampled_from(GROUP_NAMES)),
        "pinned": st.none() | st.none() | st.sampled_from(VERSIONS),
        "offered": st.booleans(),
    }),
    min_size=1,
    max_size=12,
)
releases_strategy = st.dictionaries(st.sampled_from(GROUP_NAMES), st.none() | st.sampled_from(VERSIONS))
optional_version = st.none() | st.sampled_from(VERSIONS)


@st.composite
def rollouts(draw):
    """A live rollout: its groups, whether it sets the default, canary stages then shares, the
    stage opened last (-1: not started), its status and seed."""
    groups = draw(st.sets(st.sampled_from(GROUP_NAMES)))
    sets_default = draw(st.booleans())
    if not groups and not sets_default:
        groups = {draw(st.sampled_from(GROUP_NAMES))}
    canaries = draw(st.lists(st.sets(st.sampled_from(GROUP_NAMES), min_size=1, max_size=2), max_size=2))
    shares = sorted(draw(st.sets(st.integers(1, BUCKETS - 1), max_size=3))) + [BUCKETS]
    stages = [frozenset(c) for c in canaries] + shares
    status = draw(st.sampled_from([Rollout.Status.RUNNING, Rollout.Status.RUNNING, Rollout.Status.PAUSED,
                                   Rollout.Status.HALTED, Rollout.Status.SCHEDULED]))
    current = -1 if status == Rollout.Status.SCHEDULED else draw(st.integers(0, len(stages) - 1))
    return {"groups": groups, "sets_default": sets_default, "stages": stages, "current": current,
            "status": status, "seed": draw(st.integers(0, (1 << 20) - 1))}


class TargetingWithALiveRolloutAgreesWithTheReferenceModel(TestCase):
    def build(self, fleet, releases, default, rollout):
        product, firmware, groups, devices = build_world(
            fleet, releases, default, versions=ALL_VERSIONS, rolling={name: ROLLING for name in rollout["groups"]},
            device_fields=lambda spec: {"pinned_version": spec["pinned"]},
        )
        live = Rollout.objects.create(
            product=product, firmware=firmware[ROLLING], status=rollout["status"], sets_default=rollout["sets_default"],
            seed=rollout["seed"], current_stage=rollout["current"], timeout=timedelta(hours=1),
            open_share=max([s for s in rollout["stages"][: rollout["current"] + 1] if isinstance(s, int)], default=0),
        )
        live.release_groups.set([groups[g] for g in rollout["groups"]])
        for index, stage in enumerate(rollout["stages"]):
            row = RolloutStage.objects.create(
                rollout=live, index=index, share=stage if isinstance(stage, int) else None,
                soak=timedelta(0), max_failure_percent=Decimal("5"),
            )
            if not isinstance(stage, int):
                row.groups.set([groups[g] for g in stage])
        Product.objects.filter(pk=product.pk).update(live_rollout=live)
        Device.objects.filter(pk__in=[d.pk for spec, d in zip(fleet, devices) if spec["offered"]]).update(rollout=live)
        for spec, device in zip(fleet, devices):
            spec["pk"] = device.pk
        return product, groups, devices

    def fleet_rows(self, devices, scenario, product):
        sql, params = targeting.fleet_targets_sql(
            Device.objects.filter(pk__in=[d.pk for d in devices]), scenario, product_id=product.id
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {pk: (current, after) for pk, _running, current, after in cursor.fetchall()}

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(fleet=devices_strategy, releases=releases_strategy, default=optional_version, rollout=rollouts())
    def test_both_forms_give_every_device_the_models_target(self, fleet, releases, default, rollout):
        product, _groups, devices = self.build(fleet, releases, default, rollout)
        rows = {d.pk: d for d in Device.objects.filter(pk__in=[d.pk for d in devices]).with_target()}
        fleet_rows = self.fleet_rows(devices, targeting.CURRENT, product)
        for spec, device in zip(fleet, devices):
            expected = reference_target(spec, spec["groups"], releases, default, rollout)
            row = rows[device.pk]
            assert (row.target_version, row.target_rule, row.target_group) == expected, spec
            assert row.target_rollout_open == reference_open(spec, rollout, spec["groups"]), spec
            assert fleet_rows[device.pk] == (expected[0], expected[0]), spec

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        fleet=devices_strategy,
        releases=releases_strategy,
        default=optional_version,
        rollout=rollouts(),
        new_releases=st.dictionaries(st.sampled_from(GROUP_NAMES), st.none() | st.sampled_from(ALL_VERSIONS)),
        new_default=st.sampled_from(["unchanged", None, *ALL_VERSIONS]),
    )
    def test_a_release_preview_while_a_rollout_is_live_matches_the_model(
        self, fleet, releases, default, rollout, new_releases, new_default
    ):
        product, groups, devices = self.build(fleet, releases, default, rollout)
        change = {"releases": new_releases, **({} if new_default == "unchanged" else {"default": new_default})}
        before = [reference_target(s, s["groups"], releases, default, rollout) for s in fleet]
        after = [reference_target(s, s["groups"], releases, default, rollout, after=change) for s in fleet]

        scenario = targeting.Scenario(
            releases={groups[name].id: version for name, version in new_releases.items()},
            default=targeting.UNCHANGED if new_default == "unchanged" else new_default,
        )
        rows = self.fleet_rows(devices, scenario, product)
        for device, old, new in zip(devices, before, after):
            if device.pk in rows:  # a release limits the rows to the members of the groups it changes
                assert rows[device.pk] == (old[0], new[0])
        queryset = Device.objects.filter(pk__in=[d.pk for d in devices])
        annotated = {d.pk: d for d in queryset.with_target(scenario, prefix="new")}
        for device, expected in zip(devices, after):
            row = annotated[device.pk]
            assert (row.new_version, row.new_rule, row.new_group) == expected
        impact = targeting.impact(queryset, scenario, product_id=product.id)
        assert impact.by_running_version == reference_impact(fleet, before, after)
        assert impact.total == sum(impact.by_running_version.values())

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        fleet=devices_strategy,
        releases=releases_strategy,
        default=optional_version,
        rollout=rollouts(),
        add=st.sets(st.sampled_from(GROUP_NAMES)),
        remove=st.sets(st.sampled_from(GROUP_NAMES)),
    )
    def test_a_group_edit_preview_while_a_rollout_is_live_matches_the_model(
        self, fleet, releases, default, rollout, add, remove
    ):
        product, groups, devices = self.build(fleet, releases, default, rollout)
        remove = remove - add
        change = {"add": add, "remove": remove}
        before = [reference_target(s, s["groups"], releases, default, rollout) for s in fleet]
        after = [reference_target(s, s["groups"], releases, default, rollout, after=change) for s in fleet]

        scenario = targeting.Scenario(
            add_groups=frozenset(groups[g].id for g in add), remove_groups=frozenset(groups[g].id for g in remove)
        )
        queryset = Device.objects.filter(pk__in=[d.pk for d in devices])
        rows = {d.pk: d for d in queryset.with_target(scenario, prefix="new")}
        fleet_rows = self.fleet_rows(devices, scenario, product)
        for device, old, new in zip(devices, before, after):
            row = rows[device.pk]
            assert (row.new_version, row.new_rule, row.new_group) == new
            if device.pk in fleet_rows:  # a removal alone limits the rows to the groups' members
                assert fleet_rows[device.pk] == (old[0], new[0])
        assert targeting.impact(queryset, scenario, product_id=product.id).by_running_version == reference_impact(
            fleet, before, after
        )
