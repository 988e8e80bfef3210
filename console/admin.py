from django.contrib import admin
from django.http import Http404

from console.models import AccessToken, AuditEvent, Membership, Product


class ProductScopedAdmin(admin.ModelAdmin):
    """Staff who are not superusers see and change only the objects of their own products.

    `product_path` is the lookup from the model to its Product. Anything outside the user's
    products is a 404, never a hint that it exists.
    """

    product_path = "product"

    def member_products(self, request):
        return Product.objects.filter(memberships__user=request.user)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.product_path}__in": self.member_products(request)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Product and not request.user.is_superuser:
            kwargs["queryset"] = self.member_products(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object")
        return obj


@admin.register(Product)
class ProductAdmin(ProductScopedAdmin):
    product_path = "pk"
    list_display = ["name", "slug", "default_firmware", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["default_firmware", "created_at"]
    list_select_related = ["default_firmware"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Membership)
class MembershipAdmin(ProductScopedAdmin):
    list_display = ["user", "product", "role", "is_restricted", "created_at"]
    list_filter = ["role", ("product", admin.RelatedOnlyFieldListFilter), "is_restricted"]
    search_fields = ["user__username", "user__email", "product__slug"]
    list_select_related = ["user", "product"]
    autocomplete_fields = ["user", "restricted_groups"]


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "name"]
    readonly_fields = ["user", "name", "key_hash", "refresh_hash", "created_at", "expires_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)


@admin.register(AuditEvent)
class AuditEventAdmin(ProductScopedAdmin):
    list_display = ["created_at", "product", "actor", "action", "object_repr", "device_count"]
    list_filter = ["action", ("product", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["object_repr", "actor__username"]
    list_select_related = ["product", "actor"]
    date_hierarchy = "created_at"

    fields = ["created_at", "product", "actor", "token", "action", "object_type", "object_repr", "details",
              "device_count", "devices_named"]
    readonly_fields = ["devices_named"]

    @admin.display(description="device IDs")
    def devices_named(self, event):
        shown = list(
            event.device_links.order_by("device__device_id").values_list("device__device_id", flat=True)[:100]
        )
        more = event.device_count - len(shown)  # beyond the first 100, or removed since
        return ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
