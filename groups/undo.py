"""Undo of a batch group edit (console, API or CSV import): the memberships that edit changed and
that are still as it left them go back; the rest are named and left alone.

The edit's MembershipChange rows say which device joined or left which group; everything here is
a statement over them, whatever the number of devices.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from console.models import AuditEvent
from firmware import targeting
from groups import services

# The audited actions whose membership changes can be reverted (an undo can be undone too).
UNDOABLE = ("device.groups", "device.groups_import", "device.groups_undo")
KEPT_SHOWN = 20


@dataclass
class UndoPlan:
    """What undoing `event` would do now."""

    event: AuditEvent
    leave: list = field(default_factory=list)  # (group name, devices that would leave it)
    rejoin: list = field(default_factory=list)  # (group name, devices that would join it again)
    kept: list = field(default_factory=list)  # up to KEPT_SHOWN of {"device", "group", "joined", "why"}
    kept_count: int = 0
    impact: targeting.Impact = field(default_factory=targeting.Impact)
    undone_by: list = field(default_factory=list)  # ids of earlier undos of this event

    @property
    def changes(self) -> int:
        return sum(count for _, count in self.leave) + sum(count for _, count in self.rejoin)

    def as_json(self) -> dict:
        return {
            "event_id": self.event.pk,
            "leave": [{"group": name, "devices": count} for name, count in self.leave],
            "rejoin": [{"group": name, "devices": count} for name, count in self.rejoin],
            "kept": self.kept,
            "kept_count": self.kept_count,
            "firmware_update": self.impact.as_json(),
            "undone_by": self.undone_by,
        }


def undoable_event(membership, event_id) -> AuditEvent:
    """The member's product's undoable event, or 404. Members restricted to groups see (and so
    undo) only their own events, as on the Activity page."""
    events = AuditEvent.objects.filter(product_id=membership.product_id, action__in=UNDOABLE)
    if membership.restricted_group_ids() is not None:
        events = events.filter(actor_id=membership.user_id)
    event = events.filter(pk=event_id).first() if str(event_id).isdigit() else None
    if event is None:
        raise Http404("No such event")
    return event


def _scope(membership) -> tuple[str, list]:
    """SQL restricting changes `c` to the groups the member may change."""
    restricted = membership.restricted_group_ids()
    if restricted is None:
        return "", []
    if not restricted:
        return " AND 1 = 0", []
    return f" AND c.group_id IN ({', '.join(['%s'] * len(restricted))})", list(restricted)


def _revertible(membership, event) -> tuple[str, list]:
    """Rows (device_id, group_id, joined) of what the undo would do: each change the event made
    whose membership is still as the event left it, in the opposite direction."""
    scope, scope_params = _scope(membership)
    product_id = membership.product_id
    sql = (
        "SELECT c.device_id, c.group_id, NOT c.joined AS joined FROM groups_membershipchange c"
        " JOIN groups_group g ON g.id = c.group_id AND g.product_id = %s"
        " JOIN devices_device d ON d.id = c.device_id AND d.product_id = %s"
        " LEFT JOIN groups_groupmembership m ON m.group_id = c.group_id AND m.device_id = c.device_id"
        f" WHERE c.event_id = %s{scope} AND c.joined = (m.device_id IS NOT NULL)"
    )
    return sql, [product_id, product_id, event.pk, *scope_params]


def edit_undo_preview(*, membership, event: AuditEvent) -> UndoPlan:
    plan = UndoPlan(event=event)
    revertible, params = _revertible(membership, event)
    scope, scope_params = _scope(membership)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT g.name, r.joined, COUNT(*) FROM ({revertible}) AS r JOIN groups_group g ON g.id = r.group_id"
            " GROUP BY g.name, r.joined ORDER BY g.name",
            params,
        )
        for name, joined, count in cursor.fetchall():
            (plan.rejoin if joined else plan.leave).append((name, count))
        # The changes left alone, and why: the device or group went, the member may not change
        # the group, or someone changed the membership since.
        outside = f"NOT (1 = 1{scope})" if scope else "1 = 0"
        cursor.execute(
            "SELECT COALESCE(d.device_id, ''), COALESCE(g.name, ''), c.joined,"
            " CASE WHEN d.id IS NULL THEN 'device removed' WHEN g.id IS NULL THEN 'group deleted'"
            f" WHEN {outside} THEN 'not one of your groups'"
            " WHEN c.joined THEN 'no longer in the group' ELSE 'back in the group already' END,"
            " COUNT(*) OVER ()"
            " FROM groups_membershipchange c"
            " LEFT JOIN devices_device d ON d.id = c.device_id AND d.product_id = %s"
            " LEFT JOIN groups_group g ON g.id = c.group_id AND g.product_id = %s"
            " LEFT JOIN groups_groupmembership m ON m.group_id = c.group_id AND m.device_id = c.device_id"
            " WHERE c.event_id = %s AND NOT (d.id IS NOT NULL AND g.id IS NOT NULL"
            f" AND NOT ({outside}) AND c.joined = (m.device_id IS NOT NULL))"
            " ORDER BY 2, 1 LIMIT %s",
            [*scope_params, membership.product_id, membership.product_id, event.pk, *scope_params, KEPT_SHOWN],
        )
        for device_id, group, joined, why, count in cursor.fetchall():
            plan.kept.append({"device": device_id, "group": group, "joined": bool(joined), "why": why})
            plan.kept_count = count
    plan.impact = services.memberships_change_impact(
        product_id=membership.product_id, changes_sql=revertible, params=params
    )
    plan.undone_by = list(
        AuditEvent.objects.filter(product_id=membership.product_id, action="device.groups_undo",
                                  details__undoes=event.pk).values_list("pk", flat=True)
    )
    return plan


@transaction.atomic
def edit_undo(*, membership, event: AuditEvent, actor) -> int:
    """Revert what `event` changed and is still as it left it, as a new audited edit (itself
    undoable). Returns how many devices' groups changed."""
    scope, scope_params = _scope(membership)
    product_id = membership.product_id
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT c.group_id FROM groups_membershipchange c WHERE c.event_id = %s{scope}",
                       [event.pk, *scope_params])
        group_ids = [row[0] for row in cursor.fetchall()]
    services.lock_groups(group_ids)
    revertible, params = _revertible(membership, event)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT g.name, r.joined FROM ({revertible}) AS r JOIN groups_group g ON g.id = r.group_id"
            " GROUP BY g.name, r.joined ORDER BY g.name",
            params,
        )
        directions = cursor.fetchall()
    undo = AuditEvent.record(
        product=membership.product, actor=actor, action="device.groups_undo",
        undoes=event.pk,
        added=[name for name, joined in directions if joined],
        removed=[name for name, joined in directions if not joined],
    )
    with connection.cursor() as cursor:
        services.write_memberships(
            cursor,
            "DELETE FROM groups_groupmembership WHERE (group_id, device_id) IN"
            " (SELECT c.group_id, c.device_id FROM groups_membershipchange c"
            f" WHERE c.event_id = %s AND c.joined{scope})",
            [event.pk, *scope_params],
            undo,
            joined=False,
        )
        services.write_memberships(
            cursor,
            "INSERT INTO groups_groupmembership (group_id, device_id, added_by_id, added_at)"
            " SELECT c.group_id, c.device_id, %s, %s FROM groups_membershipchange c"
            " JOIN groups_group g ON g.id = c.group_id AND g.product_id = %s"
            " JOIN devices_device d ON d.id = c.device_id AND d.product_id = %s"
            f" WHERE c.event_id = %s AND NOT c.joined{scope}"
            " ON CONFLICT (group_id, device_id) DO NOTHING",
            [getattr(actor, "pk", None), timezone.now(), product_id, product_id, event.pk, *scope_params],
            undo,
            joined=True,
        )
    changed = undo.count_devices()
    if not changed:
        undo.delete()
        raise ValidationError({"event": ["Nothing to undo: every change of that edit has been changed since."]})
    return changed
