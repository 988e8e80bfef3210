"""Forms of the device pages: which devices a bulk action is about, and which groups it changes."""

from django import forms
from django.core.exceptions import ValidationError

from devices.filters import DeviceFilter, NON_FILTER_PARAMS
from devices.models import Device, normalize_device_id
from groups.forms import GroupSelect
from groups.models import GROUP_NAME_HINT, GROUP_NAME_RE, Group

# Row checkboxes only ever carry one page of ids; "all matching" sends the filter instead.
MAX_SELECTED_IDS = 1000


class DeviceIdsField(forms.MultipleChoiceField):
    """Device IDs from row checkboxes; checked against the member's devices by the query, not here."""

    def valid_value(self, value):
        return normalize_device_id(value) is not None

    def to_python(self, value):
        return [item.strip().lower() for item in super().to_python(value) if item.strip()]


class DeviceSelectionForm(forms.Form):
    """The devices a bulk action applies to: ticked rows (`ids`), or with `all` every device
    matching the filter parameters sent alongside, which the server applies again itself."""

    ids = DeviceIdsField(
        required=False, error_messages={"invalid_choice": "“%(value)s” is not a 24-character hex device ID."}
    )
    all = forms.BooleanField(required=False)

    def __init__(self, data, *, membership, **kwargs):
        super().__init__(data, **kwargs)
        self.membership = membership
        self.filterset = None

    def clean_ids(self):
        ids = self.cleaned_data["ids"]
        if len(ids) > MAX_SELECTED_IDS:
            raise ValidationError(
                f"Select at most {MAX_SELECTED_IDS} devices one by one, or select all devices matching a filter."
            )
        return list(dict.fromkeys(ids))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("all"):
            self.filterset = DeviceFilter(self.data, membership=self.membership)
            if not self.filterset.is_valid():
                errors = [f"{field}: {' '.join(messages)}" for field, messages in self.filterset.errors.items()]
                raise ValidationError(f"The filter is not valid: {'; '.join(errors)}")
        elif not cleaned.get("ids") and "ids" not in self.errors:
            raise ValidationError("Select at least one device first.")
        return cleaned

    @property
    def matching_all(self) -> bool:
        return self.filterset is not None

    def devices(self):
        """The selected devices, as a queryset the database evaluates (never a list of ids)."""
        if self.filterset is not None:
            return self.filterset.qs
        return Device.objects.visible_to(self.membership).filter(device_id__in=self.cleaned_data["ids"])

    def hidden_params(self) -> list[tuple[str, str]]:
        """The selection as (name, value) pairs, to carry it through the next form."""
        if self.filterset is not None:
            filter_names = set(self.filterset.filters) - NON_FILTER_PARAMS
            pairs = [("all", "1")]
            for name in sorted(filter_names):
                pairs.extend((name, value) for value in self.data.getlist(name) if value != "")
            return pairs
        return [("ids", device_id) for device_id in self.cleaned_data.get("ids", [])]


class GroupChoiceField(forms.ModelMultipleChoiceField):
    widget = GroupSelect

    def label_from_instance(self, group):
        return group.name


class EditGroupsForm(forms.Form):
    """Groups to add to and remove from every selected device."""

    add = GroupChoiceField(queryset=Group.objects.none(), to_field_name="name", required=False, label="Add groups")
    remove = GroupChoiceField(queryset=Group.objects.none(), to_field_name="name", required=False, label="Remove groups")

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        groups = Group.objects.visible_to(membership).select_related("released_firmware").order_by("name")
        for name in ("add", "remove"):
            self.fields[name].queryset = groups
            self.fields[name].error_messages["invalid_choice"] = "Unknown group: %(value)s."
            self.fields[name].widget.attrs.update({"data-tom-select": "", "placeholder": "Choose groups…"})

    def clean(self):
        cleaned = super().clean()
        add, remove = cleaned.get("add") or [], cleaned.get("remove") or []
        if "add" in self.errors or "remove" in self.errors:
            return cleaned
        if not add and not remove:
            raise ValidationError("Choose at least one group to add or to remove.")
        both = sorted({group.name for group in add} & {group.name for group in remove})
        if both:
            self.add_error("remove", f"A group cannot be both added and removed: {', '.join(both)}.")
        return cleaned


class DeviceGroupsForm(forms.Form):
    """The device header's group editor: the groups chosen (`groups`) and those it showed when it
    opened (`shown`), by name. What changed between them is the edit, so an edit made meanwhile
    elsewhere (another tab, another person) survives. Unknown names may become new groups."""

    groups = forms.MultipleChoiceField(required=False, label="Groups")
    shown = forms.MultipleChoiceField(required=False, widget=forms.MultipleHiddenInput)
    confirmed = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["groups"].choices = [(name, name) for name in choices]
        for name in ("groups", "shown"):
            self.fields[name].valid_value = lambda value: True

    @staticmethod
    def _names(values) -> list[str]:
        return list(dict.fromkeys(name.strip().lower() for name in values if name.strip()))

    def clean_groups(self):
        names = self._names(self.cleaned_data["groups"])
        invalid = [name for name in names if not GROUP_NAME_RE.match(name)]
        if invalid:
            raise ValidationError(f"“{invalid[0][:64]}” is not a valid group name. {GROUP_NAME_HINT}")
        return names

    def clean_shown(self):
        return self._names(self.cleaned_data["shown"])

    @property
    def add(self) -> list[str]:
        return [name for name in self.cleaned_data["groups"] if name not in self.cleaned_data["shown"]]

    @property
    def remove(self) -> list[str]:
        return [name for name in self.cleaned_data["shown"] if name not in self.cleaned_data["groups"]]

    def signature(self) -> str:
        """Names the exact change a firmware warning was shown for, so "Done" again confirms it."""
        return ",".join([*(f"+{name}" for name in sorted(self.add)), *(f"-{name}" for name in sorted(self.remove))])
