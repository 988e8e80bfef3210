from django.contrib import admin

from console.admin import ProductScopedAdmin
from groups import services
from groups.models import Group


@admin.register(Group)
class GroupAdmin(ProductScopedAdmin):
    list_display = ["name", "product", "description", "color", "device_count", "released_firmware"]
    list_filter = [("product", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "description"]
    list_select_related = ["product", "released_firmware"]
    readonly_fields = ["released_firmware", "device_count", "created_at"]
    fields = ["product", "name", "description", "color", "released_firmware", "device_count", "created_at"]

    def scope(self, queryset, membership):
        return queryset.visible_to(membership)

    def get_readonly_fields(self, request, obj=None):
        # A group stays in its product; renames and the rest go through the group services.
        return [*self.readonly_fields, "product"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.group_edit(
                group=Group.objects.get(pk=obj.pk), name=data["name"], description=data["description"],
                color=data["color"], actor=request.user,
            )
        else:
            created = services.group_create(
                product=data["product"], name=data["name"], description=data["description"],
                color=data["color"], actor=request.user,
            )
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.group_delete(group=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for group in queryset:
            services.group_delete(group=group, actor=request.user)
