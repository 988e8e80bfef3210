from django.conf import settings
from django.db import models


def firmware_upload_to(firmware: "Firmware", filename: str) -> str:
    return f"firmware/{firmware.product_id}/v{firmware.version}-{firmware.sha256[:12]}.bin"


class FirmwareQuerySet(models.QuerySet):
    def for_product(self, product):
        return self.filter(product=product)


class Firmware(models.Model):
    product = models.ForeignKey("console.Product", on_delete=models.CASCADE, related_name="firmware")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    binary = models.FileField(upload_to=firmware_upload_to, max_length=200)
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    intelligent = models.BooleanField(default=False)
    # Once released (to a group or as default) a version can no longer be deleted.
    ever_released = models.BooleanField(default=False)
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
