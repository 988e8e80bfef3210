"""Group and membership changes. Console views, the API and the admin all call these."""

import dataclasses

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from console import statistics
from console.models import AuditEvent
from devices.models import Device
from firmware import targeting
from groups.models import COLOR_HINT, COLOR_RE, GROUP_NAME_HINT, GROUP_NAME_RE, PALETTE, Group


def _clean_name(name) -> str:
    name = name if isinstance(name, str) else ""
    if not GROUP_NAME_RE.match(name):
        shown = name if len(name) <= 70 else name[:67] + "..."
        raise ValidationError({"name": [f"“{shown}” is not a valid group name. {GROUP_NAME_HINT}"]})
    return name


def _clean_description(description) -> str:
    description = description or ""
    if len(description) > 255:
        raise ValidationError({"description": [f"Use at most 255 characters (this has {len(description)})."]})
    return description


def _clean_color(color) -> str:
    color = (color or "").strip().lower()
    if not COLOR_RE.match(color):
        raise ValidationError({"color": [COLOR_HINT]})
    return color


def _next_color(product) -> str:
    return PALETTE[Group.objects.filter(product=product).count() % len(PALETTE)]


def _refuse_duplicate(product, name, *, exclude_id=None) -> None:
    existing = Group.objects.filter(product=product, name=name)
    if exclude_id:
        existing = existing.exclude(id=exclude_id)
    if existing.exists():
        raise ValidationError({"name": [f"A group named “{name}” already exists in this product."]})


@transaction.atomic
def group_create(*, product, name: str, description: str = "", color: str = "", actor) -> Group:
    name = _clean_name(name)
    description = _clean_description(description)
    color = _clean_color(color) if color else _next_color(product)
    _refuse_duplicate(product, name)
    try:
        with transaction.atomic():
            group = Group.objects.create(product=product, name=name, description=description, color=color)
    except IntegrityError:
        # Lost a race with a concurrent create of the same name.
        raise ValidationError({"name": [f"A group named “{name}” already exists in this product."]}) from None
    AuditEvent.record(product=product, actor=actor, action="group.create", obj=group, color=color)
    return group


@transaction.atomic
def group_edit(*, group: Group, name: str | None = None, description: str | None = None,
               color: str | None = None, actor) -> Group:
    changes = {}
    if name is not None and name != group.name:
        changes["name"] = _clean_name(name)
        _refuse_duplicate(group.product, changes["name"], exclude_id=group.id)
    if description is not None and description != group.description:
        changes["description"] = _clean_description(description)
    if color is not None and color.lower() != group.color:
        changes["color"] = _clean_color(color)
    if not changes:
        return group
    before = {field: getattr(group, field) for field in changes}
    for field, value in changes.items():
        setattr(group, field, value)
    try:
        with transaction.atomic():
            group.save(update_fields=list(changes))
    except IntegrityError:
        raise ValidationError({"name": [f"A group named “{group.name}” already exists in this product."]}) from None
    AuditEvent.record(product=group.product, actor=actor, action="group.edit", obj=group, before=before, after=changes)
    return group


def group_delete_impact(group: Group) -> dict:
    """What deleting the group would do: devices leaving it, devices changing firmware target."""
    devices = Device.objects.filter(memberships__group=group)
    scenario = targeting.Scenario(remove_groups=frozenset({group.id}))
    return {"devices": devices.count(), "impact": targeting.impact(devices, scenario, product_id=group.product_id)}


@transaction.atomic
def group_delete(*, group: Group, actor) -> int:
    """Delete a group; its devices leave it and its release goes with it. Returns devices that left."""
    locked = Group.objects.select_for_update().filter(pk=group.pk).first()
    if locked is None:
        raise ValidationError({"name": [f"The group “{group.name}” no longer exists."]})
    event = AuditEvent.record(
        product=group.product, actor=actor, action="group.delete", obj=group,
        released_version=group.released_firmware.version if group.released_firmware_id else None,
    )
    with connection.cursor() as cursor:
        write_memberships(cursor, "DELETE FROM groups_groupmembership WHERE group_id = %s", [group.pk], event)
    group.delete()
    statistics.refresh_after(group.product, memberships=locked.device_count)
    return event.count_devices()


def groups_resolve(*, membership, names, actor, create_missing: bool, preview: bool = False,
                   field: str = "groups") -> list[Group]:
    """The product's groups with these names, in the order given, without repeats.

    Unknown names are created when `create_missing`, else refused; a `preview` of a change that
    would create them leaves them out instead (a new group has no release, so it changes no
    target). A member restricted to groups never creates groups, and names outside their groups
    are unknown to them. Errors are keyed by `field` (the caller's name for the list).
    """
    names = list(dict.fromkeys(names))
    if not names:
        return []
    try:
        for name in names:
            _clean_name(name)
    except ValidationError as error:
        raise ValidationError({field: error.messages}) from None
    found = {group.name: group for group in Group.objects.visible_to(membership).filter(name__in=names)}
    missing = [name for name in names if name not in found]
    if missing and (not create_missing or membership.restricted_group_ids() is not None):
        raise ValidationError({field: [f"Unknown group: {', '.join(missing)}."]})
    if preview:
        return [found[name] for name in names if name in found]
    with transaction.atomic():
        for name in missing:
            found[name] = group_create(product=membership.product, name=name, actor=actor)
    return [found[name] for name in names]


def write_memberships(cursor, write_sql: str, params, event: AuditEvent, *, joined: bool | None = None) -> None:
    """Run an INSERT or DELETE of memberships and name, in the audit event, the devices whose
    rows it wrote; on PostgreSQL in the same statement, so 100,000 keys never travel to Python
    and back. With `joined` (True for an INSERT, False for a DELETE) the event also keeps which
    device joined or left which group (MembershipChange), which is what an undo reverts."""
    name = "INSERT INTO console_auditeventdevice (event_id, device_id)"
    change = "INSERT INTO groups_membershipchange (event_id, device_id, group_id, joined)"
    if connection.vendor == "postgresql":
        if joined is None:
            cursor.execute(
                f"WITH changed AS ({write_sql} RETURNING device_id)"
                f" {name} SELECT DISTINCT %s, device_id FROM changed ON CONFLICT DO NOTHING",
                [*params, event.pk],
            )
            return
        cursor.execute(
            f"WITH changed AS ({write_sql} RETURNING device_id, group_id),"
            f" named AS ({name} SELECT DISTINCT %s, device_id FROM changed ON CONFLICT DO NOTHING)"
            f" {change} SELECT %s, device_id, group_id, %s FROM changed",
            [*params, event.pk, event.pk, joined],
        )
        return
    cursor.execute(f"{write_sql} RETURNING device_id, group_id", params)
    rows = cursor.fetchall()
    keys = {row[0] for row in rows}
    if keys:
        cursor.executemany(f"{name} VALUES (%s, %s) ON CONFLICT DO NOTHING", [(event.pk, key) for key in keys])
    if rows and joined is not None:
        cursor.executemany(f"{change} VALUES (%s, %s, %s, %s)", [(event.pk, d, g, joined) for d, g in rows])


def devices_edit_groups_impact(*, devices, add=(), remove=()) -> targeting.Impact:
    """What `devices_edit_groups` with the same arguments would do to firmware targets."""
    groups = [*add, *remove]
    if not groups:
        return targeting.Impact()
    add_ids = frozenset(group.id for group in add)
    scenario = targeting.Scenario(add_groups=add_ids, remove_groups=frozenset(g.id for g in remove) - add_ids)
    return targeting.impact(devices, scenario, product_id=groups[0].product_id)


def _impact_sum(parts) -> targeting.Impact:
    """Impacts of disjoint sets of devices, added up field by field (counts and counts by version)."""
    total = targeting.Impact()
    for part in parts:
        for field in dataclasses.fields(total):
            mine, theirs = getattr(total, field.name), getattr(part, field.name)
            if isinstance(mine, dict):
                for key, count in theirs.items():
                    mine[key] = mine.get(key, 0) + count
            else:
                setattr(total, field.name, mine + theirs)
    return total


def memberships_change_impact(*, product_id: int, changes_sql: str, params) -> targeting.Impact:
    """The firmware impact of per-device membership changes (a CSV import, an undo), by the
    batch edit's own rule: `changes_sql` yields rows (device_id, group_id, joined).

    Only groups with a release can change a target, so the devices are grouped by their changes
    to released groups; each such combination is one batch-edit scenario for targeting.impact.
    A few statements per combination, whatever the number of devices.
    """
    released = list(
        Group.objects.filter(product_id=product_id, released_firmware__isnull=False).values_list("id", flat=True)
    )
    if not released:
        return targeting.Impact()
    item = "CASE WHEN c.joined THEN '+' ELSE '-' END || CAST(c.group_id AS varchar(20))"
    if connection.vendor == "postgresql":
        aggregate = f"string_agg({item}, ',' ORDER BY c.group_id)"
        source = f"({changes_sql})"
    else:  # SQLite's group_concat takes the rows in the order given
        aggregate = f"group_concat({item}, ',')"
        source = f"(SELECT * FROM ({changes_sql}) ORDER BY 2)"
    signatures = (
        f"SELECT c.device_id, {aggregate} AS signature FROM {source} AS c"
        f" WHERE c.group_id IN ({', '.join(['%s'] * len(released))}) GROUP BY c.device_id"
    )
    signature_params = [*params, *released]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT s.signature FROM ({signatures}) AS s", signature_params)
        found = [row[0] for row in cursor.fetchall()]
    parts = []
    for signature in found:
        items = signature.split(",")
        scenario = targeting.Scenario(
            add_groups=frozenset(int(item[1:]) for item in items if item[0] == "+"),
            remove_groups=frozenset(int(item[1:]) for item in items if item[0] == "-"),
        )
        devices = Device.objects.filter(
            pk__in=RawSQL(f"SELECT s.device_id FROM ({signatures}) AS s WHERE s.signature = %s",
                          [*signature_params, signature])
        )
        parts.append(targeting.impact(devices, scenario, product_id=product_id))
    return _impact_sum(parts)


def lock_groups(group_ids) -> set[int]:
    """Lock these groups for the transaction, in name order like every batch writer, so that a
    concurrent delete waits (or makes us fail clearly); returns the ids that still exist."""
    return set(Group.objects.select_for_update().filter(id__in=list(group_ids)).values_list("id", flat=True))


@transaction.atomic
def devices_edit_groups(*, product, devices, add=(), remove=(), actor) -> int:
    """"Edit groups": add every device of the queryset to the `add` groups and take it out of the `remove` ones.

    Set-based: one INSERT ... SELECT and one DELETE whatever the number of devices; the
    queryset is evaluated inside the database, so a filter over a million devices never comes
    through Python. Returns how many devices' groups changed.
    """
    add_ids = sorted({group.id for group in add if group.product_id == product.id})
    remove_ids = sorted({group.id for group in remove if group.product_id == product.id} - set(add_ids))
    if not add_ids and not remove_ids:
        return 0
    # Keep the groups from being deleted underneath us; a concurrent delete makes us fail clearly.
    present = lock_groups(add_ids + remove_ids)
    gone = set(add_ids + remove_ids) - present
    if gone:
        raise ValidationError({"groups": ["A group was deleted while you edited; reload and try again."]})

    device_sql, device_params = devices.filter(product=product).order_by().values("id").query.sql_with_params()
    # The event comes first so each write can name its devices in it; it goes again if nothing
    # changed.
    event = AuditEvent.record(
        product=product,
        actor=actor,
        action="device.groups",
        added=[group.name for group in add if group.id in add_ids],
        removed=[group.name for group in remove if group.id in remove_ids],
    )
    with connection.cursor() as cursor:
        if add_ids:
            write_memberships(
                cursor,
                f"""
                INSERT INTO groups_groupmembership (group_id, device_id, added_by_id, added_at)
                SELECT g.id, d.id, %s, %s
                FROM ({device_sql}) AS d CROSS JOIN groups_group AS g
                WHERE g.id IN ({", ".join(["%s"] * len(add_ids))})
                ON CONFLICT (group_id, device_id) DO NOTHING
                """,
                [getattr(actor, "pk", None), timezone.now(), *device_params, *add_ids],
                event,
                joined=True,
            )
        if remove_ids:
            write_memberships(
                cursor,
                f"""
                DELETE FROM groups_groupmembership
                WHERE group_id IN ({", ".join(["%s"] * len(remove_ids))})
                  AND device_id IN ({device_sql})
                """,
                [*remove_ids, *device_params],
                event,
                joined=False,
            )
    changed = event.count_devices()
    if not changed:
        event.delete()
    statistics.refresh_after(product, memberships=changed)
    return changed


def device_groups_edit_target(*, membership, device: Device, add=(), remove=()) -> dict:
    """The device's firmware target (version, rule, group) after `device_groups_edit` with the
    same names, without changing anything. Names not yet created change nothing."""
    visible = {group.name: group.id for group in Group.objects.visible_to(membership).filter(name__in=[*add, *remove])}
    add_ids = frozenset(visible[name] for name in add if name in visible)
    remove_ids = frozenset(visible[name] for name in remove if name in visible) - add_ids
    scenario = targeting.Scenario(add_groups=add_ids, remove_groups=remove_ids)
    version, rule, group = (
        Device.objects.filter(pk=device.pk).with_target(scenario, prefix="after")
        .values_list("after_version", "after_rule", "after_group").get()
    )
    return {"version": version, "rule": rule, "group": group}


@transaction.atomic
def device_groups_edit(*, membership, device: Device, add=(), remove=(), actor) -> bool:
    """Add the device to the groups named `add` (unknown names are created when the member may)
    and take it out of those named `remove`. Groups named in neither stay as they are, so two
    people editing one device at once both keep their changes. A member restricted to groups
    names only theirs; a removed group that no longer exists is already left. Returns whether
    anything changed."""
    added = groups_resolve(membership=membership, names=add, actor=actor, create_missing=True)
    removed = list(Group.objects.visible_to(membership).filter(name__in=set(remove) - set(add)))
    changed = devices_edit_groups(
        product=device.product, devices=Device.objects.filter(pk=device.pk), add=added, remove=removed, actor=actor
    )
    return bool(changed)


@transaction.atomic
def device_groups_replace(*, membership, device: Device, names, actor) -> list[Group]:
    """Make the device's groups exactly `names`, as `device_groups_edit` adds and removes them
    (the API's replace). A member restricted to groups replaces only the groups they can see;
    the device keeps the others. Returns the named groups."""
    chosen = groups_resolve(membership=membership, names=names, actor=actor, create_missing=True)
    current = set(Group.objects.visible_to(membership).filter(memberships__device=device).values_list("name", flat=True))
    wanted = {group.name for group in chosen}
    device_groups_edit(
        membership=membership, device=device, add=sorted(wanted - current), remove=sorted(current - wanted), actor=actor
    )
    return chosen
