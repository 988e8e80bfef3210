"""Property tests: the SQL targeting rule agrees with a tiny reference model of DESIGN.md.

Hypothesis draws fleets (development flags, locks, memberships), releases and a product default,
plus a hypothetical change; the annotation, its explanation and the impact preview must all
match what the reference model computes in plain Python.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from console.models import Product
from devices.models import Device
from firmware import targeting
from firmware.models import Firmware
from groups.models import Group, GroupMembership

VERSIONS = [1, 2, 3, 4, 5]
GROUP_NAMES = ["alpha", "beta", "gamma", "delta"]


def reference_target(device, memberships, releases, default, *, add=(), remove=()):
    """DESIGN.md's precedence, first match wins; returns (version, rule, group)."""
    if device["development"]:
        return None, "development", None
    if device["locked"] is not None:
        return device["locked"], "locked", None
    groups = (set(memberships) - set(remove)) | set(add)
    released = [(releases[g], g) for g in groups if releases.get(g) is not None]
    if released:
        version = max(v for v, _ in released)
        return version, "group", min(g for v, g in released if v == version)
    if default is not None:
        return default, "product_default", None
    return None, "none", None


def reference_impact(fleet, before, after):
    impacted = {}
    for device, old, new in zip(fleet, before, after):
        if new[0] is not None and new[0] != old[0] and new[0] != device["running"]:
            impacted[device["running"]] = impacted.get(device["running"], 0) + 1
    return impacted


devices_strategy = st.lists(
    st.fixed_dictionaries({
        "development": st.booleans(),
        "locked": st.none() | st.sampled_from(VERSIONS),
        "running": st.none() | st.sampled_from(VERSIONS),
        "groups": st.sets(st.sampled_from(GROUP_NAMES)),
    }),
    min_size=1,
    max_size=12,
)
releases_strategy = st.dictionaries(st.sampled_from(GROUP_NAMES), st.none() | st.sampled_from(VERSIONS))
optional_version = st.none() | st.sampled_from(VERSIONS)


def build_world(fleet, releases, default, *, versions=VERSIONS, rolling=None, device_fields=None):
    """The model's fleet in the database: a product with `versions`, the groups with their releases
    (and `rolling`, group name -> version a live rollout releases to it), the default, and the
    devices with their memberships (`device_fields(spec)` adds fields). Returns (product, firmware
    by version, groups by name, devices)."""
    rolling = rolling or {}
    product = Product.objects.create(slug="model", name="Model")
    firmware = {
        v: Firmware.objects.create(product=product, version=v, title=f"v{v}", sha256="0" * 64, binary="x.bin")
        for v in versions
    }
    groups = {
        name: Group.objects.create(
            product=product, name=name, color="#000000",
            released_firmware=firmware[releases[name]] if releases.get(name) else None,
            rolling_firmware=firmware[rolling[name]] if name in rolling else None,
        )
        for name in GROUP_NAMES
    }
    if default is not None:
        product.default_firmware = firmware[default]
        product.save(update_fields=["default_firmware"])
    devices = []
    for index, spec in enumerate(fleet):
        device = Device.objects.create(
            product=product, device_id=f"{index:024x}", development=spec["development"],
            desired_firmware_version=spec["locked"], firmware_version=spec["running"],
            **(device_fields(spec) if device_fields else {}),
        )
        GroupMembership.objects.bulk_create(GroupMembership(group=groups[g], device=device) for g in spec["groups"])
        devices.append(device)
    return product, firmware, groups, devices


class TargetingAgreesWithTheReferenceModel(TestCase):
    def build(self, fleet, releases, default):
        product, _firmware, groups, devices = build_world(fleet, releases, default)
        return product, groups, devices

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(fleet=devices_strategy, releases=releases_strategy, default=optional_version)
    def test_the_annotation_and_its_explanation_match_the_model(self, fleet, releases, default):
        _product, _groups, devices = self.build(fleet, releases, default)
        rows = {d.pk: d for d in Device.objects.filter(pk__in=[d.pk for d in devices]).with_target()}
        for spec, device in zip(fleet, devices):
            row = rows[device.pk]
            expected = reference_target(spec, spec["groups"], releases, default)
            assert (row.target_version, row.target_rule, row.target_group) == expected
            if expected[1] == "group":
                assert targeting.explain(row.target_rule, row.target_group) == f"Released to group {expected[2]}"

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        fleet=devices_strategy,
        releases=releases_strategy,
        default=optional_version,
        new_releases=releases_strategy,
        new_default=st.sampled_from(["unchanged", None, *VERSIONS]),
    )
    def test_a_release_preview_matches_the_model(self, fleet, releases, default, new_releases, new_default):
        product, groups, devices = self.build(fleet, releases, default)
        after_releases = {**releases, **new_releases}
        after_default = default if new_default == "unchanged" else new_default
        before = [reference_target(s, s["groups"], releases, default) for s in fleet]
        after = [reference_target(s, s["groups"], after_releases, after_default) for s in fleet]

        scenario = targeting.Scenario(
            releases={groups[name].id: version for name, version in new_releases.items()},
            default=targeting.UNCHANGED if new_default == "unchanged" else new_default,
        )
        impact = targeting.impact(Device.objects.filter(pk__in=[d.pk for d in devices]), scenario, product_id=product.id)
        assert impact.by_running_version == reference_impact(fleet, before, after)
        assert impact.total == sum(impact.by_running_version.values())

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        fleet=devices_strategy,
        releases=releases_strategy,
        default=optional_version,
        add=st.sets(st.sampled_from(GROUP_NAMES)),
        remove=st.sets(st.sampled_from(GROUP_NAMES)),
    )
    def test_a_group_edit_preview_matches_the_model(self, fleet, releases, default, add, remove):
        product, groups, devices = self.build(fleet, releases, default)
        remove = remove - add
        before = [reference_target(s, s["groups"], releases, default) for s in fleet]
        after = [reference_target(s, s["groups"], releases, default, add=add, remove=remove) for s in fleet]

        scenario = targeting.Scenario(
            add_groups=frozenset(groups[g].id for g in add), remove_groups=frozenset(groups[g].id for g in remove)
        )
        queryset = Device.objects.filter(pk__in=[d.pk for d in devices])
        rows = {d.pk: d for d in queryset.with_target(scenario, prefix="new")}
        for device, expected in zip(devices, after):
            row = rows[device.pk]
            assert (row.new_version, row.new_rule, row.new_group) == expected
        assert targeting.impact(queryset, scenario, product_id=product.id).by_running_version == reference_impact(fleet, before, after)
