from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.shortcuts import render

from console.admin import PRODUCT_WIDE, WRITE, ProductScopedAdmin, visible
from devices import services as device_services
from devices.models import Device
from groups import services as group_services
from groups.models import Group, GroupMembership


class MembershipInline(admin.TabularInline):
    model = GroupMembership
    extra = 1
    autocomplete_fields = ["group"]
    fields = ["group", "added_by", "added_at"]
    readonly_fields = ["added_by", "added_at"]
    verbose_name = "group membership"

    # A device's groups are changed by whoever may change the device (a restricted member: only
    # within their groups, the only ones they see here).
    @property
    def parent_admin(self):
        return self.admin_site._registry[self.parent_model]

    def has_view_permission(self, request, obj=None):
        return self.parent_admin.has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self.parent_admin.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self.parent_admin.has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.parent_admin.has_change_permission(request, obj)

    def get_queryset(self, request):
        groups = visible_groups(request, Group.objects.all())
        return super().get_queryset(request).filter(group__in=groups).select_related("group", "added_by")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # Only the device's own product's groups (that the user sees): a foreign id is invalid,
        # and its name is never rendered back.
        choices = Group.objects.filter(product_id=obj.product_id) if obj else Group.objects.none()
        formset.form.base_fields["group"].queryset = visible_groups(request, choices)
        return formset


def visible_groups(request, queryset):
    return visible(request, queryset, scope=lambda groups, membership: groups.visible_to(membership))


class GroupListFilter(admin.SimpleListFilter):
    title = "group"
    parameter_name = "group"

    def lookups(self, request, model_admin):
        groups = visible_groups(request, Group.objects.select_related("product").order_by("product__name", "name"))
        return [(str(group.pk), f"{group.product.slug} / {group.name}") for group in groups]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() not in {value for value, _label in self.lookup_choices}:
            raise IncorrectLookupParameters(f"group={self.value()!r} is none of your groups' numbers.")
        return queryset.in_groups([int(self.value())])


class LockedListFilter(admin.SimpleListFilter):
    title = "locked"
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return [("yes", "Locked"), ("no", "Not locked")]

    def queryset(self, request, queryset):
        if self.value() in {"yes", "no"}:
            return queryset.filter(desired_firmware_version__isnull=self.value() == "no")
        return queryset


class GroupChoiceForm(forms.Form):
    group = forms.ModelChoiceField(queryset=Group.objects.none(), label="Group")

    def __init__(self, *args, groups, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = groups


@admin.register(Device)
class DeviceAdmin(ProductScopedAdmin):
    # Devices are imported by the console and the API (IDs checked, keys issued); the admin
    # edits their name and notes and their groups, and removes them.
    needs = {"add": None, "change": WRITE, "delete": PRODUCT_WIDE}
    list_display = ["device_id", "name", "serial_number", "product", "group_tags", "firmware_version",
                    "desired_firmware_version", "development", "online", "last_handshake_at"]
    list_filter = [("product", admin.RelatedOnlyFieldListFilter), GroupListFilter, "online", "development", LockedListFilter]
    search_fields = ["=device_id", "device_id__startswith", "name", "serial_number"]
    list_select_related = ["product"]
    # The key's hash is never shown: only whether there is a key and when it was last issued.
    readonly_fields = ["product", "device_id", "serial_number", "platform_id", "firmware_version",
                       "desired_firmware_version", "development", "online", "last_handshake_at", "device_key",
                       "key_rotated_at", "created_at", "updated_at"]
    fields = ["product", "device_id", "name", "serial_number", "notes", "platform_id", *readonly_fields[4:]]
    inlines = [MembershipInline]
    actions = ["add_to_group", "remove_from_group"]
    show_full_result_count = False

    def scope(self, queryset, membership):
        return queryset.visible_to(membership)

    def save_model(self, request, obj, form, change):
        # A device stays in its product (the database refuses a move: its groups and counts are
        # the product's); it is removed and imported instead.
        device_services.device_edit(
            device=Device.objects.get(pk=obj.pk), name=form.cleaned_data["name"], notes=form.cleaned_data["notes"],
            actor=request.user,
        )

    def delete_model(self, request, obj):
        device_services.device_remove(device=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for device in queryset.select_related("product"):
            device_services.device_remove(device=device, actor=request.user)

    def get_queryset(self, request):
        # Group tags for the whole page in one extra query, however many rows.
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="device key")
    def device_key(self, device):
        return "Set" if device.has_key else "Not set"

    @admin.display(description="groups")
    def group_tags(self, device):
        return ", ".join(sorted(group.name for group in device.groups.all()))

    def save_formset(self, request, form, formset, change):
        """Membership rows go through the same service as the console, audited."""
        if formset.model is not GroupMembership:
            return super().save_formset(request, form, formset, change)
        device = form.instance
        kept = formset.save(commit=False)
        add = [membership.group for membership in kept if membership.pk is None]
        remove = [membership.group for membership in formset.deleted_objects]
        # An edited row that switched group is a remove of the old one and an add of the new one.
        for membership in formset.changed_objects:
            old_group_id = GroupMembership.objects.get(pk=membership[0].pk).group_id
            remove.append(Group.objects.get(pk=old_group_id))
            add.append(membership[0].group)
        group_services.devices_edit_groups(
            product=device.product, devices=Device.objects.filter(pk=device.pk), add=add, remove=remove,
            actor=request.user,
        )

    def _group_action(self, request, queryset, *, adding: bool):
        queryset = self.writable(request, queryset)
        products = set(queryset.order_by().values_list("product_id", flat=True).distinct()[:2])
        verb = "add to" if adding else "remove from"
        if len(products) != 1:
            self.message_user(request, f"Select devices of one product to {verb} a group.", messages.ERROR)
            return None
        product_id = products.pop()
        groups = visible_groups(request, Group.objects.filter(product_id=product_id).order_by("name"))
        submitted = "preview" in request.POST or "apply" in request.POST
        form = GroupChoiceForm(request.POST if submitted else None, groups=groups)
        add_or_remove = "add" if adding else "remove"
        if form.is_valid():
            group = form.cleaned_data["group"]
            edit = {"add": [group] if adding else [], "remove": [] if adding else [group]}
            if "apply" in request.POST:
                changed = group_services.devices_edit_groups(
                    product=group.product, devices=queryset, actor=request.user, **edit
                )
                done = "added to" if adding else "removed from"
                self.message_user(request, f"{changed} device(s) {done} {group.name}.", messages.SUCCESS)
                return None
            impact = group_services.devices_edit_groups_impact(devices=queryset, **edit)
        else:
            group, impact = None, None
        return render(
            request,
            "admin/devices/device/group_action.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{add_or_remove.capitalize()} {queryset.count()} device(s) {'to' if adding else 'from'} a group",
                "form": form,
                "group": group,
                "impact": impact,
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
                "action": request.POST.get("action"),
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Add selected devices to a group", permissions=["change"])
    def add_to_group(self, request, queryset):
        return self._group_action(request, queryset, adding=True)

    @admin.action(description="Remove selected devices from a group", permissions=["change"])
    def remove_from_group(self, request, queryset):
        return self._group_action(request, queryset, adding=False)
