"""The Conventions section of API.md, shared by every router of the JSON API.

Errors (`ApiError`, `ErrorOut`), token authentication (`TokenAuth`), request bodies that may be
JSON or form-encoded (`RequestParser`), product access (`product_membership`) and timestamps.
"""

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from django.http import Http404, HttpRequest, QueryDict
from ninja import Schema
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import BeforeValidator, ConfigDict, Field, ValidationInfo

from console import access
from console.models import AccessToken

# ---------------------------------------------------------------------------------------------
# Errors


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


def error_responses(*codes: int) -> dict:
    """The documented error responses of an operation; 400 and 401 apply to all of them."""
    return {code: ErrorOut for code in sorted({400, 401, *codes})}


# ---------------------------------------------------------------------------------------------
# Timestamps: ISO 8601 UTC with milliseconds and Z.


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


Timestamp = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]


# ---------------------------------------------------------------------------------------------
# Request bodies: JSON, form-encoded or multipart, with qs-style lists and objects.

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
        if (request.content_type or "").lower() == "multipart/form-data":
            cached, _files = request.parse_file_upload(request.META, request)
        else:
            cached = QueryDict(request.body, encoding=request.encoding)
        request._api_form = cached
    return cached


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
Bool = Annotated[bool, BeforeValidator(_typed_bool)]


class RequestSchema(Schema):
    """Request bodies refuse fields they do not know, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# Authentication


def _token_from_request(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.GET.get("access_token"):
        return request.GET["access_token"]
    if request.method not in ("GET", "HEAD"):
        if is_form(request):
            token = form_data(request).get("access_token")
        else:
            try:
                body = json.loads(request.body) if request.body else None
            except (ValueError, UnicodeDecodeError):
                body = None
            token = body.get("access_token") if isinstance(body, dict) else None
        if isinstance(token, str) and token:
            return token
    return None


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`, or `access_token` in the query string or the form body.

    Sets `request.user` to the token's user, with `user.current_token` for the audit log. Session
    cookies are never looked at: the API is token-only, which is also why it needs no CSRF token.
    """

    def __call__(self, request: HttpRequest):
        raw = _token_from_request(request)
        request._api_token_presented = raw is not None
        if raw is None or "\x00" in raw:
            return None
        return self.authenticate(request, raw)

    def authenticate(self, request: HttpRequest, token: str):
        found = AccessToken.objects.authenticate(token)
        if found is None:
            return None
        user = found.user
        user.current_token = found
        request.user = user
        return found


# ---------------------------------------------------------------------------------------------
# Products


def product_membership(request: HttpRequest, product: str, *, write: bool = False):
    """The caller's membership of the product (id or slug): 404 for outsiders, 403 for read-only
    roles on writes (see console.access)."""
    # Digits PostgreSQL cannot hold as an id (or non-ASCII digits) cannot name a product.
    if product.isdigit() and not (product.isascii() and int(product) < 2**63):
        raise Http404("No such product")
    return access.membership_for(request.user, product, write=write)


def refuse_restricted(membership, action: str) -> None:
    """Members restricted to groups act on their devices and groups only, never product-wide
    (the rule of console.access.membership_for's `product_wide`)."""
    if membership.restricted_group_ids() is not None:
        raise ApiError(
            403,
            "forbidden",
            f"Your access to this product is limited to some groups, so you cannot {action}. Ask an Administrator.",
        )
