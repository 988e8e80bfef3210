"""The console's htmx conventions, in one place every app imports.

* A dialog view answers an htmx GET with the `<dialog>` partial (`<name>`), an invalid htmx POST
  with the dialog's body (`<name>-body`, swapped into the open dialog: htmx swaps only 2xx), and
  a request without htmx with the full page (a refused POST then answers 400).
* A finished dialog answers htmx with 204 and events: the domain events first, then
  `showMessage` (always a dict) and `closeModal` last, because closing the modal removes the form
  the events are dispatched on. Without htmx it redirects to the next URL with a message.
* Views that answer htmx and plain requests differently vary on `HX-Request`; a history-restore
  request is answered like a plain one (it needs the whole page).
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

vary_on_htmx = vary_on_headers("HX-Request")


def is_htmx(request: HttpRequest) -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def next_url(request: HttpRequest, default: str) -> str:
    """The `next` URL the form carried, if it stays on this site; else `default`."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return default


def partial(request: HttpRequest, template: str, name: str | None) -> str:
    """`template#name` for an htmx request (when a name is given), the whole template otherwise."""
    return f"{template}#{name}" if name and is_htmx(request) else template


def dialog(request: HttpRequest, template: str, context: dict, *, name: str, refused: bool | None = None) -> HttpResponse:
    """Render a dialog view (see the module docstring). `refused` says whether a POST was
    refused; by default every POST that reaches here was."""
    htmx = is_htmx(request)
    if refused is None:
        refused = request.method == "POST"
    if htmx:
        template = f"{template}#{name}-body" if request.method == "POST" else f"{template}#{name}"
    status = 400 if refused and not htmx else 200
    return render(request, template, context, status=status)


def message_event(response: HttpResponse, message: str) -> HttpResponse:
    return trigger_client_event(response, "showMessage", {"value": message})


def finished(request: HttpRequest, *, message: str, events: tuple[str, ...] = (), next: str) -> HttpResponse:
    """A dialog that did its work: 204 with events for htmx, a redirect with a message otherwise."""
    if request.htmx:
        response = HttpResponse(status=204)
        for event in events:
            trigger_client_event(response, event, {})
        message_event(response, message)
        return trigger_client_event(response, "closeModal", {})
    messages.success(request, message)
    return redirect(next_url(request, next))
