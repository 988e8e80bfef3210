"""The device gateway (API.md, "Devices themselves"): devices authenticate with their own key and
report their version (the handshake), report a failed update, and download the firmware offered.

* Authentication is HTTP Basic, the device ID and its device key (devices.keys). The key's keyed
  hash is compared with the stored one inside the statement that reads the device, so the check
  costs no round trip of its own; comparing keyed hashes leaks nothing through timing, since
  nobody can choose the bytes compared without the server's secret. A wrong key, an unknown
  device and a removed device all get the same 401; a device ID with
  `DEVICE_AUTH_FAILURES` failures within `DEVICE_AUTH_WINDOW_SECONDS` gets 429 until the window
  ends, counted in PostgreSQL (`DeviceAuthFailure`) so every web worker and node sees the same
  count. A team member's token is not a device credential here.
* The common handshake is one statement (`firmware.handshake.fast`): key check, throttle, target,
  offer and the write, in one round trip that commits by itself. Anything more (settling or
  creating an update) goes through `device_handshake` in a transaction.
* An offer's URL is signed for the device and the firmware and expires after
  `FIRMWARE_URL_SECONDS`; the download also needs the device's own credentials.
* Served through a lean path (`GatewayHandler`): devices send no cookies, CSRF tokens or
  sessions, so the console's middleware is skipped.
"""

import base64
import hashlib
import hmac
import json
import math
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from ninja import Query, Router, Schema
from ninja.responses import Status
from ninja.security import HttpBasicAuth
from pydantic import Field

from console.api.errors import ApiError, error_responses
from console.api.parsing import Int, NullableInt, RequestSchema
from console.middleware import CappedStream, declared_length
from console.prepared import Statement
from devices import keys
from devices.models import Device, normalize_device_id
from firmware import api as firmware_api
from firmware import handshake
from firmware import services as firmware_services
from firmware.models import DeviceAuthFailure, Firmware

PREFIX = "/v1/device/"
GATEWAY_BODY_MAX_BYTES = 16 * 1024  # a handshake or a failure report is a few dozen bytes
DOWNLOAD_SALT = "fleet-console.gateway.download"


def _unauthorized() -> ApiError:
    # One answer for a missing or malformed credential, an unknown or removed device and a
    # wrong key, so it says nothing about which device IDs exist.
    return ApiError(
        401, "invalid_device_credentials",
        "Unknown device or wrong device key: authenticate with HTTP Basic, the device ID as user name and its "
        "device key as password.",
        headers={"WWW-Authenticate": 'Basic realm="devices", charset="UTF-8"'},
    )


class Credentials(NamedTuple):
    device_id: str
    key_hash: str


class DeviceKeyAuth(HttpBasicAuth):
    """HTTP Basic with the device ID and its device key. Reads no database: the key's hash is
    checked by the statement each endpoint runs (see `authenticate`, `gateway_handshake`)."""

    openapi_description = "The device ID as user name, its device key as password."

    def __call__(self, request) -> Credentials:
        scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "basic":
            raise _unauthorized()
        try:
            username, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise _unauthorized() from None
        device_id = normalize_device_id(username)
        if device_id is None or not password or len(password) > keys.KEY_MAX_LENGTH:
            raise _unauthorized()
        return Credentials(device_id, keys.key_hash(password))

    def authenticate(self, request, username, password):  # abstract in HttpBasicAuth; __call__ does it
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Authentication and the failure throttle


def _window_start(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.DEVICE_AUTH_WINDOW_SECONDS)


AUTHENTICATE = Statement.from_template("fleet_gateway_authenticate", """
    SELECT d.id, d.key_hash = {key_hash},
           (SELECT a.window_started_at FROM firmware_deviceauthfailure AS a
            WHERE a.device_id = {device_id} AND a.failures >= {failure_limit} AND a.window_started_at > {window_start})
    FROM (SELECT 1) AS one LEFT JOIN devices_device AS d ON d.device_id = {device_id}
""")

FAILURE_TABLE = DeviceAuthFailure._meta.db_table
RECORD_FAILURE = f"""
    INSERT INTO {FAILURE_TABLE} (device_id, failures, window_started_at) VALUES (%s, 1, %s)
    ON CONFLICT (device_id) DO UPDATE SET
        failures = CASE WHEN {FAILURE_TABLE}.window_started_at <= %s THEN 1 ELSE {FAILURE_TABLE}.failures + 1 END,
        window_started_at = CASE WHEN {FAILURE_TABLE}.window_started_at <= %s
                                 THEN excluded.window_started_at ELSE {FAILURE_TABLE}.window_started_at END
"""


def _refuse(credentials: Credentials, *, found: bool, key_ok: bool, throttled_since, now: datetime) -> None:
    """Raise the 429 of a throttled device ID, or record a failure and raise the 401."""
    if throttled_since is not None:
        if isinstance(throttled_since, str):  # SQLite answers text, in UTC
            throttled_since = datetime.fromisoformat(throttled_since)
        if timezone.is_naive(throttled_since):
            throttled_since = throttled_since.replace(tzinfo=UTC)
        ends = throttled_since + timedelta(seconds=settings.DEVICE_AUTH_WINDOW_SECONDS)
        retry = max(1, math.ceil((ends - now).total_seconds()))
        raise ApiError(
            429, "too_many_requests",
            f"Too many failed authentications for this device; retry in {retry} seconds.",
            headers={"Retry-After": str(retry)},
        )
    if found and key_ok:
        return
    window_start = connection.ops.adapt_datetimefield_value(_window_start(now))
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        # Rows of ended windows go as failures come in, so the table stays small.
        cursor.execute(f"DELETE FROM {FAILURE_TABLE} WHERE window_started_at <= %s", [window_start])
        cursor.execute(RECORD_FAILURE, [credentials.device_id, at, window_start, window_start])
    raise _unauthorized()


def authenticate(credentials: Credentials, *, now: datetime | None = None) -> Device:
    """The device these credentials prove, with its product; or the 401/429 ApiError."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        AUTHENTICATE.execute(
            cursor, key_hash=credentials.key_hash, device_id=credentials.device_id,
            failure_limit=settings.DEVICE_AUTH_FAILURES,
            window_start=connection.ops.adapt_datetimefield_value(_window_start(now)),
        )
        pk, key_ok, throttled_since = cursor.fetchone()
    _refuse(credentials, found=pk is not None, key_ok=bool(key_ok), throttled_since=throttled_since, now=now)
    return _authenticated_device(pk)


def _authenticated_device(pk: int) -> Device:
    device = Device.objects.select_related("product").filter(pk=pk).first()
    if device is None:  # removed just now
        raise _unauthorized()
    return device


# ---------------------------------------------------------------------------------------------
# The gateway's service


def gateway_handshake(*, credentials: Credentials, firmware_version: int | None) -> Firmware | None:
    """Authenticate a device's handshake and record it; the firmware to offer, or None. Raises
    the 401/429 ApiError."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        def fast():
            return handshake.fast(
                device_id=credentials.device_id, key_hash=credentials.key_hash, firmware_version=firmware_version,
                now=now, failure_limit=settings.DEVICE_AUTH_FAILURES, window_start=_window_start(now),
            )

        outcome = _on_a_live_connection(fast)
        _refuse(credentials, found=outcome.device_pk is not None, key_ok=outcome.key_ok,
                throttled_since=outcome.throttled_since, now=now)
        if outcome.recorded:
            return outcome.state.offer(firmware_version)
        device = _authenticated_device(outcome.device_pk)  # there is more to do than one statement does
    else:
        device = authenticate(credentials, now=now)
    return firmware_services.device_handshake(device=device, firmware_version=firmware_version)


def gateway_update_failed(*, credentials: Credentials, version: int, reason: str = "") -> None:
    """Authenticate a device's report that installing `version` failed, and record it."""
    device = authenticate(credentials)
    firmware_services.device_update_failed(device=device, version=version, reason=reason)


def _on_a_live_connection(statement):
    """Run a handshake's statement in one round trip on a kept connection.

    Django checks a kept connection with a round trip of its own (SELECT 1) before a request's
    first query; that would double the handshake's. Instead the statement runs at once, and if
    it finds the connection dead (a database restart), once more on a new one: it is safe to
    repeat, since a repeated handshake writes the same values.
    """
    connection.health_check_done = True
    try:
        return statement()
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block or connection.is_usable():
            raise
        connection.close()
        return statement()


@lru_cache(maxsize=4)
def _download_key(secret_key: str) -> bytes:
    return hashlib.sha256(f"{DOWNLOAD_SALT}:{secret_key}".encode()).digest()


def _signature(device_id: str, firmware: Firmware, expires: int) -> str:
    value = f"{device_id}:{firmware.pk}:{firmware.version}:{expires}"
    return hmac.new(_download_key(settings.SECRET_KEY), value.encode(), hashlib.sha256).hexdigest()


def download_url(request, *, device_id: str, firmware: Firmware, now: float | None = None) -> str:
    """The offer's URL: for this device and this firmware only, until it expires."""
    expires = int(now if now is not None else time.time()) + settings.FIRMWARE_URL_SECONDS
    signature = _signature(device_id, firmware, expires)
    # get_host() checks the Host header against ALLOWED_HOSTS before it goes into the URL.
    return f"{request.scheme}://{request.get_host()}{PREFIX}firmware/{firmware.version}?expires={expires}&signature={signature}"


# ---------------------------------------------------------------------------------------------
# Endpoints

router = Router(auth=DeviceKeyAuth())


class HandshakeIn(RequestSchema):
    firmware_version: NullableInt = Field(None, ge=1, le=65535, description="The version the device runs; null if none.")


class UpdateOffer(Schema):
    version: int
    size: int
    sha256: str
    url: str = Field(description="Downloads the binary, for this device only (with its credentials), until it expires.")


class HandshakeOut(Schema):
    update: UpdateOffer | None


class UpdateFailedIn(RequestSchema):
    version: Int = Field(ge=1, le=65535)
    reason: str = Field("", max_length=255)


class DownloadQuery(Schema):
    expires: int
    signature: str = Field(max_length=128)


@router.post(
    "/v1/device/handshake",
    response={200: HandshakeOut, **error_responses(429)},
    summary="(ours) A device starts a session",
)
def handshake_endpoint(request, payload: HandshakeIn):
    """Records the version the device runs, marks it online, settles its pending update
    (succeeded when it reports the target) and answers the update to install, if any. A
    version the product does not have is stored as what the device runs and proves nothing."""
    firmware = gateway_handshake(credentials=request.auth, firmware_version=payload.firmware_version)
    update = None
    if firmware is not None:
        url = download_url(request, device_id=request.auth.device_id, firmware=firmware)
        update = {"version": firmware.version, "size": firmware.size, "sha256": firmware.sha256, "url": url}
    # Answered as built, in HandshakeOut's shape: validating our own few fields again would cost
    # the busiest endpoint a tenth of its Python time.
    return HttpResponse(json.dumps({"update": update}), content_type="application/json")


@router.post(
    "/v1/device/update_failed",
    response={204: None, **error_responses(429)},
    summary="(ours) A device reports a failed firmware update",
)
def update_failed(request, payload: UpdateFailedIn):
    """Marks the device's pending update to `version` failed, with the reason; its next
    handshake offers it again. 400 when the device has no pending update to that version."""
    gateway_update_failed(credentials=request.auth, version=payload.version, reason=payload.reason)
    return Status(204, None)


@router.get(
    "/v1/device/firmware/{int:version}",
    response=error_responses(403, 404, 429),
    summary="(ours) A device downloads the firmware it was offered",
    openapi_extra=firmware_api.BINARY_RESPONSE,
)
def download(request, version: int, params: Query[DownloadQuery]):
    """The `url` of a handshake's offer, with the same device's credentials. Another device, a
    changed firmware or a forged signature get 404; an expired URL gets 403 (handshake again)."""
    device = authenticate(request.auth)
    firmware = Firmware.objects.filter(product_id=device.product_id, version=version).first()
    if firmware is None or not constant_time_compare(
        params.signature, _signature(device.device_id, firmware, params.expires)
    ):
        raise ApiError(404, "not_found", "No such download for this device: use the URL of its latest offer.")
    if params.expires < time.time():
        raise ApiError(403, "url_expired", "This download URL has expired: handshake again for a new one.")
    return firmware_api.binary_response(firmware, filename=f"v{firmware.version}.bin")


# ---------------------------------------------------------------------------------------------
# The lean path


class GatewayHandler(WSGIHandler):
    """Django's WSGI handler for the gateway's paths: its own URLconf and no middleware.

    Devices send no cookies, sessions or CSRF tokens and get no templates or messages, so the
    console's middleware would only cost time on the busiest path. Connections are still
    managed per request (request_started/finished), and errors still become the API's JSON.
    """

    def load_middleware(self, is_async=False):
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        self._middleware_chain = convert_exception_to_response(self._get_response)

    def get_response(self, request):
        # What the console's middleware does for the API, for this path: a body refused by its
        # declared length and capped while read, and answers no cache may store.
        if declared_length(request) > GATEWAY_BODY_MAX_BYTES:
            error = ApiError(413, "payload_too_large",
                             f"The request body is too large: the gateway accepts at most {GATEWAY_BODY_MAX_BYTES} bytes.")
            response = JsonResponse(error.body(), status=413)
        else:
            request._stream = CappedStream(request, GATEWAY_BODY_MAX_BYTES)
            request.urlconf = "console.gateway_urls"
            response = super().get_response(request)
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def with_lean_gateway(application):
    """A WSGI application that serves the gateway's paths through `GatewayHandler` and
    everything else through `application`."""
    gateway = GatewayHandler()

    def dispatch(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return gateway(environ, start_response)
        return application(environ, start_response)

    return dispatch
