"""Request bodies sent with `Transfer-Encoding: chunked` (no Content-Length).

Particle's clients stream a file given by path that way. A WSGI server that decodes chunked
bodies (gunicorn does) passes the decoded stream on without a Content-Length, and Django then
reads an empty body. This middleware, first in the stack, reads such a body into a spooled file
(in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, on disk beyond) and sets its Content-Length, so
everything after it, the body-size limits included, sees an ordinary request. A body larger than
any endpoint accepts is not kept: it gets a 413.
"""

import json
import tempfile

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpResponse

READ_BYTES = 64 * 1024
# How much of an oversize body is read and dropped so that its sender gets the 413.
DRAIN_BYTES = 64 * 1024 * 1024


def body_limit() -> int:
    """The largest body any address accepts; each address's own limit is then applied by
    RequestBodyLimitMiddleware (console.middleware) to the Content-Length set here."""
    return settings.REQUEST_BODY_MAX_BYTES


def _too_large(request, limit: int) -> HttpResponse:
    description = f"The request body is larger than the {limit} bytes any address accepts."
    if request.path_info.startswith(("/v1/", "/oauth/")):
        body = {"ok": False, "error": "payload_too_large", "error_description": description}
        response = HttpResponse(json.dumps(body), status=413, content_type="application/json")
    else:
        response = HttpResponse(description, status=413, content_type="text/plain; charset=utf-8")
    # The rest of the body is never read: the connection cannot carry another request.
    response["Connection"] = "close"
    return response


def _drain(source) -> None:
    """Read (and drop) what is left of an oversize body, up to DRAIN_BYTES: closing the
    connection on a client still sending resets it, and the client never reads the 413."""
    drained = 0
    while drained < DRAIN_BYTES and (chunk := source.read(READ_BYTES)):
        drained += len(chunk)


class ChunkedBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        if "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", "").lower() or meta.get("CONTENT_LENGTH"):
            return self.get_response(request)
        limit = body_limit()
        spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)
        size = 0
        source = meta["wsgi.input"]
        while chunk := source.read(READ_BYTES):
            size += len(chunk)
            if size > limit:
                spool.close()
                _drain(source)
                return _too_large(request, limit)
            spool.write(chunk)
        spool.seek(0)
        meta["CONTENT_LENGTH"] = str(size)
        request._stream = LimitedStream(spool, size)
        response = self.get_response(request)
        response._resource_closers.append(spool.close)
        return response
