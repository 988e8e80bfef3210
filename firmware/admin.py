from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from console.admin import PRODUCT_WIDE, ProductScopedAdmin
from devices.models import Device
from firmware import services
from firmware.models import Firmware, FirmwareUpdate, Rollout, RolloutStage


@admin.register(Firmware)
class FirmwareAdmin(ProductScopedAdmin):
    # Uploads and deletions go through the console and the API, which store and check binaries.
    needs = {"add": None, "change": PRODUCT_WIDE, "delete": None}
    list_display = ["version", "title", "product", "size", "uploaded_by", "uploaded_at", "ever_released", "device_count"]
    list_filter = [("product", admin.RelatedOnlyFieldListFilter), "ever_released"]
    search_fields = ["title", "description"]
    list_select_related = ["product", "uploaded_by"]
    readonly_fields = ["product", "version", "binary", "size", "sha256", "intelligent", "ever_released",
                       "uploaded_by", "uploaded_at"]

    def get_queryset(self, request):
        running = (
            Device.objects.filter(product=OuterRef("product"), firmware_version=OuterRef("version"))
            .order_by()
            .values("firmware_version")
            .annotate(n=Count("id"))
            .values("n")
        )
        return super().get_queryset(request).annotate(device_count=Coalesce(Subquery(running), 0))

    @admin.display(description="devices running it", ordering="device_count")
    def device_count(self, firmware):
        return firmware.device_count

    def save_model(self, request, obj, form, change):
        services.firmware_edit(
            firmware=Firmware.objects.get(pk=obj.pk), title=form.cleaned_data["title"],
            description=form.cleaned_data["description"], actor=request.user,
        )


@admin.register(FirmwareUpdate)
class FirmwareUpdateAdmin(ProductScopedAdmin):
    needs = {"add": None, "change": None, "delete": None}
    list_display = ["device", "product", "from_version", "to_version", "status", "created_at", "finished_at"]
    list_filter = ["status", ("product", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["device__device_id"]
    list_select_related = ["device", "product"]
    readonly_fields = ["product", "device", "from_version", "to_version", "status", "reason", "created_at", "finished_at"]

    def scope(self, queryset, membership):
        return queryset.filter(device__in=Device.objects.visible_to(membership))


class RolloutStageInline(admin.TabularInline):
    model = RolloutStage
    fields = ["index", "share", "soak", "max_failure_percent", "min_updated", "targeted", "offered", "updated",
              "failed", "timed_out", "opened_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Rollout)
class RolloutAdmin(ProductScopedAdmin):
    # Rollouts start with a release and are acted on (pause, resume, ...) in the console and the
    # API, which show each action's impact first; support staff look here.
    needs = {"add": None, "change": None, "delete": None}
    list_display = ["firmware", "product", "status", "current_stage", "halted_reason", "created_at", "ended_at"]
    list_filter = ["status", ("product", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["firmware", "product"]
    readonly_fields = ["product", "firmware", "status", "sets_default", "current_stage", "open_share", "halted_reason",
                       "starts_at", "started_at", "ended_at", "timeout", "created_by", "created_at"]
    exclude = ["release_groups", "seed", "previous", "tick_generation", "stage_opened_at"]
    inlines = [RolloutStageInline]
