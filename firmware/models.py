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

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device"], condition=models.Q(status="pending"), name="firmware_update_one_pending_per_device"
            ),
        ]
        indexes = [models.Index(fields=["product", "to_version", "status"], name="firmware_update_rollout")]

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
