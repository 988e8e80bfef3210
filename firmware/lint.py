"""Release lint: releases that cannot do what they seem to.

* a group release that decides no device (every member is in a group with a higher release, is
  locked, or is a development device);
* a group release older than the product default, which keeps its members on old firmware;
* devices in several released groups (they get the highest version; say which);
* releases to empty groups.

One statement aggregates the memberships of the *released* groups only (a few groups of a
product carry releases), by the combination of released groups a device is in and the best
version among them; everything else is arithmetic over those few rows, kept in the cache until
the product next changes. Development and locked devices are counted apart, because the group
rule does not apply to them (firmware.targeting).
"""

from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from groups.models import Group

COMBINATIONS_SHOWN = 5
# The aggregate takes about a second at a million devices; it is kept until the product changes
# (see _state), and at most this long.
CACHE_SECONDS = 3600


@dataclass(frozen=True)
class Warning:
    kind: str  # "never_wins" | "older_than_default" | "several_groups" | "empty_group"
    message: str
    devices: int
    groups: tuple[str, ...]
    devices_url: str


def _combinations(product_id: int, released: dict) -> list[tuple[tuple[int, ...], int, int, int]]:
    """(released group ids, best version, devices, devices the group rule applies to) per
    combination of released groups devices are in.

    Each released group is a bit; a device's combination is the sum of its groups' bits (a device
    is in a group once, so the sum is the bitwise OR), which aggregates far cheaper than a list of
    ids. Development and locked devices are few and indexed: they are joined, not scanned.
    """
    bits = {group_id: 1 << index for index, group_id in enumerate(sorted(released))}
    values = ", ".join(["(%s, %s, %s)"] * len(bits))
    params = [item for group_id, bit in bits.items() for item in (group_id, bit, released[group_id].released_firmware.version)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH released (group_id, bit, version) AS (VALUES {values}),
            held AS (
                SELECT id FROM devices_device
                WHERE product_id = %s AND (development OR desired_firmware_version IS NOT NULL)
            ),
            per_device AS (
                SELECT gm.device_id, SUM(r.bit) AS mask, MAX(r.version) AS best
                FROM groups_groupmembership gm JOIN released r ON r.group_id = gm.group_id
                GROUP BY gm.device_id
            )
            SELECT pd.mask, pd.best, COUNT(*), COUNT(held.id)
            FROM per_device pd LEFT JOIN held ON held.id = pd.device_id
            GROUP BY pd.mask, pd.best
            """,
            [*params, product_id],
        )
        rows = cursor.fetchall()
    return [
        (tuple(group_id for group_id, bit in bits.items() if int(mask) & bit), best, total, total - held)
        for mask, best, total, held in rows
    ]


def _state(product_id: int) -> int:
    """What the lint depends on changes only through the services, which all record an audit
    event: the product's newest event names the state the lint was computed for."""
    from console.models import AuditEvent

    return AuditEvent.newest_id(product_id)


def release_lint(*, product, membership=None, devices_url: str | None = None) -> list[Warning]:
    """The warnings about the product's releases. A member restricted to groups (`membership`)
    gets those about their groups only."""
    devices_url = devices_url or reverse("devices:list", kwargs={"product": product.slug})
    released = {
        group.id: group
        for group in Group.objects.filter(product=product, released_firmware__isnull=False).select_related(
            "released_firmware"
        )
    }
    if not released:
        return []
    default = product.default_firmware.version if product.default_firmware_id else None
    key = f"release-lint:{product.pk}:{_state(product.pk)}"
    combinations = cache.get(key)
    if combinations is None:
        combinations = _combinations(product.pk, released)
        cache.set(key, combinations, CACHE_SECONDS)

    decided = defaultdict(int)  # group id -> devices whose target this group's release decides
    for group_ids, best, _total, following in combinations:
        for group_id in group_ids:
            if released[group_id].released_firmware.version == best:
                decided[group_id] += following

    def link(names, *, match_all=False) -> str:
        query = [("groups", ",".join(names))] + ([("groups_match", "all")] if match_all else [])
        return f"{devices_url}?{urlencode(query)}"

    warnings = []
    for group in sorted(released.values(), key=lambda group: group.name):
        version = group.released_firmware.version
        if group.device_count == 0:
            warnings.append(Warning(
                "empty_group", f"{group.name} has v{version} released to it but no devices.", 0, (group.name,),
                link([group.name]),
            ))
        elif decided[group.id] == 0:
            warnings.append(Warning(
                "never_wins",
                f"v{version} released to {group.name} decides no device: each of its {group.device_count:,} "
                f"devices is in a group with a higher release, locked or a development device.",
                group.device_count, (group.name,), link([group.name]),
            ))
        elif default is not None and version < default:
            count = decided[group.id]
            warnings.append(Warning(
                "older_than_default",
                f"{group.name} keeps {count:,} device{'s' if count != 1 else ''} on v{version} while the product "
                f"default is v{default}.",
                count, (group.name,), link([group.name]),
            ))

    several = sorted(
        (row for row in combinations if len(row[0]) > 1), key=lambda row: (-row[2], row[0])
    )[:COMBINATIONS_SHOWN]
    for group_ids, best, total, _following in several:
        groups = sorted((released[group_id] for group_id in group_ids), key=lambda group: group.name)
        named = " and ".join(f"{group.name} (v{group.released_firmware.version})" for group in groups)
        warnings.append(Warning(
            "several_groups",
            f"{total:,} device{'s are' if total != 1 else ' is'} in {named}; they get v{best}.",
            total, tuple(group.name for group in groups), link([group.name for group in groups], match_all=True),
        ))
    visible = membership.restricted_group_names() if membership is not None else None
    if visible is not None:
        warnings = [warning for warning in warnings if set(warning.groups) <= visible]
    return warnings
