"""Forms of the group pages. They only parse input; `groups.services` validates the domain rules
(name format, uniqueness, color) so the console, the API and the admin give the same errors."""

from django import forms

from groups.models import GROUP_NAME_HINT, PALETTE, Group


class GroupForm(forms.Form):
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

    def add_service_errors(self, error) -> None:
        """Show a service's ValidationError next to the fields it names."""
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)
