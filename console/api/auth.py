"""Token authentication: `Authorization: Bearer <token>`, or `access_token` in the query string or
the form body."""

import json

from django.http import HttpRequest
from ninja.security import HttpBearer

from console.api.parsing import form_data, is_form
from console.models import AccessToken


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
