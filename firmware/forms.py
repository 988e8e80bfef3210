"""Console forms of the firmware app. They parse input; the rules live in firmware.services."""

from django import forms

from groups.forms import GroupSelect
from groups.models import Group


class UploadForm(forms.Form):
    version = forms.IntegerField(min_value=1, max_value=65535, help_text="A whole number from 1 to 65535, unique in this product.")
    title = forms.CharField(max_length=64)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    binary = forms.FileField(label="Binary file", help_text="The .bin the devices will install.", allow_empty_file=True)

    def __init__(self, *args, max_bytes: int, **kwargs):
        super().__init__(*args, **kwargs)
        limit = f"{max_bytes / 1024 / 1024:g} MiB" if max_bytes >= 1024 * 1024 else f"{max_bytes} bytes"
        self.fields["binary"].help_text = f"The .bin the devices will install, at most {limit}."


class ReleaseForm(forms.Form):
    """Which groups the version is released to afterwards, and whether it is the product default.

    A member restricted to groups sees only those groups and changes nothing product-wide (the
    product default, the intelligent flag).
    """

    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.none(),
        to_field_name="name",
        required=False,
        widget=GroupSelect(attrs={"data-tom-select": "", "placeholder": "Choose groups…"}),
        help_text="The complete list of groups that get this version. Leaving a group out unreleases it there.",
    )
    product_default = forms.BooleanField(
        required=False, label="Product default",
        help_text="Devices with no locked version and no group release get this version.",
    )
    intelligent = forms.BooleanField(
        required=False, label="Intelligent",
        help_text="Deliver to online devices immediately instead of at their next handshake.",
    )

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = Group.objects.visible_to(membership).order_by("name")
        if membership.restricted_group_ids() is not None:
            del self.fields["product_default"], self.fields["intelligent"]


class LockForm(forms.Form):
    version = forms.TypedChoiceField(coerce=int, label="Firmware version", choices=())

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [("", "Choose a version…")] + [
            (firmware.version, f"v{firmware.version} · {firmware.title}") for firmware in versions
        ]
