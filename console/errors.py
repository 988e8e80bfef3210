"""How refused and failed requests read. A plain request gets Django's error page; an htmx
request gets the message alone, as text, which console.js shows (htmx does not swap errors in)."""

from django.http import HttpResponse
from django.views import csrf, defaults

MESSAGES = {
    400: "The request was not understood. Reload the page and try again.",
    403: "You do not have permission to do that.",
    404: "Not found: it may have been deleted, or you no longer have access to it. Reload the page.",
    500: "Something went wrong on our side and nothing was changed. Try again; if it keeps happening, tell an administrator.",
}
CSRF_MESSAGE = "Your session has expired or this page is out of date. Reload the page and try again."


def _wants_message(request) -> bool:
    # The header, not request.htmx: a failure in middleware may come before django-htmx ran.
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def _message(status: int, exception=None) -> HttpResponse:
    # Our own refusals (PermissionDenied, Http404 from access checks) say what to do; Django's
    # generic ones ("No Device matches the given query.") do not.
    text = str(exception or "") if status == 403 else ""
    return HttpResponse(text or MESSAGES[status], status=status, content_type="text/plain; charset=utf-8")


def bad_request(request, exception):
    return _message(400) if _wants_message(request) else defaults.bad_request(request, exception)


def permission_denied(request, exception):
    return _message(403, exception) if _wants_message(request) else defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    return _message(404) if _wants_message(request) else defaults.page_not_found(request, exception)


def server_error(request):
    return _message(500) if _wants_message(request) else defaults.server_error(request)


def csrf_failure(request, reason=""):
    if _wants_message(request):
        return HttpResponse(CSRF_MESSAGE, status=403, content_type="text/plain; charset=utf-8")
    return csrf.csrf_failure(request, reason)
