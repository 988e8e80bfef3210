"""The firmware precedence rule of DESIGN.md, as SQL expressions.

First match wins:
1. a development device gets nothing automatically;
2. a locked device gets its locked version;
3. a device in groups with a released firmware gets the highest of those versions
   (ties go to the group whose name sorts first);
4. otherwise the product default, if one is released;
5. otherwise nothing.

Everything that needs a target (device pages, the API, impact previews, the handshake) gets it
from `annotations()`, through `Device.objects.with_target()`, so they cannot disagree. A
`Scenario` describes a change not yet made (a release, a group edit, a lock), which is how a
preview computes the targets a change *would* produce with the very same rule.
"""

from dataclasses import dataclass, field

from django.db.models import (
    Case,
    CharField,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)

UNCHANGED = object()

RULE_DEVELOPMENT = "development"
RULE_LOCKED = "locked"
RULE_GROUP = "group"
RULE_PRODUCT_DEFAULT = "product_default"
RULE_NONE = "none"

RULE_LABELS = {
    RULE_DEVELOPMENT: "Development device: receives no automatic product firmware",
    RULE_LOCKED: "Locked to this version",
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


def _group_version(scenario: Scenario, path: str):
    """The version released to a group (reached through `path`), under the scenario."""
    current = F(f"{path}released_firmware__version")
    if not scenario.releases:
        return current
    whens = [When(**{f"{path}id": group_id}, then=_int(version)) for group_id, version in scenario.releases.items()]
    return Case(*whens, default=current, output_field=IntegerField())


def _best_member_group(scenario: Scenario):
    """Subqueries for the device's own best released group: (version, name)."""
    from groups.models import GroupMembership

    best = (
        GroupMembership.objects.filter(device=OuterRef("pk"))
        .annotate(effective_version=_group_version(scenario, "group__"))
        .filter(effective_version__isnull=False)
    )
    if scenario.remove_groups:
        best = best.exclude(group_id__in=scenario.remove_groups)
    best = best.order_by("-effective_version", "group__name")
    return (
        Subquery(best.values("effective_version")[:1], output_field=IntegerField()),
        Subquery(best.values("group__name")[:1], output_field=CharField()),
    )


def _best_added_group(scenario: Scenario):
    """Subqueries for the best released group among those every device joins: (version, name)."""
    from groups.models import Group

    best = (
        Group.objects.filter(id__in=scenario.add_groups)
        .annotate(effective_version=_group_version(scenario, ""))
        .filter(effective_version__isnull=False)
        .order_by("-effective_version", "name")
    )
    return (
        Subquery(best.values("effective_version")[:1], output_field=IntegerField()),
        Subquery(best.values("name")[:1], output_field=CharField()),
    )


def annotations(scenario: Scenario = CURRENT, *, prefix: str = "target") -> dict:
    """Annotations for a Device queryset: `<prefix>_version`, `<prefix>_rule`, `<prefix>_group`."""
    gv, gn = f"{prefix}_group_version", f"{prefix}_group_name"
    result = {}
    member_version, member_name = _best_member_group(scenario)
    if scenario.add_groups:
        added_version, added_name = _best_added_group(scenario)
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
        result[gv], result[gn] = member_version, member_name

    if scenario.default is UNCHANGED:
        default_version = F("product__default_firmware__version")
    else:
        default_version = _int(scenario.default)

    # The rules in order, as (condition, version, rule, group); constant conditions are
    # resolved here so the SQL only carries the branches that can still match.
    branches = []
    if scenario.development is UNCHANGED:
        branches.append((Q(development=True), _int(None), _text(RULE_DEVELOPMENT), _text(None)))
    elif scenario.development:
        branches.append((None, _int(None), _text(RULE_DEVELOPMENT), _text(None)))
    if scenario.locked is UNCHANGED:
        branches.append(
            (Q(desired_firmware_version__isnull=False), F("desired_firmware_version"), _text(RULE_LOCKED), _text(None))
        )
    elif scenario.locked is not None:
        branches.append((None, _int(scenario.locked), _text(RULE_LOCKED), _text(None)))
    branches.append((Q(**{f"{gv}__isnull": False}), F(gv), _text(RULE_GROUP), F(gn)))
    if scenario.default is UNCHANGED:
        branches.append(
            (Q(product__default_firmware__isnull=False), default_version, _text(RULE_PRODUCT_DEFAULT), _text(None))
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
    """A sentence for people: why a device has the target it has."""
    if rule == RULE_GROUP and group:
        return f"Released to group {group}"
    return RULE_LABELS.get(rule, rule)




@dataclass
class Impact:
    """Devices a change would target for an OTA update, by running and by new target version."""

    total: int = 0
    by_version: dict = field(default_factory=dict)
    by_target_version: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        def rows(counts):
            ordered = sorted(counts.items(), key=lambda item: (item[0] is None, -(item[0] or 0)))
            return [{"version": version, "total": total} for version, total in ordered]

        return {
            "total": self.total,
            "by_version": rows(self.by_version),
            "by_target_version": rows(self.by_target_version),
        }


def impact(devices, scenario: Scenario) -> Impact:
    """How many of `devices` the scenario would newly target for an update, in one query.

    A device is impacted when its target changes and the new target is a version it does
    not run already.
    """
    from django.db.models import Count

    rows = (
        devices.with_target(prefix="old")
        .with_target(scenario, prefix="new")
        .filter(
            Q(new_version__isnull=False)
            & (Q(old_version__isnull=True) | ~Q(new_version=F("old_version")))
            & (Q(firmware_version__isnull=True) | ~Q(new_version=F("firmware_version")))
        )
        .order_by()
        .values("firmware_version", "new_version")
        .annotate(devices=Count("id"))
    )
    result = Impact()
    for row in rows:
        result.total += row["devices"]
        running, target = row["firmware_version"], row["new_version"]
        result.by_version[running] = result.by_version.get(running, 0) + row["devices"]
        result.by_target_version[target] = result.by_target_version.get(target, 0) + row["devices"]
    return result
