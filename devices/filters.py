"""The one device filter, shared by the console's devices view, its bulk actions and the API."""

import re

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.db import connection
from django.db.models import F, Q
from django.db.models.expressions import RawSQL

from devices.models import FEW_MEMBERS, Device, count_in_groups, device_id_match, normalize_device_id
from groups.models import Group

SORTS = {
    "last_handshake": (F("last_handshake_at").desc(nulls_last=True), F("id").desc()),
    "-last_handshake": (F("last_handshake_at").asc(nulls_first=True), F("id").asc()),
    "name": (F("name").asc(), F("id").asc()),
    "-name": (F("name").desc(), F("id").desc()),
    "device_id": (F("device_id").asc(),),
    "-device_id": (F("device_id").desc(),),
    "firmware": (F("firmware_version").asc(nulls_first=True), F("id").asc()),
    "-firmware": (F("firmware_version").desc(nulls_last=True), F("id").desc()),
}
SORT_LABELS = {
    "last_handshake": "Last handshake (newest first)",
    "-last_handshake": "Last handshake (oldest first)",
    "name": "Name (A–Z)",
    "-name": "Name (Z–A)",
    "device_id": "Device ID (ascending)",
    "-device_id": "Device ID (descending)",
    "firmware": "Firmware (lowest first)",
    "-firmware": "Firmware (highest first)",
}
# Parameters that only shape the page, never which devices match.
NON_FILTER_PARAMS = {"sort", "page", "per_page"}


class GroupNamesField(forms.MultipleChoiceField):
    """Group names, given repeated (`groups=a&groups=b`) or comma-separated (`groups=a,b`)."""

    def to_python(self, value):
        names = []
        for item in super().to_python(value):
            names.extend(part.strip() for part in item.split(",") if part.strip())
        return list(dict.fromkeys(names))

    def valid_value(self, value):
        return value in self._names

    def validate(self, value):
        unknown = [name for name in value if not self.valid_value(name)]
        if unknown:
            raise forms.ValidationError(f"Unknown group: {', '.join(unknown)}.", code="unknown_group")


class GroupNamesFilter(django_filters.MultipleChoiceFilter):
    field_class = GroupNamesField


# Pasted device IDs and serial numbers (the "Paste a list" filter). The list travels in the URL
# like every filter, so it is kept to what a request line carries.
MAX_PASTED = 1000
PASTE_SEPARATORS = re.compile(r"[\s,;]+")


def pasted_entries(value) -> list[str]:
    return list(dict.fromkeys(entry for entry in PASTE_SEPARATORS.split(value or "") if entry))


class PastedField(forms.CharField):
    def validate(self, value):
        super().validate(value)
        if len(pasted_entries(value)) > MAX_PASTED:
            raise forms.ValidationError(f"Paste at most {MAX_PASTED:,} device IDs or serial numbers.")


class PastedFilter(django_filters.CharFilter):
    field_class = PastedField


BOOLEAN_CHOICES = [("", "Any"), ("true", "Yes"), ("false", "No")]


class DeviceFilter(django_filters.FilterSet):
    """Filters the devices a member may see.

    `DeviceFilter(params, membership=m)`; `.qs` is the filtered, sorted queryset (no targets).
    Unknown group names make the filter invalid with an error on `groups`.
    """

    q = django_filters.CharFilter(method="filter_search", label="Search")
    groups = GroupNamesFilter(method="filter_groups", label="Groups")
    groups_match = django_filters.ChoiceFilter(
        method="filter_noop",
        choices=[("any", "Any of"), ("all", "All of")],
        empty_label=None,
        label="Match",
    )
    device_id = django_filters.CharFilter(method="filter_device_id", label="Device ID")
    name = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")
    serial_number = django_filters.CharFilter(field_name="serial_number", lookup_expr="icontains", label="Serial number")
    firmware_version = django_filters.NumberFilter(field_name="firmware_version", label="Firmware")
    online = django_filters.BooleanFilter(widget=forms.Select(choices=BOOLEAN_CHOICES), label="Online")
    development = django_filters.BooleanFilter(widget=forms.Select(choices=BOOLEAN_CHOICES), label="Development")
    # Yes, No, or locked to one version (`locked=2`: the devices holding a version back).
    locked = django_filters.CharFilter(
        method="filter_locked", widget=forms.Select(choices=BOOLEAN_CHOICES), label="Locked",
        validators=[RegexValidator(r"^(true|false|[1-9][0-9]{0,4})$", "Choose Any, Yes, No or a version number.")],
    )
    paste = PastedFilter(method="filter_pasted", widget=forms.Textarea, label="Device IDs or serial numbers")
    # The devices an audit event named (the Activity page links here); events of other products
    # name none of this product's devices.
    event = django_filters.NumberFilter(method="filter_event", label="Changed by", widget=forms.HiddenInput)
    # The devices whose update failed in one rollout of this product (the rollout page links here).
    rollout_failed = django_filters.NumberFilter(method="filter_rollout_failed", label="Failed in rollout", widget=forms.HiddenInput)
    sort = django_filters.ChoiceFilter(
        method="filter_noop", choices=list(SORT_LABELS.items()), empty_label=None, label="Sort"
    )

    class Meta:
        model = Device
        fields = []

    def __init__(self, data=None, *, membership, **kwargs):
        self.membership = membership
        # Light rows, not model instances: a product may have a thousand groups.
        self.visible_groups = {
            group.name: group
            for group in Group.objects.visible_to(membership)
            .order_by("name")
            .values_list("id", "name", "color", "device_count", named=True)
        }
        super().__init__(data, queryset=Device.objects.visible_to(membership), **kwargs)
        groups_field = self.form.fields["groups"]
        groups_field._names = self.visible_groups.keys()  # what valid_value accepts; no choices list
        locked = (data or {}).get("locked", "")
        if locked.isdigit():
            self.form.fields["locked"].widget.choices = [*BOOLEAN_CHOICES, (locked, f"To v{locked}")]

    def filter_noop(self, queryset, name, value):
        return queryset

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        match = Q(name__icontains=value) | Q(serial_number__icontains=value)
        by_id = device_id_match(value)
        if by_id is not None:
            match |= by_id
        return queryset.filter(match)

    def filter_device_id(self, queryset, name, value):
        return queryset.id_contains(value)

    def filter_groups(self, queryset, name, value):
        if not value:
            return queryset
        groups = [self.visible_groups[group] for group in value]
        match_all = self.form.cleaned_data.get("groups_match") == "all"
        sizes = {group.id: group.device_count for group in groups}
        return queryset.in_groups(list(sizes), match_all=match_all, sizes=sizes)

    def _pasted_match(self, entries) -> Q:
        ids = [device_id for device_id in map(normalize_device_id, entries) if device_id]
        return Q(device_id__in=ids) | Q(serial_number__in=entries)

    def filter_event(self, queryset, name, value):
        from console.models import AuditEventDevice

        return queryset.filter(pk__in=AuditEventDevice.objects.filter(event_id=value).values("device_id"))

    def filter_rollout_failed(self, queryset, name, value):
        from firmware.models import FirmwareUpdate

        failed = FirmwareUpdate.objects.filter(
            rollout_id=value, rollout__product=self.membership.product, status=FirmwareUpdate.Status.FAILED
        )
        return queryset.filter(pk__in=failed.values("device_id"))

    def failed_rollout(self):
        """The rollout of the `rollout_failed` filter, for its chip (None if it names none of the product's)."""
        from firmware.models import Rollout

        value = self.form.cleaned_data.get("rollout_failed") if self.is_bound and self.form.is_valid() else None
        if value is None:
            return None
        return Rollout.objects.filter(product=self.membership.product, pk=value).select_related("firmware").first()

    def filter_pasted(self, queryset, name, value):
        entries = pasted_entries(value)
        return queryset.filter(self._pasted_match(entries)) if entries else queryset

    def unknown_pasted(self) -> list[str]:
        """Pasted entries that name none of the member's devices (one query)."""
        entries = pasted_entries(self.form.cleaned_data.get("paste")) if self.is_bound and self.form.is_valid() else []
        if not entries:
            return []
        found = set()
        for device_id, serial in self.queryset.filter(self._pasted_match(entries)).values_list("device_id", "serial_number"):
            found.update((device_id, serial))
        return [entry for entry in entries if entry not in found and normalize_device_id(entry) not in found]

    def filter_locked(self, queryset, name, value):
        if not value:
            return queryset
        if value.isdigit():
            return queryset.filter(desired_firmware_version=int(value))
        return queryset.filter(desired_firmware_version__isnull=value == "false")

    def selected_groups(self) -> list:
        """The chosen groups, as rows with id, name, color and device_count."""
        names = self.form.cleaned_data.get("groups") or [] if self.is_bound and self.form.is_valid() else []
        return [self.visible_groups[name] for name in names]

    def _active(self) -> set[str] | None:
        """The filters in use (not sorting); None when the filter is not valid."""
        if not (self.is_bound and self.form.is_valid()):
            return None
        return {
            name for name, value in self.form.cleaned_data.items()
            if value not in (None, "", []) and name not in ("groups_match", "sort")
        }

    def known_count(self) -> int | None:
        """The number of matches when the database keeps it or can tell it cheaply from what it
        keeps: a filter by groups alone matches exactly their members (all visible to whoever
        may see the groups), one group's are its device_count, several groups' are counted from
        their memberships when a probe of the smaller groups' members does it; no filter at all
        matches the product's devices (for members who may see them all)."""
        return self._count(cheap_only=True)

    def count(self) -> int:
        """The exact number of matches, counted from the groups' memberships for a filter by
        groups alone, in a shape chosen from the groups' exact sizes."""
        known = self._count(cheap_only=False)
        return self.qs.count() if known is None else known

    def _count(self, *, cheap_only: bool) -> int | None:
        active = self._active()
        if active is None:
            return None
        if active == {"groups"}:
            match_all = self.form.cleaned_data.get("groups_match") == "all"
            sizes = {group.id: group.device_count for group in self.selected_groups()}
            return count_in_groups(sizes, match_all=match_all, cheap_only=cheap_only)
        if not active and self.membership.restricted_group_ids() is None:
            return self.membership.product.device_count
        return None

    def page_qs(self, count: int):
        """`qs` for showing a page, given how many devices match (exactly, or capped above
        FEW_MEMBERS). When few match, the page starts from the matches, found through their own
        indexes, and sorts them: walking the product in list order to meet a few matches reads
        most of it, and the planner, whose estimate of a search or an intersection may be far
        off (or its statistics stale), cannot know that the application already does."""
        queryset = self.qs
        if connection.vendor != "postgresql" or not count or count > FEW_MEMBERS or not self._active():
            return queryset
        ids_sql, params = queryset.order_by().values("pk").query.sql_with_params()
        # OFFSET 0 keeps the planner from flattening the subquery back into the walk.
        matches = RawSQL(f"{ids_sql} OFFSET 0", params)
        return Device.objects.filter(pk__in=matches).order_by(*queryset.query.order_by)

    @property
    def qs(self):
        queryset = super().qs
        sort = (self.form.cleaned_data.get("sort") if self.is_bound and self.form.is_valid() else None) or "last_handshake"
        return queryset.order_by(*SORTS[sort])
