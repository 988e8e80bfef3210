from django import forms
from django.core.exceptions import ValidationError

from console.models import Role
from groups.models import Group

INVITE_ROLES = [(role.value, role.label) for role in Role if role != Role.OWNER]


def add_service_errors(form, error: ValidationError) -> None:
    """Show a service's ValidationError next to the fields it names (or above the form)."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


class InviteForm(forms.Form):
    identifier = forms.CharField(label="Username or email", max_length=254)
    role = forms.ChoiceField(choices=INVITE_ROLES, initial=Role.DEVELOPER)


class MemberForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    groups = forms.ModelMultipleChoiceField(queryset=Group.objects.none(), required=False)

    def __init__(self, *args, product, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = Group.objects.filter(product=product)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for, e.g. “CI release script”.")
    days = forms.IntegerField(min_value=1, max_value=365, initial=90, label="Expires after (days)")


class WebhookForm(forms.Form):
    # A plain text field: console.webhooks.validate_url says what is wrong (and the API shares it).
    url = forms.CharField(label="URL", max_length=500)
    description = forms.CharField(max_length=255, required=False)
