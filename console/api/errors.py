"""API.md's error shape, `{"ok": false, "error", "error_description", "fields"?}`, and the
translation of validation errors into it."""

from django.core.exceptions import ValidationError as DjangoValidationError
from ninja import Schema

from groups.models import COLOR_HINT, COLOR_PATTERN, GROUP_NAME_HINT, GROUP_NAME_PATTERN


class ApiError(Exception):
    """An error answered in API.md's shape: {"ok": false, "error", "error_description", "fields"?}."""

    def __init__(self, status: int, error: str, description: str, fields: dict | None = None, headers=None):
        self.status = status
        self.error = error
        self.description = description
        self.fields = fields
        self.headers = headers or {}
        super().__init__(description)

    def body(self) -> dict:
        body = {"ok": False, "error": self.error, "error_description": self.description}
        if self.fields:
            body["fields"] = self.fields
        return body


def invalid(field: str, message: str, description: str | None = None) -> ApiError:
    """A 400 about one field."""
    return ApiError(400, "invalid_request", description or message, {field: [message]})


class ErrorOut(Schema):
    ok: bool = False
    error: str
    error_description: str
    fields: dict[str, list[str]] | None = None


class OkOut(Schema):
    """The plain success answer, `{"ok": true}`."""

    ok: bool


def error_responses(*codes: int) -> dict:
    """The documented error responses of an operation; 400 and 401 apply to all of them."""
    return {code: ErrorOut for code in sorted({400, 401, *codes})}


# ---------------------------------------------------------------------------------------------
# Validation errors, from pydantic (a request that does not fit its schema) and from the services
# (Django's ValidationError keyed by field; nothing was changed).

PATTERN_HINTS = {GROUP_NAME_PATTERN: GROUP_NAME_HINT, COLOR_PATTERN: COLOR_HINT}


def _field_name(loc) -> str:
    """`("body", "payload", "metadata", "add", 0)` → `metadata.add`; `("query", "page")` → `page`."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[2:] if len(parts) > 2 else ["body"]
    elif parts and parts[0] in ("query", "path", "form", "file", "header"):
        parts = parts[1:]
    names = [str(part) for part in parts if not isinstance(part, int)]
    return ".".join(names) or "body"


def _message(error: dict) -> str:
    if error.get("type") == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern", "")
        return PATTERN_HINTS.get(pattern, f"Use the format {pattern}.")
    if error.get("type") == "extra_forbidden":
        return "Unknown field."
    if error.get("type") == "missing":
        return "This field is required."
    message = error.get("msg", "Invalid value.")
    return message.removeprefix("Value error, ")


def from_schema_errors(errors: list[dict]) -> ApiError:
    """A 400 for a request that does not fit its schema, naming each field."""
    fields: dict[str, list[str]] = {}
    for error in errors:
        fields.setdefault(_field_name(error.get("loc", ())), []).append(_message(error))
    first = next(iter(fields.items()))
    description = f"Invalid {first[0]}: {first[1][0]}"
    if len(fields) > 1:
        description += f" (and {len(fields) - 1} more field{'s' if len(fields) > 2 else ''})"
    return ApiError(400, "invalid_request", description, fields)


def from_service_error(error: DjangoValidationError, *, field: str | None = None) -> ApiError:
    """A 400 for a service's ValidationError; `field` renames a single-field error (a service
    says `groups`, the endpoint's field is `metadata.add`)."""
    if hasattr(error, "error_dict"):
        fields = {field or name: list(messages) for name, messages in error.message_dict.items()}
    else:
        fields = {field or "body": list(error.messages)}
    description = " ".join(message for messages in fields.values() for message in messages)
    return ApiError(400, "invalid_request", description, fields)
