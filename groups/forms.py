"""Forms of the group pages. They only parse input; `groups.services` validates the domain rules
(name format, uniqueness, color) so the console, the API and the admin give the same errors."""

from django import forms

from groups import csv_import
from groups.models import GROUP_NAME_HINT, PALETTE, Group


class ServiceErrors:
    def add_service_errors(self, error) -> None:
        """Show a service's ValidationError next to the fields it names."""
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)


class GroupSelect(forms.SelectMultiple):
    """A multi-select of groups whose options carry the group's color, so the picker's chips
    take it (console.js reads data-color)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        group = getattr(value, "instance", None)
        if group is not None:
            option["attrs"]["data-color"] = group.color
        return option


SWATCH_NAMES = ["Sky", "Green", "Amber", "Red", "Violet", "Teal", "Pink", "Slate", "Lime", "Orange"]


class GroupForm(ServiceErrors, forms.Form):
    swatches = list(zip(PALETTE, SWATCH_NAMES))
    name = forms.CharField(help_text=GROUP_NAME_HINT, strip=True)
    description = forms.CharField(
        required=False, strip=True, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional, at most 255 characters: what the devices in this group have in common.",
    )
    color = forms.CharField(required=False, widget=forms.TextInput(attrs={"type": "color"}))

    def __init__(self, *args, product, group: Group | None = None, **kwargs):
        if group is not None:
            kwargs.setdefault("initial", {"name": group.name, "description": group.description, "color": group.color})
        else:
            # The color the service would pick, shown so the person can see or change it.
            count = Group.objects.filter(product=product).count()
            kwargs.setdefault("initial", {"color": PALETTE[count % len(PALETTE)]})
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs.update(
            {"autocomplete": "off", "spellcheck": "false", "autofocus": True}
        )


class MembershipImportForm(ServiceErrors, forms.Form):
    """A CSV of devices and their groups, how to apply it, and whether bad rows may be skipped."""

    file = forms.FileField(label="CSV file", help_text="First column: device ID or serial number; then group names "
                           "(several in a cell separated by ;). A header row is optional.")
    mode = forms.ChoiceField(choices=list(csv_import.MODES.items()), initial="add", widget=forms.RadioSelect,
                             label="How")
    skip_invalid = forms.BooleanField(required=False, label="Skip rows that cannot be applied")
