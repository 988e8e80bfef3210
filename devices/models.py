import re

from django.db import connection, models
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.http import Http404

from firmware import targeting

DEVICE_ID_RE = re.compile(r"^[0-9a-f]{24}$")
HEX_RE = re.compile(r"^[0-9a-f]+$")
# Up to this many memberships, a group filter reads them first (see DeviceQuerySet.in_groups).
# Walking a fleet of F devices in list order meets the 25 first of N members after ~25·F/N
# devices, so reading the N members first wins while N² < 25·F: ~5,000 at a million devices.
FEW_MEMBERS = 5_000
# What one index probe costs beside reading one membership in index order (measured at 1M
# devices: ~1.5 µs against ~0.3 µs); counts choose between the two shapes with it.
PROBE_COST = 5


def normalize_device_id(value: str) -> str | None:
    """Lower-case a 24-hex device id; None when it is not one."""
    value = (value or "").strip().lower()
    return value if DEVICE_ID_RE.match(value) else None


def device_id_match(fragment: str) -> Q | None:
    """The condition "the device ID contains this fragment", or None when no ID can (IDs are
    lower-case hex). It compares the column itself, lower-casing the fragment instead, so the
    trigram index on device_id serves a prefix and a substring alike; a whole ID is an equality."""
    fragment = (fragment or "").strip().lower()
    if not HEX_RE.match(fragment):
        return None
    return Q(device_id=fragment) if len(fragment) == 24 else Q(device_id__contains=fragment)


class DeviceQuerySet(models.QuerySet):
    def visible_to(self, membership):
        """The devices of the member's product that the member may see."""
        qs = self.filter(product_id=membership.product_id)
        restricted = membership.restricted_group_ids()
        if restricted is not None:
            qs = qs.in_groups(restricted)
        return qs

    def reachable_by(self, memberships):
        """The devices of all these memberships' products that each member may see (the devices a
        user reaches across their products): one query, whatever the number of products."""
        from groups.models import GroupMembership

        reach = Q(pk__in=[])
        for membership in memberships:
            restricted = membership.restricted_group_ids()
            if restricted is None:
                reach |= Q(product_id=membership.product_id)
            else:
                member = GroupMembership.objects.filter(device=OuterRef("pk"), group_id__in=restricted)
                reach |= Q(Exists(member), product_id=membership.product_id)
        return self.filter(reach)

    def get_by_device_id(self, raw_id: str) -> "Device":
        """The device with this ID (any case), or Http404: a malformed ID names no device."""
        device_id = normalize_device_id(raw_id)
        device = self.filter(device_id=device_id).first() if device_id else None
        if device is None:
            raise Http404("No such device")
        return device

    def get_for_member(self, membership, raw_id: str) -> "Device":
        """A device as a member's pages show it: one they may see (else Http404), with its
        product, its target annotated and the deciding group named as they may read it."""
        from console.access import shown_group_name

        device = self.visible_to(membership).with_target().select_related("product").get_by_device_id(raw_id)
        device.target_group = shown_group_name(membership, device.target_group)
        return device

    def in_groups(self, group_ids, *, match_all: bool = False, sizes: dict | None = None):
        """Devices in any (or, with match_all, every) of the given groups, by group id.

        `sizes` (group id -> device_count) lets PostgreSQL start from the memberships when
        they are few. Its planner otherwise tends to walk the whole fleet in list order, probing
        each device's memberships: ideal for a big group, whose 25 first members come early,
        but seconds for a group of a few hundred devices in a million.
        """
        from groups.models import GroupMembership

        group_ids = list(group_ids)
        if not group_ids:
            return self.none()

        def member_of(group_ids):
            return Exists(GroupMembership.objects.filter(device=OuterRef("pk"), group_id__in=group_ids))

        if match_all:
            qs = self
            for group_id in group_ids:
                qs = qs.filter(member_of([group_id]))
            start_from = [min(group_ids, key=lambda group_id: sizes[group_id])] if sizes else []
        else:
            qs = self.filter(member_of(group_ids))
            start_from = group_ids
        if sizes and connection.vendor == "postgresql" and sum(sizes[g] for g in start_from) <= FEW_MEMBERS:
            # OFFSET 0 keeps the planner from flattening the subquery back into the walk.
            qs = qs.filter(
                pk__in=RawSQL(
                    "SELECT device_id FROM groups_groupmembership WHERE group_id = ANY(%s) OFFSET 0", [start_from]
                )
            )
        return qs

    def id_contains(self, fragment: str):
        """Devices whose ID contains the fragment (any case), at its start or anywhere."""
        match = device_id_match(fragment)
        return self.none() if match is None else self.filter(match)

    def with_target(self, scenario: "targeting.Scenario" = targeting.CURRENT, *, prefix: str = "target"):
        """Annotate `<prefix>_version`, `<prefix>_rule` and `<prefix>_group` (the firmware
        precedence of DESIGN.md), under the current state or a hypothetical `scenario`."""
        return self.annotate(**targeting.annotations(scenario, prefix=prefix))


def count_in_groups(sizes: dict[int, int], *, match_all: bool = False, cheap_only: bool = False) -> int | None:
    """How many devices are in any (or, with match_all, all) of the groups, from their
    memberships alone; `sizes` is each group's exact device_count.

    The sizes choose the shape, not the planner's estimate (which may be stale): "any of" counts
    the largest group from its count and probes only the other groups' members, when they are
    few; "all of" probes the smallest group's members into the others, when that is cheaper than
    reading every group's memberships in index order. Otherwise one pass over the groups' index
    ranges (index-only where the visibility map allows); with `cheap_only`, None instead.
    """
    if connection.vendor != "postgresql":
        return None if cheap_only else Device.objects.in_groups(list(sizes), match_all=match_all).count()
    table = "groups_groupmembership"
    probe = f"SELECT 1 FROM {table} o WHERE o.device_id = m.device_id AND o.group_id = %s OFFSET 0"
    if not match_all:
        largest, *rest = sorted(sizes, key=sizes.get, reverse=True)
        rest_size = sum(sizes[group] for group in rest)
        if not rest:
            return sizes[largest]
        if rest_size * PROBE_COST <= sizes[largest]:
            sql = (f"SELECT %s + count(DISTINCT m.device_id) FROM {table} m"
                   f" WHERE m.group_id = ANY(%s) AND NOT EXISTS ({probe})")
            params = [sizes[largest], rest, largest]
        elif cheap_only:
            return None
        else:
            sql, params = f"SELECT count(DISTINCT device_id) FROM {table} WHERE group_id = ANY(%s)", [list(sizes)]
    else:
        smallest, *rest = sorted(sizes, key=sizes.get)
        if not rest:
            return sizes[smallest]
        if sizes[smallest] * len(rest) * PROBE_COST <= sum(sizes[group] for group in rest):
            exists = " AND ".join(f"EXISTS ({probe})" for _ in rest)
            sql, params = f"SELECT count(*) FROM {table} m WHERE m.group_id = %s AND {exists}", [smallest, *rest]
        elif cheap_only:
            return None
        else:
            joins = "".join(
                f" JOIN {table} m{i} ON m{i}.device_id = m.device_id AND m{i}.group_id = %s" for i in range(len(rest))
            )
            sql, params = f"SELECT count(*) FROM {table} m{joins} WHERE m.group_id = %s", [*rest, smallest]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


class Device(models.Model):
    product = models.ForeignKey("console.Product", on_delete=models.CASCADE, related_name="devices")
    device_id = models.CharField("device ID", max_length=24, unique=True)
    name = models.CharField(max_length=64, blank=True)
    serial_number = models.CharField(max_length=64, blank=True)
    # Cellular devices' modem and SIM identifiers; an import may name a device by either.
    imei = models.CharField("IMEI", max_length=32, blank=True)
    iccid = models.CharField("ICCID", max_length=32, blank=True)
    notes = models.TextField(max_length=1000, blank=True)
    platform_id = models.PositiveIntegerField(default=12)
    online = models.BooleanField(default=False)
    last_handshake_at = models.DateTimeField(null=True, blank=True)
    firmware_version = models.PositiveIntegerField(null=True, blank=True)
    # The locked version (rule 2); null when the device follows its groups and the default.
    desired_firmware_version = models.PositiveIntegerField(null=True, blank=True)
    development = models.BooleanField(default=False)
    # A version flashed to a development device (Particle's cloud flash): offered at its next
    # handshake, cleared once the device reports running it or leaves development.
    flash_version = models.PositiveIntegerField(null=True, blank=True)
    # The device key's keyed hash (devices.keys); empty while the device has no key. The key
    # itself is shown once when issued and never stored.
    # The rollout that last offered the device its version: while that rollout is live the device
    # keeps the rollout's target, paused or halted. After an abort or a rollback, the version the
    # device is kept on until the product's next release (rule 2b of firmware.targeting).
    rollout = models.ForeignKey("firmware.Rollout", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False, editable=False)
    pinned_version = models.PositiveIntegerField(null=True, blank=True, editable=False)
    key_hash = models.CharField(max_length=64, blank=True, editable=False)
    key_rotated_at = models.DateTimeField("device key rotated", null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    groups = models.ManyToManyField("groups.Group", through="groups.GroupMembership", related_name="devices")

    objects = DeviceQuerySet.as_manager()

    class Meta:
        ordering = [F("last_handshake_at").desc(nulls_last=True), F("id").desc()]
        constraints = [
            models.CheckConstraint(condition=models.Q(device_id__regex=r"^[0-9a-f]{24}$"), name="device_id_24_hex"),
        ]
        # The index for the default order, (product, last_handshake_at DESC NULLS LAST, id DESC),
        # is created by migration 0003 on PostgreSQL only: SQLite cannot put NULLS LAST in an index.
        indexes = [
            models.Index(fields=["product", "name"], name="device_product_name"),
            models.Index(fields=["product", "firmware_version"], name="device_product_firmware"),
            models.Index(fields=["product", "serial_number"], name="device_product_serial"),
            models.Index(
                fields=["product", "desired_firmware_version"],
                condition=models.Q(desired_firmware_version__isnull=False),
                name="device_locked",
            ),
            models.Index(fields=["product"], condition=models.Q(development=True), name="device_development"),
            models.Index(fields=["product"], condition=models.Q(pinned_version__isnull=False), name="device_pinned"),
        ]

    def __str__(self) -> str:
        return self.name or self.device_id

    @property
    def has_key(self) -> bool:
        return bool(self.key_hash)


class QuarantinedDeviceQuerySet(models.QuerySet):
    def waiting(self):
        """Devices waiting for a decision (not denied)."""
        return self.filter(denied_at__isnull=True)


class QuarantinedDevice(models.Model):
    """A device that contacted the product without being imported (Particle's quarantine).

    It is not one of the product's devices until it is approved, which makes it a device of the
    product (and removes this row). Denying it keeps the row, marked denied, so that its further
    contacts are refused rather than quarantined again; importing it later still approves it.
    """

    product = models.ForeignKey("console.Product", on_delete=models.CASCADE, related_name="quarantined_devices")
    device_id = models.CharField("device ID", max_length=24)
    serial_number = models.CharField(max_length=64, blank=True)
    imei = models.CharField("IMEI", max_length=32, blank=True)
    iccid = models.CharField("ICCID", max_length=32, blank=True)
    platform_id = models.PositiveIntegerField(default=12)
    first_contact_at = models.DateTimeField(auto_now_add=True)
    last_contact_at = models.DateTimeField(auto_now_add=True)
    denied_at = models.DateTimeField(null=True, blank=True)

    objects = QuarantinedDeviceQuerySet.as_manager()

    class Meta:
        ordering = ["-last_contact_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "device_id"], name="quarantine_one_per_product_device"),
            models.CheckConstraint(condition=models.Q(device_id__regex=r"^[0-9a-f]{24}$"), name="quarantine_device_id_24_hex"),
        ]
        indexes = [models.Index(fields=["product", "serial_number"], name="quarantine_product_serial")]

    def __str__(self) -> str:
        return self.device_id
