"""The JSON API of API.md: one NinjaAPI with every app's router, token auth and error shape.

Mounted at the site root (see console.api_urls) because it serves both `/v1/...` and
`/oauth/token`; the OpenAPI schema is at `/v1/openapi.json` and the docs page at `/v1/docs`.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponseNotAllowed, RawPostDataException
from django.http.multipartparser import MultiPartParserError
from django.urls import URLPattern
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

from console import auth_api, users_api, webhooks_api
from console.api import errors
from console.api.auth import TokenAuth
from console.api.errors import ApiError
from console.api.parsing import RequestParser
from devices import api as devices_api
from firmware import api as firmware_api
from firmware import gateway as gateway_api
from firmware import rollouts_api
from groups import api as groups_api

logger = logging.getLogger(__name__)

DESCRIPTION = """
Fleet Console's API, shaped like Particle's Cloud API for product devices, device groups and
product firmware. Authenticate with `Authorization: Bearer <token>` (or `access_token` as a
query parameter, or as a form field); get a token from `POST /oauth/token`.
Errors always look like `{"ok": false, "error": "...", "error_description": "...", "fields": {...}}`.
""".strip()


FORM = "application/x-www-form-urlencoded"
ACCESS_TOKEN_SCHEME = {
    "type": "apiKey",
    "in": "query",
    "name": "access_token",
    "description": "The token as the access_token query parameter; on methods other than GET it may also be a"
    " form field of the body (OpenAPI has no way to say so).",
}
# Operations whose modules are being reworked by others still lack a docstring; their
# descriptions live here until they get one. The docstring wins once it exists.
DESCRIPTIONS = {
    ("get", "/v1/products/{product}/firmware/{version}"): "One firmware version of the product.",
    ("put", "/v1/products/{product}/firmware/{version}"): "Change the title and/or the description.",
    ("get", "/v1/products/{product}/firmware/{version}/binary"): "The binary as it was uploaded.",
    ("post", "/v1/products/{product}/devices/{device_id}/update_failed"): (
        "Called by the device-cloud gateway: installing the version the device was offered failed. Its pending"
        " update is marked failed (it counts against a rollout's health gate) and is offered again."
    ),
}


def _references(value) -> set[str]:
    found = set()
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def truthful_schema(schema: dict) -> dict:
    """What ninja leaves out or gets wrong about this API: every JSON body may also be sent
    form-encoded; `access_token` authenticates as well as the bearer header; the query schemas
    ninja lists although it flattens them into parameters are dropped; and the few operations
    without a docstring get their description."""
    schema["components"].setdefault("securitySchemes", {})["AccessTokenQuery"] = ACCESS_TOKEN_SCHEME
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not operation.get("description") and (method, path) in DESCRIPTIONS:
                operation["description"] = DESCRIPTIONS[(method, path)]
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content and FORM not in content:
                content[FORM] = content["application/json"]
            security = operation.get("security")
            if security and {"TokenAuth": []} in security and {"AccessTokenQuery": []} not in security:
                security.insert(security.index({"TokenAuth": []}) + 1, {"AccessTokenQuery": []})
    schemas = schema["components"].get("schemas", {})
    used, reached = set(), _references(schema["paths"])
    while reached - used:
        used |= reached
        reached = _references([schemas[name] for name in used if name in schemas])
    for name in [name for name in schemas if name not in used]:
        del schemas[name]
    return schema


class FleetAPI(NinjaAPI):
    def _get_urls(self):
        urls = super()._get_urls()
        for pattern in urls:
            if isinstance(pattern, URLPattern):
                pattern.callback = _api_view(pattern.callback, self)
        return urls

    def get_openapi_schema(self, **kwargs):
        return truthful_schema(super().get_openapi_schema(**kwargs))


def _api_view(view, api):
    """Answer ninja's plain-text 405s, and paths no query can hold, in the API's error shape."""

    def wrapped(request, *args, **kwargs):
        if "\x00" in request.path_info:
            return api.on_exception(request, ApiError(400, "invalid_request", "The path holds a NUL character."))
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            error = ApiError(405, "method_not_allowed", f"{request.method} is not allowed here; use {allowed}.")
            response = api.on_exception(request, error)
            response["Allow"] = allowed
        return response

    wrapped.csrf_exempt = True
    return wrapped


api = FleetAPI(
    title="Fleet Console API",
    version="1",
    description=DESCRIPTION,
    openapi_url="/v1/openapi.json",
    servers=[{"url": "/", "description": "This server: every path starts with /v1 (or is /oauth/token)."}],
    docs_url="/v1/docs",
    urls_namespace="api",
    auth=TokenAuth(),
    parser=RequestParser(),
)


def _respond(request, error: ApiError):
    response = api.create_response(request, error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def on_api_error(request, exc: ApiError):
    return _respond(request, exc)


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _respond(
        request,
        ApiError(404, "not_found", "Not found: it does not exist, or it belongs to a product you are not a member of."),
    )


@api.exception_handler(PermissionDenied)
def on_permission_denied(request, exc):
    message = str(exc) or "Your role in this product cannot do this."
    return _respond(request, ApiError(403, "forbidden", message))


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request, exc):
    if getattr(request, "_api_token_presented", False):
        description = "The access token is invalid, expired or revoked. Get a new one from POST /oauth/token."
    else:
        description = "An access token is required: send Authorization: Bearer <token>."
    return _respond(request, ApiError(401, "invalid_token", description, headers={"WWW-Authenticate": "Bearer"}))


@api.exception_handler(Throttled)
def on_throttled(request, exc):
    return _respond(request, ApiError(429, "too_many_requests", "Too many requests; slow down and retry later."))


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    if isinstance(exc.__cause__, ApiError):  # our body parser's own explanation
        return _respond(request, exc.__cause__)
    code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return _respond(request, ApiError(exc.status_code, code, str(exc)))


@api.exception_handler(NinjaValidationError)
def on_validation_error(request, exc: NinjaValidationError):
    return _respond(request, errors.from_schema_errors(exc.errors))


@api.exception_handler(DjangoValidationError)
def on_service_validation_error(request, exc: DjangoValidationError):
    return _respond(request, errors.from_service_error(exc))


@api.exception_handler(RequestDataTooBig)
def on_too_big(request, exc):
    return _respond(request, ApiError(413, "payload_too_large", "The request body is too large."))


@api.exception_handler(SuspiciousOperation)
def on_suspicious(request, exc):
    return _respond(request, ApiError(400, "invalid_request", "The request could not be read (too many fields?)."))


@api.exception_handler(MultiPartParserError)
def on_bad_multipart(request, exc):
    return _respond(request, ApiError(400, "invalid_request", f"The multipart body could not be read: {exc}"))


@api.exception_handler(RawPostDataException)
def on_raw_post(request, exc):
    return _respond(
        request, ApiError(400, "invalid_request", "Send this request as JSON or form-encoded, not multipart.")
    )


@api.exception_handler(Exception)
def on_unexpected(request, exc):
    logger.exception("Unexpected error in %s %s", request.method, request.path)
    return _respond(request, ApiError(500, "server_error", "Something went wrong on our side; nothing was changed."))


api.add_router("", auth_api.router)
api.add_router("", users_api.router, tags=["Users, tokens and products"])
api.add_router("", groups_api.router, tags=["Device groups"])
api.add_router("", devices_api.router, tags=["Product devices"])
api.add_router("", firmware_api.router, tags=["Product firmware"])
api.add_router("", rollouts_api.router, tags=["Rollouts"])
api.add_router("", gateway_api.router, tags=["Device gateway"])
api.add_router("", webhooks_api.router, tags=["Webhooks"])


def api_not_found(request):
    """Unknown paths under /v1/ answer a JSON 404 in the API's shape, saying the endpoint does
    not exist: it depends on the path alone, never on which products the caller belongs to."""
    error = ApiError(
        404, "not_found", f"No such endpoint: {request.method} {request.path}. The endpoints are listed at /v1/docs."
    )
    return _respond(request, error)


api_not_found.csrf_exempt = True
