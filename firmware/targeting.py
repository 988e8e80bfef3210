"""The firmware precedence rule of DESIGN.md, as SQL expressions.

First match wins:
1. a development device gets nothing automatically (only a version flashed to it by hand);
2. a locked device gets its locked version;
   2b. a device kept on a version by an aborted or rolled-back rollout (`Device.pinned_version`)
   gets that version, until the product's next release;
3. a device in groups with a released firmware gets the highest of those versions
   (ties go to the group whose name sorts first);
4. otherwise the product default, if one is released;
5. otherwise nothing.

A staged rollout (firmware.rollouts) changes no rule: it releases its version to its groups
(`Group.rolling_firmware`) and perhaps as the default only for the devices whose stage is *open*:
those the rollout has offered its version already, and, while it runs, those whose bucket is
below the open share or who are in a group of an open canary stage. Every other device keeps the
target it would have without the rollout.

Everything that needs a device's target (device pages, the API, the handshake) gets it from
`annotations()`, through `Device.objects.with_target()`; counts over a fleet (impact previews,
rollouts) come from `fleet_targets_sql()` below, the same rule written set-based. A
`Scenario` describes a change not yet made (a release, a group edit, a lock), which is how a
preview computes the targets a change *would* produce with the very same rule.
"""

from dataclasses import dataclass, field

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.lookups import Exact, LessThan

from console.access import OUTSIDE_ACCESS

UNCHANGED = object()

RULE_DEVELOPMENT = "development"
RULE_LOCKED = "locked"
RULE_PINNED = "pinned"
RULE_GROUP = "group"
RULE_PRODUCT_DEFAULT = "product_default"
RULE_NONE = "none"

RULE_LABELS = {
    RULE_DEVELOPMENT: "Development device: receives no automatic product firmware",
    RULE_LOCKED: "Locked to this version",
    RULE_PINNED: "Kept on this version by a stopped rollout until the next release",
    RULE_GROUP: "Released to group",
    RULE_PRODUCT_DEFAULT: "Product default",
    RULE_NONE: "No firmware is released to this device",
}


@dataclass(frozen=True)
class Scenario:
    """A hypothetical change. Empty means the current state.

    releases: group id -> version released to it afterwards (None: unreleased).
    default: the product default version afterwards (None: no default).
    add_groups / remove_groups: group ids every device of the queryset joins / leaves.
    development / locked: the development flag / locked version every device gets.
    """

    releases: dict = field(default_factory=dict)
    default: object = UNCHANGED
    add_groups: frozenset = frozenset()
    remove_groups: frozenset = frozenset()
    development: object = UNCHANGED
    locked: object = UNCHANGED


CURRENT = Scenario()


def _int(value):
    return Value(value, output_field=IntegerField())


def _text(value):
    return Value(value, output_field=CharField())


def _group_version(scenario: Scenario, path: str, rollout_open):
    """The version released to a group (reached through `path`), under the scenario: the version a
    live rollout is releasing to it where the device's stage is open (`rollout_open`)."""
    current = Case(
        When(Q(**{f"{path}rolling_firmware__isnull": False}) & Q(rollout_open), then=F(f"{path}rolling_firmware__version")),
        default=F(f"{path}released_firmware__version"),
        output_field=IntegerField(),
    )
    if not scenario.releases:
        return current
    whens = [When(**{f"{path}id": group_id}, then=_int(version)) for group_id, version in scenario.releases.items()]
    return Case(*whens, default=current, output_field=IntegerField())


def _best_member_group(scenario: Scenario, rollout_open, version_name: str):
    """Subqueries for the device's own best released group: (version, name). The name is the first
    by name among the groups of that version, read by `version_name`, the version's annotation
    (ordering by the version expression itself is beyond SQLite's correlated subqueries)."""
    from groups.models import GroupMembership

    best = (
        GroupMembership.objects.filter(device=OuterRef("pk"))
        .annotate(effective_version=_group_version(scenario, "group__", rollout_open))
        .filter(effective_version__isnull=False)
    )
    if scenario.remove_groups:
        best = best.exclude(group_id__in=scenario.remove_groups)
    named = best.filter(effective_version=OuterRef(version_name)).order_by("group__name")
    return (
        Subquery(best.order_by("-effective_version").values("effective_version")[:1], output_field=IntegerField()),
        Subquery(named.values("group__name")[:1], output_field=CharField()),
    )


def _best_added_group(scenario: Scenario, rollout_open, version_name: str):
    """Subqueries for the best released group among those every device joins: (version, name)."""
    from groups.models import Group

    best = (
        Group.objects.filter(id__in=scenario.add_groups)
        .annotate(effective_version=_group_version(scenario, "", rollout_open))
        .filter(effective_version__isnull=False)
    )
    named = best.filter(effective_version=OuterRef(version_name)).order_by("name")
    return (
        Subquery(best.order_by("-effective_version").values("effective_version")[:1], output_field=IntegerField()),
        Subquery(named.values("name")[:1], output_field=CharField()),
    )


LIVE = "product__live_rollout"


def rollout_open_condition() -> Q:
    """Whether the device's stage is open in its product's live rollout (False without one)."""
    from firmware.models import Rollout, rollout_bucket_expression
    from groups.models import GroupMembership

    in_open_canary = GroupMembership.objects.filter(
        device=OuterRef("pk"),
        group__rollout_stages__rollout=OuterRef(LIVE),
        group__rollout_stages__index__lte=OuterRef(f"{LIVE}__current_stage"),
    )
    in_open_share = LessThan(rollout_bucket_expression(F("pk"), F(f"{LIVE}__seed")), F(f"{LIVE}__open_share"))
    running = Q(**{f"{LIVE}__status": Rollout.Status.RUNNING})
    # The first test is false, never NULL, without a live rollout, so nothing after it is evaluated.
    # A device no rollout offered has no rollout_id: "= live id" would be NULL, and the whole
    # condition NULL rather than False for a device whose stage is closed.
    offered = Q(rollout_id__isnull=False) & Q(rollout_id=F(f"{LIVE}_id"))
    return Q(**{f"{LIVE}__isnull": False}) & (
        offered | (running & (Q(in_open_share) | Q(Exists(in_open_canary))))
    )


def annotations(scenario: Scenario = CURRENT, *, prefix: str = "target") -> dict:
    """Annotations for a Device queryset: `<prefix>_version`, `<prefix>_rule`, `<prefix>_group`,
    and `<prefix>_rollout_open` (whether the device's stage is open in a live rollout)."""
    gv, gn = f"{prefix}_group_version", f"{prefix}_group_name"
    result = {f"{prefix}_rollout_open": ExpressionWrapper(rollout_open_condition(), output_field=BooleanField())}
    rollout_open = Exact(OuterRef(f"{prefix}_rollout_open"), True)
    if scenario.add_groups:
        member_version, member_name = _best_member_group(scenario, rollout_open, f"{prefix}_member_version")
        added_version, added_name = _best_added_group(scenario, rollout_open, f"{prefix}_added_version")
        result[f"{prefix}_member_version"] = member_version
        result[f"{prefix}_member_name"] = member_name
        result[f"{prefix}_added_version"] = added_version
        result[f"{prefix}_added_name"] = added_name
        mv, mn = F(f"{prefix}_member_version"), F(f"{prefix}_member_name")
        av, an = F(f"{prefix}_added_version"), F(f"{prefix}_added_name")
        added_wins = (
            Q(**{f"{prefix}_added_version__isnull": False})
            & (
                Q(**{f"{prefix}_member_version__isnull": True})
                | Q(**{f"{prefix}_added_version__gt": mv})
                | Q(**{f"{prefix}_added_version": mv, f"{prefix}_added_name__lt": mn})
            )
        )
        result[gv] = Case(When(added_wins, then=av), default=mv, output_field=IntegerField())
        result[gn] = Case(When(added_wins, then=an), default=mn, output_field=CharField())
    else:
        result[gv], result[gn] = _best_member_group(scenario, rollout_open, gv)

    if scenario.default is UNCHANGED:
        result[f"{prefix}_default_version"] = Case(
            When(Q(**{f"{LIVE}__sets_default": True}) & Q(**{f"{prefix}_rollout_open": True}),
                 then=F(f"{LIVE}__firmware__version")),
            default=F("product__default_firmware__version"),
            output_field=IntegerField(),
        )
        default_version = F(f"{prefix}_default_version")
    else:
        default_version = _int(scenario.default)

    # The rules in order, as (condition, version, rule, group); constant conditions are
    # resolved here so the SQL only carries the branches that can still match.
    branches = []
    # A development device's only target is a version flashed to it (Device.flash_version).
    flashed = F("flash_version")
    if scenario.development is UNCHANGED:
        branches.append((Q(development=True), flashed, _text(RULE_DEVELOPMENT), _text(None)))
    elif scenario.development:
        branches.append((None, flashed, _text(RULE_DEVELOPMENT), _text(None)))
    if scenario.locked is UNCHANGED:
        branches.append(
            (Q(desired_firmware_version__isnull=False), F("desired_firmware_version"), _text(RULE_LOCKED), _text(None))
        )
    elif scenario.locked is not None:
        branches.append((None, _int(scenario.locked), _text(RULE_LOCKED), _text(None)))
    branches.append((Q(pinned_version__isnull=False), F("pinned_version"), _text(RULE_PINNED), _text(None)))
    branches.append((Q(**{f"{gv}__isnull": False}), F(gv), _text(RULE_GROUP), F(gn)))
    if scenario.default is UNCHANGED:
        branches.append(
            (Q(**{f"{prefix}_default_version__isnull": False}), default_version, _text(RULE_PRODUCT_DEFAULT), _text(None))
        )
    elif scenario.default is not None:
        branches.append((None, default_version, _text(RULE_PRODUCT_DEFAULT), _text(None)))
    branches.append((None, _int(None), _text(RULE_NONE), _text(None)))

    # Cut at the first branch that always matches.
    for index, (condition, *_rest) in enumerate(branches):
        if condition is None:
            branches = branches[: index + 1]
            break
    *conditional, (_, last_version, last_rule, last_group) = branches

    def pick(position, default, output_field):
        if not conditional:
            return default
        whens = [When(branch[0], then=branch[position]) for branch in conditional]
        return Case(*whens, default=default, output_field=output_field)

    result[f"{prefix}_version"] = pick(1, last_version, IntegerField())
    result[f"{prefix}_rule"] = pick(2, last_rule, CharField())
    result[f"{prefix}_group"] = pick(3, last_group, CharField())
    return result


def explain(rule: str, group: str | None) -> str:
    """A sentence for people: why a device has the target it has. `group` is the name the reader
    may see (see console.access.shown_group_name)."""
    if rule == RULE_GROUP and group == OUTSIDE_ACCESS:
        return f"Released to {OUTSIDE_ACCESS}"
    if rule == RULE_GROUP and group:
        return f"Released to group {group}"
    return RULE_LABELS.get(rule, rule)



def is_impacted(*, running, current_target, after_target) -> bool:
    """DESIGN.md's *impacted*: the change gives the device a target (`after_target`) that differs
    from its current target and from the version it runs. `impact()` counts the same condition
    in SQL (`_IMPACTED`)."""
    return after_target is not None and after_target != current_target and after_target != running


# is_impacted() over the rows of fleet_targets_sql().
_IMPACTED = """t.after_target IS NOT NULL
              AND (t.current_target IS NULL OR t.after_target <> t.current_target)
              AND (t.firmware_version IS NULL OR t.after_target <> t.firmware_version)"""


@dataclass
class Impact:
    """Devices a change would target for an OTA update, counted by the version they run now and
    by their target after the change."""

    total: int = 0
    by_running_version: dict = field(default_factory=dict)
    by_target_version: dict = field(default_factory=dict)
    by_stage: dict = field(default_factory=dict)  # stage index -> devices, for a staged release

    def as_json(self) -> dict:
        def rows(counts):
            ordered = sorted(counts.items(), key=lambda item: (item[0] is None, -(item[0] or 0)))
            return [{"version": version, "total": total} for version, total in ordered]

        return {
            "total": self.total,
            "by_version": rows(self.by_running_version),
            "by_target_version": rows(self.by_target_version),
        }


# ---------------------------------------------------------------------------------------------
# The same rule over a whole fleet, for counts
#
# `annotations()` finds each device's best group with a correlated subquery: right for a page of
# devices, but over a million rows Django repeats that subquery wherever the CASE refers to it.
# For counts (impact previews, rollouts, simulation) the rule is written once more, here beside
# its per-row form, as one aggregate over the memberships of the few groups that matter (released
# or changing), joined to the devices. Group-name tie-breaks only credit a group, never change a
# version, so counts do not need them. tests/reliability holds both forms to a reference model.


def _placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


def _greater(a: str, b: str) -> str:
    """The larger of two nullable SQL values, NULL only when both are (portable GREATEST)."""
    return f"CASE WHEN {a} IS NULL THEN {b} WHEN {b} IS NULL OR {a} >= {b} THEN {a} ELSE {b} END"


def _group_versions(scenario: Scenario, product_id: int) -> dict[int, tuple]:
    """Group id -> (version released now, under the scenario, now where the device's stage is
    open in the live rollout, under the scenario there), for the groups of the product where any
    is set. A group the devices leave releases nothing to them."""
    from groups.models import Group

    changed = set(scenario.releases) | set(scenario.remove_groups)
    rows = (
        Group.objects.filter(product_id=product_id)
        .filter(Q(released_firmware__isnull=False) | Q(rolling_firmware__isnull=False) | Q(id__in=changed))
        .values_list("id", "released_firmware__version", "rolling_firmware__version")
    )
    versions = {}
    for group_id, now, rolling in rows:
        now_open = rolling if rolling is not None else now
        after = scenario.releases.get(group_id, now)
        after_open = scenario.releases.get(group_id, now_open)
        if group_id in scenario.remove_groups and group_id not in scenario.add_groups:
            after = after_open = None
        if any(version is not None for version in (now, after, now_open, after_open)):
            versions[group_id] = (now, after, now_open, after_open)
    return versions


@dataclass(frozen=True)
class LiveRollout:
    """What the set-based rule needs of a product's live rollout (read in one query)."""

    id: int
    running: bool
    seed: int
    open_share: int
    sets_default: bool
    version: int
    canary_group_ids: tuple[int, ...]  # the groups of the open canary stages

    @classmethod
    def of(cls, product_id: int) -> "LiveRollout | None":
        from firmware.models import Rollout

        rollout = (
            Rollout.objects.filter(status__in=Rollout.LIVE, product_id=product_id)
            .select_related("firmware").first()
        )
        if rollout is None:
            return None
        canary = tuple(
            rollout.stages.filter(index__lte=rollout.current_stage, share__isnull=True)
            .values_list("groups", flat=True).exclude(groups=None).distinct()
        )
        return cls(rollout.id, rollout.status == Rollout.Status.RUNNING, rollout.seed, rollout.open_share,
                   rollout.sets_default, rollout.firmware.version, canary)

    def open_sql(self, device: str) -> tuple[str, list]:
        """SQL (and params) of `rollout_open_condition()` for the device row aliased `device`."""
        from firmware.models import rollout_bucket_sql

        sql, params = f"{device}.rollout_id = %s", [self.id]
        if self.running:
            opened = [f"{rollout_bucket_sql(f'{device}.id', str(int(self.seed)))} < %s"]
            params.append(self.open_share)
            if self.canary_group_ids:
                opened.append(  # not correlated: the canary groups' members are read once
                    f"{device}.id IN (SELECT cm.device_id FROM groups_groupmembership cm"
                    f" WHERE cm.group_id IN ({_placeholders(self.canary_group_ids)}))"
                )
                params += list(self.canary_group_ids)
            sql = f"({sql} OR {' OR '.join(opened)})"
        return sql, params


def fleet_targets_sql(devices, scenario: Scenario = CURRENT, *, product_id: int) -> tuple[str, list]:
    """SQL and params of rows (id, firmware_version, current_target, after_target) for a Device
    queryset of one product: the target now and under `scenario`, by the precedence rule.

    The versions released to each group, now and under the scenario, are read first (a few
    rows) and written into the statement, which then only aggregates the devices' memberships
    of those groups. When the scenario only changes some groups' releases or memberships, only
    members of those groups can change target, and the rows are limited to them. With a live
    rollout, each device's target is taken from the rollout's side or the other as its stage is
    open or not (`LiveRollout.open_sql`).
    """
    versions = _group_versions(scenario, product_id)
    live = LiveRollout.of(product_id)
    add = sorted(scenario.add_groups)
    changed = sorted(set(scenario.releases) | (scenario.remove_groups - scenario.add_groups))
    only_changed = (
        bool(changed) and not add and scenario.default is UNCHANGED
        and scenario.development is UNCHANGED and scenario.locked is UNCHANGED
    )

    def target(*, development, locked, group_version, default):
        return (
            f"CASE WHEN {development} THEN d.flash_version WHEN {locked} IS NOT NULL THEN {locked}"
            f" WHEN d.pinned_version IS NOT NULL THEN d.pinned_version"
            f" ELSE COALESCE({group_version}, {default}) END"
        )

    def either(open_sql, open_params, *, closed, opened):
        """A target taken from the rollout's side where the device's stage is open."""
        (closed_sql, closed_params), (opened_sql, opened_params) = closed, opened
        if live is None:
            return closed_sql, closed_params
        return (f"CASE WHEN {open_sql} THEN {opened_sql} ELSE {closed_sql} END",
                [*open_params, *opened_params, *closed_params])

    open_sql, open_params = live.open_sql("d") if live is not None else ("", [])
    current_default = (
        "(SELECT df.version FROM console_product p JOIN firmware_firmware df ON df.id = p.default_firmware_id"
        " WHERE p.id = %s)"
    )
    open_default = "CAST(%s AS integer)" if live is not None and live.sets_default else current_default
    open_default_params = [live.version if live.sets_default else product_id] if live is not None else []

    def current_side(group_version, default, default_params):
        return (target(development="d.development", locked="d.desired_firmware_version",
                       group_version=group_version, default=default), default_params)

    current, current_params = either(
        open_sql, open_params,
        closed=current_side("d.current_group_version", current_default, [product_id]),
        opened=current_side("d.current_open_group_version", open_default, open_default_params),
    )

    def after_side(group_position, open_side):
        """after_target on one side, with its placeholders in textual order."""
        params: list = []
        if scenario.development is UNCHANGED:
            development = "d.development"
        else:
            development = "%s"
            params.append(bool(scenario.development))
        if scenario.locked is UNCHANGED:
            locked = "d.desired_firmware_version"
        else:
            locked = "CAST(%s AS integer)"
            params += [scenario.locked, scenario.locked]  # the CASE names the lock twice
        group_version = f"d.{'after_open' if open_side else 'after'}_group_version"
        if add:
            # The best release among the groups every device joins, the same for all of them.
            added = [versions[g][group_position] for g in add if versions.get(g) and versions[g][group_position] is not None]
            if added:
                group_version = _greater(group_version, str(int(max(added))))
        if scenario.default is not UNCHANGED:
            default = "CAST(%s AS integer)"
            params.append(scenario.default)
        elif open_side:
            default = open_default
            params += open_default_params
        else:
            default = current_default
            params.append(product_id)
        return target(development=development, locked=locked, group_version=group_version, default=default), params

    after, after_params = either(open_sql, open_params, closed=after_side(1, False), opened=after_side(3, True))

    device_sql, device_params = (
        devices.order_by()
        .values("id", "firmware_version", "development", "desired_firmware_version", "flash_version",
                "pinned_version", "rollout_id")
        .query.sql_with_params()
    )

    # Each released group's version now and under the scenario (and on the rollout's side),
    # written into the statement as CASEs over the group id, and the groups' ids as a list, so the
    # planner can estimate how many memberships it reads; the devices' memberships in them are
    # aggregated per device.
    released = sorted(versions.items())
    columns = ("dev.id, dev.firmware_version, dev.development, dev.desired_firmware_version, dev.flash_version,"
               " dev.pinned_version, dev.rollout_id")
    names = ["current_group_version", "after_group_version", "current_open_group_version", "after_open_group_version"]
    positions = [0, 1] if live is None else [0, 1, 2, 3]
    if released:
        aggregates, versions_params = [], []
        for position in positions:
            whens = " ".join("WHEN %s THEN CAST(%s AS integer)" for _ in released)
            aggregates.append(f"MAX(CASE m.group_id {whens} END) AS {names[position]}")
            versions_params += [v for group_id, four in released for v in (group_id, four[position])]
        versions_sql = ", ".join(aggregates)
        memberships = (
            "LEFT JOIN groups_groupmembership m ON m.device_id = dev.id"
            f" AND m.group_id IN ({_placeholders(released)})"
        )
        memberships_params = [group_id for group_id, _ in released]
        group_by = f"GROUP BY {columns}"
    else:
        versions_sql = ", ".join(f"CAST(NULL AS integer) AS {names[position]}" for position in positions)
        versions_params, memberships, memberships_params, group_by = [], "", [], ""
    where, where_params = "", []
    if only_changed:
        where = f"WHERE dev.id IN (SELECT c.device_id FROM groups_groupmembership c WHERE c.group_id IN ({_placeholders(changed)}))"
        where_params = changed

    sql = f"""
        SELECT d.id, d.firmware_version, {current} AS current_target, {after} AS after_target
        FROM (
            SELECT {columns}, {versions_sql}
            FROM ({device_sql}) AS dev
            {memberships}
            {where}
            {group_by}
        ) AS d
    """
    return sql, [*current_params, *after_params, *versions_params, *device_params, *memberships_params, *where_params]


def impact(devices, scenario: Scenario, *, product_id: int, stage=None) -> Impact:
    """How many of `devices` (of one product) the scenario would newly target for an update.

    Impacted as `is_impacted()` says. One statement, whatever the size of the fleet. `stage`, the
    SQL and params of a staged release's stage of a device row `t`, also counts them by stage.
    """
    from django.db import connection

    if scenario == CURRENT:
        return Impact()
    sql, params = fleet_targets_sql(devices, scenario, product_id=product_id)
    stage_sql, stage_params = stage if stage is not None else ("0", [])
    result = Impact()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT s.firmware_version, s.after_target, s.stage, COUNT(*)
            FROM (SELECT t.firmware_version, t.after_target, {stage_sql} AS stage FROM ({sql}) AS t WHERE {_IMPACTED}) AS s
            GROUP BY s.firmware_version, s.after_target, s.stage
            """,
            [*stage_params, *params],
        )
        for running, after_target, index, count in cursor.fetchall():
            result.total += count
            result.by_running_version[running] = result.by_running_version.get(running, 0) + count
            result.by_target_version[after_target] = result.by_target_version.get(after_target, 0) + count
            if stage is not None:
                result.by_stage[index] = result.by_stage.get(index, 0) + count
    return result
