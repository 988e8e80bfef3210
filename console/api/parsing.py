"""Request bodies that may be JSON, form-encoded or multipart, with qs-style lists and objects,
the field types that accept both, and API.md's timestamps."""

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from django.http import HttpRequest, QueryDict
from django.utils.datastructures import MultiValueDict
from ninja import Schema
from ninja.parser import Parser
from pydantic import BeforeValidator, ConfigDict, Field, ValidationInfo

from console.api.errors import ApiError, invalid

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def is_form(request: HttpRequest) -> bool:
    return (request.content_type or "").lower() in FORM_TYPES


def _check_text(value: Any, path: str) -> None:
    """Refuse strings PostgreSQL cannot store (NUL) or UTF-8 cannot encode (lone surrogates)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(path or "body", "NUL characters are not allowed.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(path or "body", "This is not valid UTF-8 text.") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path)
            _check_text(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            _check_text(item, path)


def nest_form(data: QueryDict) -> dict:
    """Turn form fields into JSON-like data, the way the `qs` library (used by Particle's
    clients) writes them: `groups[]=a&groups[]=b`, `groups[0]=a`, `groups=a&groups=b` are lists,
    `metadata[add][]=x` is an object holding a list."""
    result: dict = {}
    for key in data.keys():
        values = data.getlist(key)
        match = _KEY_RE.match(key)
        if not match:
            result[key] = values if len(values) > 1 else values[-1]
            continue
        base, rest = match.groups()
        segments = re.findall(r"\[([^\[\]]*)\]", rest)
        # `a[0]` and `a[]` both mean "an item of list a"; drop the trailing index.
        as_list = bool(segments) and (segments[-1] == "" or segments[-1].isdigit())
        if as_list:
            segments = segments[:-1]
        target = result
        for segment in [base, *segments][:-1]:
            existing = target.get(segment)
            if not isinstance(existing, dict):
                existing = target[segment] = {}
            target = existing
        last = ([base, *segments])[-1]
        if as_list:
            current = target.get(last)
            if not isinstance(current, list):
                current = target[last] = [] if current is None else [current]
            current.extend(values)
        else:
            target[last] = values if len(values) > 1 else values[-1]
    return result


def form_data(request: HttpRequest) -> QueryDict:
    """The form fields of any method: Django only parses POST bodies by itself."""
    if request.method == "POST":
        if not hasattr(request, "_post"):
            # Read the raw body first: Django cannot give it after parsing a multipart POST, and
            # JSON-or-form endpoints look at it. Bounded by DATA_UPLOAD_MAX_MEMORY_SIZE.
            request.body  # noqa: B018
        return request.POST
    cached = getattr(request, "_api_form", None)
    if cached is None:
        files = MultiValueDict()
        if (request.content_type or "").lower() == "multipart/form-data":
            cached, files = request.parse_file_upload(request.META, request)
        else:
            cached = QueryDict(request.body, encoding=request.encoding)
        request._api_form, request._api_files = cached, files
    return cached


def form_files(request: HttpRequest) -> MultiValueDict:
    """The uploaded files of any method's multipart body (Django only parses POST bodies)."""
    if request.method == "POST" or not is_form(request):
        return request.FILES if is_form(request) else MultiValueDict()
    form_data(request)
    return request._api_files


def request_body(request: HttpRequest) -> Any:
    """The parsed body (cached): JSON, or form fields nested the `qs` way. Raises ApiError."""
    if hasattr(request, "_api_body"):
        return request._api_body
    if is_form(request):
        body = nest_form(form_data(request))
    elif not request.body:
        body = None
    else:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(
                400, "invalid_request", "The request body is not valid JSON (or send a form-encoded body)."
            ) from None
    if isinstance(body, dict):
        body.pop("access_token", None)
    _check_text(body, "")
    request._api_body = body
    return body


class RequestParser(Parser):
    def parse_body(self, request: HttpRequest):
        return request_body(request)

    def parse_querydict(self, data, list_fields, request):
        result = {}
        for key in data.keys():
            if key == "access_token":
                continue
            values = data.getlist(key)
            _check_text(values, key)
            # A repeated parameter is a list whatever the schema says; the schema then decides.
            if key in list_fields or key.endswith("[]") or len(values) > 1:
                result.setdefault(key.removesuffix("[]"), []).extend(values)
            else:
                result[key] = values[0]
        return result


def _form_list(value, info: ValidationInfo):
    """In a form body a single `groups=a` is a one-item list; `groups[]=` alone is empty."""
    request = (info.context or {}).get("request")
    if request is not None and is_form(request):
        if isinstance(value, str):
            value = [value]
        if value == [""]:
            value = []
    return value


def _form_null(value, info: ValidationInfo):
    """In a form body an empty value means null (`qs` writes null as `key=`)."""
    request = (info.context or {}).get("request")
    if value == "" and request is not None and is_form(request):
        return None
    return value


def _typed_int(value, info: ValidationInfo):
    """JSON has numbers, so a JSON body must send one; a form body sends digits as text."""
    request = (info.context or {}).get("request")
    if isinstance(value, bool) or (
        not isinstance(value, int) and value is not None and not (request and is_form(request))
    ):
        raise ValueError("Input should be a valid integer")
    return value


def _typed_number(value, info: ValidationInfo):
    """JSON has numbers, so a JSON body must send one; a form body sends them as text."""
    request = (info.context or {}).get("request")
    if isinstance(value, bool) or (
        not isinstance(value, int | float) and value is not None and not (request and is_form(request))
    ):
        raise ValueError("Input should be a valid number")
    return value


def _typed_bool(value, info: ValidationInfo):
    """JSON has true and false; a form body sends them as text (true/false, 1/0)."""
    request = (info.context or {}).get("request")
    if not isinstance(value, bool) and value is not None and not (request and is_form(request)):
        raise ValueError("Input should be a valid boolean")
    return value


NameList = Annotated[list[str], BeforeValidator(_form_list)]
# Validators run last-listed first: the form's empty value becomes null before the type check.
NullableInt = Annotated[int | None, BeforeValidator(_typed_int), BeforeValidator(_form_null)]
Int = Annotated[int, BeforeValidator(_typed_int)]
NullableNumber = Annotated[float | None, BeforeValidator(_typed_number), BeforeValidator(_form_null)]
Bool = Annotated[bool, BeforeValidator(_typed_bool)]


class RequestSchema(Schema):
    """Request bodies refuse fields they do not know, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


# Timestamps: ISO 8601 UTC with milliseconds and Z.


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


Timestamp = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]
