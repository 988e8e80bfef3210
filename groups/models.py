import re
from collections import defaultdict

from django.conf import settings
from django.db import models

from console.models import CountedByDatabase

# The one definition of a valid group name and color: the services, the forms, the API schemas,
# the database constraints and the console's group picker (through a data attribute) use these.
GROUP_NAME_PATTERN = r"^[a-z0-9_-]{1,64}$"
GROUP_NAME_RE = re.compile(GROUP_NAME_PATTERN)
GROUP_NAME_HINT = "Lowercase letters, digits, - and _ only, at most 64 characters (e.g. europe-beta)."
# Colors may be typed in either case and are stored in lower case.
COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"
STORED_COLOR_PATTERN = r"^#[0-9a-f]{6}$"
COLOR_RE = re.compile(STORED_COLOR_PATTERN)
COLOR_HINT = "Use a color in the form #rrggbb, for example #22c55e."
# Picked in turn for new groups that come without a color.
PALETTE = ["#0ea5e9", "#22c55e", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#64748b", "#84cc16", "#f97316"]


class GroupQuerySet(models.QuerySet):
    def visible_to(self, membership):
        qs = self.filter(product_id=membership.product_id)
        restricted = membership.restricted_group_ids()
        if restricted is not None:
            qs = qs.filter(id__in=restricted)
        return qs

    def by_device(self, devices) -> dict[int, list["Group"]]:
        """These groups of each of a page of devices, by device pk, sorted by name, in one query
        whatever the page size (the group tags of the devices list and the API)."""
        tags = defaultdict(list)
        rows = (
            GroupMembership.objects.filter(device_id__in=[device.pk for device in devices], group__in=self)
            .select_related("group")
            .only("device_id", "group__id", "group__name", "group__color")
            .order_by("group__name")
        )
        for row in rows:
            tags[row.device_id].append(row.group)
        return tags


class Group(CountedByDatabase):
    product = models.ForeignKey("console.Product", on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=64, help_text=GROUP_NAME_HINT)
    description = models.CharField(max_length=255, blank=True)
    color = models.CharField(max_length=7, default=PALETTE[0])
    # The one firmware released to this group (rule 3); set through firmware services only.
    released_firmware = models.ForeignKey(
        "firmware.Firmware", null=True, blank=True, on_delete=models.PROTECT, related_name="released_groups"
    )
    # The version a live staged rollout is releasing to the group: it replaces `released_firmware`
    # for the devices whose stage is open, and becomes it when the rollout completes.
    rolling_firmware = models.ForeignKey(
        "firmware.Firmware", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # How many devices are in the group. Kept exact by the database itself (triggers on
    # memberships, migration 0003), so cascades and raw SQL count too; never written by Django.
    device_count = models.PositiveIntegerField(default=0, editable=False)

    database_counters = ("device_count",)
    objects = GroupQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "name"],
                name="group_name_unique_in_product",
                violation_error_message="A group with this name already exists in this product.",
            ),
            models.CheckConstraint(
                condition=models.Q(name__regex=GROUP_NAME_PATTERN),
                name="group_name_format",
                violation_error_message=GROUP_NAME_HINT,
            ),
            models.CheckConstraint(
                condition=models.Q(color__regex=STORED_COLOR_PATTERN),
                name="group_color_format",
                violation_error_message="Use a color in the form #rrggbb, for example #22c55e.",
            ),
        ]
        indexes = [
            models.Index(fields=["product"], condition=models.Q(released_firmware__isnull=False), name="group_released"),
        ]

    def __str__(self) -> str:
        return self.name



class GroupMembership(models.Model):
    """A device tagged into a group: who added it and when."""

    # Batch edits write a membership per device, so every index and check here is paid 100,000
    # times: the two composite indexes below serve both directions (no single-column ones), and
    # `added_by` is informational (Django nulls it when the user goes), not a database constraint.
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="memberships", db_index=False)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        db_constraint=False, db_index=False,
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Also the index for "devices of a group".
            models.UniqueConstraint(fields=["group", "device"], name="membership_one_per_group_device"),
        ]
        indexes = [models.Index(fields=["device", "group"], name="membership_device_group")]

    def __str__(self) -> str:
        return f"{self.device_id} in {self.group}"


class MembershipChange(models.Model):
    """A device that joined (or left) a group in an audited batch edit, so the edit can be undone.

    Written in the same statement as the membership itself (groups.services.write_memberships),
    one narrow row per change; read back only by event. Like AuditEventDevice, no database-level
    foreign keys: 100,000 rows must not be checked one by one at commit, and a deleted device's
    or group's changes stay as history (an undo skips them).
    """

    pk = models.CompositePrimaryKey("event", "group", "device")
    event = models.ForeignKey(
        "console.AuditEvent", on_delete=models.CASCADE, related_name="membership_changes", db_constraint=False,
        db_index=False,
    )
    group = models.ForeignKey(Group, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False)
    device = models.ForeignKey(
        "devices.Device", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    joined = models.BooleanField()

    def __str__(self) -> str:
        return f"{self.device_id} {'joined' if self.joined else 'left'} {self.group_id}"
