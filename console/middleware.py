from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import render

from console.htmx import message_event

# Scripts only from our own origin (no inline scripts, no eval); htmx is configured to match.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy and related headers Django's SecurityMiddleware lacks."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", CONTENT_SECURITY_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class CacheControlMiddleware:
    """No page of ours is stored by a shared cache. Console and admin pages default to
    `private, no-cache` (the browser revalidates, its back button still works); API answers carry
    tokens, device keys and fleet data to scripts and default to `no-store`, as RFC 6749 asks of
    the token endpoint. A view that shows a secret sets `no-store` itself (never_cache)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response:
            match = request.resolver_match
            response["Cache-Control"] = "no-store" if match and match.namespace == "api" else "private, no-cache"
        return response


class CappedStream:
    """A request body stream that yields at most `limit` bytes, whatever the Content-Length said
    (a server that passes a chunked or longer body through); past it the request is marked and
    Django's own "too big" error stops the reader, wherever that was."""

    def __init__(self, request, limit: int):
        self.request, self.stream, self.left = request, request._stream, limit

    def read(self, size=-1):
        return self._take(self.stream.read, size)

    def readline(self, size=-1):
        return self._take(self.stream.readline, size)

    def close(self):
        self.stream.close()

    def _take(self, reader, size):
        data = reader(self.left + 1 if size is None or size < 0 else min(size, self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            self.request._body_refused = True
            raise RequestDataTooBig("The request body is larger than this address accepts.")
        return data


def body_limit(request) -> int:
    """The largest body this request may send: sign-in forms (no session, not the API) are small;
    a console firmware upload is the binary's limit plus the form around it; anything else the
    larger of the form and upload limits (the API checks its own finer limits)."""
    match = request.resolver_match
    if match is None:
        return settings.SIGN_IN_BODY_MAX_BYTES
    if match.namespace != "api" and not request.user.is_authenticated:
        return settings.SIGN_IN_BODY_MAX_BYTES
    if match.view_name == "firmware:upload":
        return settings.FIRMWARE_MAX_BYTES + settings.MULTIPART_OVERHEAD_BYTES
    return settings.REQUEST_BODY_MAX_BYTES


def declared_length(request) -> int:
    """The body's length as the request declares it (0 when it does not, or says nonsense)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class RequestBodyLimitMiddleware:
    """Refuses a body larger than its address accepts by its Content-Length, before anything
    (CSRF, sign-in, the form) reads it, and caps the stream for a body that declared less. Runs
    as process_view, ahead of CsrfViewMiddleware, once the URL says what the request is for.
    Under ASGI Django has read the body before any middleware: serve with gunicorn (WSGI)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "_body_refused", False) and response.status_code != 413:
            return self.too_large(request, request._body_limit)  # the cap tripped while reading
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        limit = body_limit(request)
        request._body_limit = limit
        if declared_length(request) > limit:
            return self.too_large(request, limit)
        if hasattr(request, "_stream"):  # Django's private stream: the one reader of the body
            request._stream = CappedStream(request, limit)
        return None

    def too_large(self, request, limit: int):
        megabytes = f"{limit / 1024 / 1024:.1f} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
        text = f"The request body is too large: this address accepts at most {megabytes}."
        match = request.resolver_match
        if match is not None and match.namespace == "api":
            body = {"ok": False, "error": "payload_too_large", "error_description": text}
            response = JsonResponse(body, status=413)
        else:
            response = render(request, "console/request_too_large.html", {"message": text}, status=413)
            if getattr(request, "htmx", False):
                message_event(response, text)  # htmx swaps no 4xx: the toast says it
        return response
