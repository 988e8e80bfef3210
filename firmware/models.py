from dataclasses import dataclass

from django.conf import settings
from django.db import connection, models
from django.db.models import Count

from firmware import targeting


def firmware_upload_to(firmware: "Firmware", filename: str) -> str:
    return f"firmware/{firmware.product_id}/v{firmware.version}-{firmware.sha256[:12]}.bin"


@dataclass
class RolloutProgress:
    """Devices whose current target is a version: already on it, last attempt failed, or waiting."""

    version: int
    targeted: int = 0
    updated: int = 0
    failed: int = 0

    @property
    def pending(self) -> int:
        return self.targeted - self.updated - self.failed

    def percent(self, part: int) -> float:
        return round(100 * part / self.targeted, 2) if self.targeted else 0.0

    @property
    def updated_percent(self) -> float:
        return self.percent(self.updated)

    @property
    def failed_percent(self) -> float:
        return self.percent(self.failed)

    @property
    def pending_percent(self) -> float:
        return self.percent(self.pending)


class FirmwareQuerySet(models.QuerySet):
    def for_product(self, product):
        return self.filter(product=product)

    def running_counts(self, devices) -> dict[int, int]:
        """How many of `devices` run each of these versions, in one grouped query."""
        rows = (
            devices.order_by()
            .filter(firmware_version__in=self.order_by().values("version"))
            .values("firmware_version")
            .annotate(n=Count("id"))
        )
        return {row["firmware_version"]: row["n"] for row in rows}

    def rollout_progress(self, *, devices, product) -> list[RolloutProgress]:
        """The rollout of each version of `product` over `devices` (of it), newest first.

        targeted: devices whose target is the version; updated: of those, running it; failed: of
        the rest, those whose latest attempt at it failed (no attempt pending); pending: the rest.
        One statement over the fleet, one for the versions.
        """
        sql, params = targeting.fleet_targets_sql(devices, product_id=product.pk)
        # Joins rather than EXISTS per row: pending is unique per device, failures are grouped.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT t.current_target,
                       COUNT(*),
                       SUM(CASE WHEN t.firmware_version = t.current_target THEN 1 ELSE 0 END),
                       SUM(CASE WHEN fu.device_id IS NOT NULL AND pu.device_id IS NULL
                                 AND (t.firmware_version IS NULL OR t.firmware_version <> t.current_target)
                                THEN 1 ELSE 0 END)
                FROM ({sql}) AS t
                LEFT JOIN (
                    SELECT device_id, to_version FROM firmware_firmwareupdate
                    WHERE product_id = %s AND status = %s GROUP BY device_id, to_version
                ) AS fu ON fu.device_id = t.id AND fu.to_version = t.current_target
                LEFT JOIN (
                    SELECT device_id FROM firmware_firmwareupdate WHERE product_id = %s AND status = %s
                ) AS pu ON pu.device_id = t.id
                WHERE t.current_target IS NOT NULL
                GROUP BY t.current_target
                """,
                [*params, product.pk, FirmwareUpdate.Status.FAILED, product.pk, FirmwareUpdate.Status.PENDING],
            )
            progress = {row[0]: RolloutProgress(row[0], row[1], row[2] or 0, row[3] or 0) for row in cursor.fetchall()}
        versions = self.filter(product=product).order_by("-version").values_list("version", flat=True)
        return [progress.get(version) or RolloutProgress(version) for version in versions]


class Firmware(models.Model):
    product = models.ForeignKey("console.Product", on_delete=models.CASCADE, related_name="firmware")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    binary = models.FileField(upload_to=firmware_upload_to, max_length=200)
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    intelligent = models.BooleanField(default=False)
    # Once released (to a group or as default) a version can no longer be deleted, and stays
    # releasable.
    ever_released = models.BooleanField(default=False)
    # Proof that the version ran: the first and the latest report of a device of the product
    # through the gateway, by device ID (kept when the device is removed). Any report makes the
    # version releasable for good. The latest is refreshed at most once a minute, so a fleet
    # reporting one version does not queue on this row.
    first_reported_at = models.DateTimeField(null=True, blank=True, editable=False)
    first_reported_by = models.CharField(max_length=24, blank=True, editable=False)
    last_reported_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_reported_by = models.CharField(max_length=24, blank=True, editable=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    objects = FirmwareQuerySet.as_manager()

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["product", "version"], name="firmware_version_unique_in_product"),
            models.CheckConstraint(condition=models.Q(version__gte=1, version__lte=65535), name="firmware_version_range"),
        ]

    def __str__(self) -> str:
        return f"v{self.version} {self.title}"


class FirmwareUpdate(models.Model):
    """One OTA a device was targeted for; feeds rollout progress."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    product = models.ForeignKey("console.Product", on_delete=models.CASCADE, related_name="firmware_updates")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="firmware_updates")
    from_version = models.PositiveIntegerField(null=True, blank=True)
    to_version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The rollout that offered this update, and the stage the device is in (its gate counts it).
    rollout = models.ForeignKey("Rollout", null=True, blank=True, on_delete=models.CASCADE, related_name="updates")
    stage = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device"], condition=models.Q(status="pending"), name="firmware_update_one_pending_per_device"
            ),
        ]
        indexes = [
            models.Index(fields=["product", "to_version", "status"], name="firmware_update_rollout"),
            models.Index(fields=["rollout", "status", "created_at"], name="firmware_update_by_rollout",
                         condition=models.Q(rollout__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.device_id}: {self.from_version} → {self.to_version} ({self.status})"


class DeviceAuthFailure(models.Model):
    """Failed gateway authentications of one device ID in the current window, shared by every web
    worker and node (firmware.gateway throttles on it). A row is written only on failure; rows
    whose window has ended are deleted as new failures arrive."""

    device_id = models.CharField(max_length=24, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["window_started_at"], name="device_auth_failure_window")]


# A device's place in a rollout: BUCKETS buckets, from a multiplicative hash of its primary key
# and the rollout's seed, the same in Python (below) and in SQL (firmware.targeting). A stage that
# opens a share of p% opens the buckets below p·BUCKETS/100, so shares are cumulative and a device
# never changes stage, whatever joins or leaves the fleet.
BUCKETS = 10_000
_HASH_MULTIPLIER = 2_654_435_761  # Knuth's multiplicative hash constant (2^32 / golden ratio)
_HASH_MODULUS = 4_294_967_296


def rollout_bucket(device_pk: int, seed: int) -> int:
    return ((device_pk + seed) * _HASH_MULTIPLIER % _HASH_MODULUS) * BUCKETS // _HASH_MODULUS


def rollout_bucket_sql(pk: str, seed: str) -> str:
    """The SQL of rollout_bucket() over two SQL integer expressions, for a statement executed with
    parameters (its modulo is written %%)."""
    return f"((({pk}) + ({seed})) * {_HASH_MULTIPLIER} %% {_HASH_MODULUS}) * {BUCKETS} / {_HASH_MODULUS}"


def rollout_bucket_expression(pk, seed):
    """rollout_bucket() as a Django expression over two integer expressions."""
    from django.db.models import Value

    return (pk + seed) * Value(_HASH_MULTIPLIER) % Value(_HASH_MODULUS) * Value(BUCKETS) / Value(_HASH_MODULUS)


# Seeds stay below 2^20 so that (pk + seed) * multiplier fits a 64-bit integer for any pk below 2^31.
SEED_LIMIT = 1 << 20


class Rollout(models.Model):
    """A staged release: the groups (and perhaps the product default) it releases a version to are
    released only to the devices whose stage is open, stage after stage, each gated on the failure
    rate and the number of devices updated. See firmware.rollouts."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        HALTED = "halted", "Halted"
        COMPLETED = "completed", "Completed"
        ABORTED = "aborted", "Aborted"
        ROLLED_BACK = "rolled_back", "Rolled back"

    # While a rollout is live it is the product's `live_rollout`, and the precedence rule reads it.
    LIVE = (Status.SCHEDULED, Status.RUNNING, Status.PAUSED, Status.HALTED)

    product = models.ForeignKey("console.Product", on_delete=models.CASCADE, related_name="rollouts")
    firmware = models.ForeignKey(Firmware, on_delete=models.PROTECT, related_name="rollouts")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    # Whether the version becomes the product default once the rollout completes (for open devices
    # before that).
    sets_default = models.BooleanField(default=False)
    release_groups = models.ManyToManyField("groups.Group", related_name="+", blank=True)
    seed = models.PositiveBigIntegerField()
    # The index of the latest stage opened (-1: none yet), and what the open stages open.
    current_stage = models.IntegerField(default=-1)
    open_share = models.PositiveIntegerField(default=0)  # buckets below this are open (of BUCKETS)
    stage_opened_at = models.DateTimeField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    # An offered device that has not reported the version this long after its offer has failed.
    timeout = models.DurationField()
    halted_reason = models.CharField(max_length=255, blank=True)
    # What the groups and the default had before the release, for a rollback once completed:
    # {"groups": {group id: version or None}, "default": version or None}.
    previous = models.JSONField(default=dict)
    # The soak and timeout checks run as a chain of tasks; a task whose generation is not the
    # rollout's is a stale link of a chain replaced since (by a pause, a resume, an advance).
    tick_generation = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["product"], condition=models.Q(status__in=["scheduled", "running", "paused", "halted"]),
                name="rollout_one_live_per_product",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.firmware.version} rollout ({self.get_status_display()})"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE

    def bucket(self, device_pk: int) -> int:
        return rollout_bucket(device_pk, self.seed)


class RolloutStage(models.Model):
    """One stage of a rollout: a cumulative share of the targeted devices, or named groups first;
    its soak time and health gate; and the counters its gate reads (kept as devices report, so a
    gate is decided without scanning the fleet)."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="stages")
    index = models.PositiveSmallIntegerField()
    share = models.PositiveIntegerField(null=True, blank=True)  # cumulative, of BUCKETS; None: groups
    groups = models.ManyToManyField("groups.Group", related_name="rollout_stages", blank=True)
    soak = models.DurationField()
    max_failure_percent = models.DecimalField(max_digits=5, decimal_places=2)
    min_updated = models.PositiveIntegerField(default=0)
    # Devices of the stage the release targeted when the rollout started (the preview's count).
    targeted = models.PositiveIntegerField(default=0)
    offered = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    timed_out = models.PositiveIntegerField(default=0)  # of `failed`: offered, never reported
    # A resume acknowledges the failures so far: the gate then counts only those after it.
    acknowledged_failed = models.PositiveIntegerField(default=0)
    acknowledged_offered = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "index"]
        constraints = [models.UniqueConstraint(fields=["rollout", "index"], name="rollout_stage_index_unique")]

    def __str__(self) -> str:
        return f"stage {self.index + 1}"

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def share_percent(self):
        return None if self.share is None else self.share * 100 / BUCKETS

    @property
    def pending(self) -> int:
        return max(self.targeted - self.updated - self.failed, 0)

    def failure_rate(self) -> float:
        """The gate's failure rate, in percent, over the devices offered since the last resume."""
        offered = self.offered - self.acknowledged_offered
        failed = self.failed - self.acknowledged_failed
        return 100 * failed / offered if offered > 0 else 0.0


class RolloutSample(models.Model):
    """The rollout's totals at one moment, taken by each check and each event, for the progress
    chart: a few hundred rows for a rollout of days, whatever the size of the fleet."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField()
    offered = models.PositiveIntegerField()
    updated = models.PositiveIntegerField()
    failed = models.PositiveIntegerField()

    class Meta:
        ordering = ["rollout", "at"]
        indexes = [models.Index(fields=["rollout", "at"], name="rollout_sample_at")]
