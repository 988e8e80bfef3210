"""Console forms of the firmware app. They parse input; the rules live in firmware.services."""

from django import forms
from django.core.exceptions import ValidationError

from firmware.services import rollouts
from groups.forms import GroupSelect
from groups.models import Group

HOW_CHOICES = [(key, label) for key, (label, _stages) in rollouts.PRESETS.items()] + [("custom", "Custom stages")]


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

    # How to release: all at once, or staged (firmware.services.rollouts checks the numbers, so
    # they are text here and its errors land on the field that caused them).
    how = forms.ChoiceField(
        choices=HOW_CHOICES, required=False, initial="all_at_once", label="How to release", widget=forms.RadioSelect,
    )
    stages = forms.CharField(
        required=False, max_length=500, label="Stages",
        help_text="Groups first, then cumulative shares ending at 100%, separated by commas: “prerelease, 1%, 10%, 100%”.",
    )
    soak_minutes = forms.CharField(
        required=False, label="Soak time (minutes)", widget=forms.NumberInput(attrs={"min": 0, "step": 1}),
        help_text="How long each stage runs before the next may open.",
    )
    max_failure_percent = forms.CharField(
        required=False, label="Max failure rate (%)", widget=forms.NumberInput(attrs={"min": 0, "max": 100, "step": "any"}),
        help_text="The rollout halts by itself when more of a stage's offered devices fail.",
    )
    min_updated = forms.CharField(
        required=False, label="Min devices updated", widget=forms.NumberInput(attrs={"min": 0, "step": 1}),
        help_text="Updated devices a stage needs (or all of its devices, if fewer) before the next opens.",
    )
    timeout_minutes = forms.CharField(
        required=False, label="Timeout (minutes)", widget=forms.NumberInput(attrs={"min": 1, "step": 1}),
        help_text="An offered device that has not reported the version by then counts as failed.",
    )
    starts_at = forms.CharField(
        required=False, label="Scheduled start (UTC, optional)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Leave empty to start now.",
    )

    ROLLOUT_FIELDS = ("how", "stages", "soak_minutes", "max_failure_percent", "min_updated", "timeout_minutes", "starts_at")

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        for name, key in (("soak_minutes", "soak_minutes"), ("max_failure_percent", "max_failure_percent"),
                          ("min_updated", "min_updated"), ("timeout_minutes", "timeout_minutes")):
            self.fields[name].widget.attrs["placeholder"] = str(rollouts.DEFAULTS[key])
        self.fields["groups"].queryset = Group.objects.visible_to(membership).order_by("name")
        if membership.restricted_group_ids() is not None:
            del self.fields["product_default"], self.fields["intelligent"]

    @property
    def is_staged(self) -> bool:
        return (self.cleaned_data.get("how") or "all_at_once") != "all_at_once"

    def rollout_spec(self, membership):
        """The checked rollout this valid form asks for (None: all at once); ValidationError keyed
        by this form's field names."""
        how = self.cleaned_data.get("how") or "all_at_once"
        if how == "all_at_once":
            return None
        stages = self.cleaned_data["stages"].strip() if how == "custom" else rollouts.PRESETS[how][1]
        if not stages:
            raise ValidationError({"stages": ["List the stages, for example “prerelease, 1%, 10%, 100%”."]})
        return rollouts.rollout_spec(
            product=membership.product, stages=stages, membership=membership,
            **{name: self.cleaned_data.get(name) or None for name in self.ROLLOUT_FIELDS[2:]},
        )

    def rollout_data(self) -> list[tuple[str, str]]:
        """The rollout fields as posted, for the confirmation's hidden inputs."""
        return [(name, self.data.get(name, "")) for name in self.ROLLOUT_FIELDS if self.data.get(name)]


class LockForm(forms.Form):
    version = forms.TypedChoiceField(coerce=int, label="Firmware version", choices=())

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [("", "Choose a version…")] + [
            (firmware.version, f"v{firmware.version} · {firmware.title}") for firmware in versions
        ]
