"""Signing in: which account a typed login names, and password-guess throttling by django-axes.

The console's sign-in form, the admin's and the API's password grant all call Django's
`authenticate(request, ...)`, so one throttle covers them: axes' backend refuses a locked-out
login before any password is checked, and its database handler counts failures in PostgreSQL,
shared by every worker and web node. Failures count against the *account* the login names,
whatever its spelling (username or email, any case), and against the client address.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Sum
from django.http import JsonResponse
from django.shortcuts import render

from axes.handlers.database import AxesDatabaseHandler

LOCKOUT_MESSAGE = "Too many failed sign-in attempts. Wait 15 minutes, then try again."


def account_for(login: str | None):
    """The one account a typed login names: the exact username, else the only account whose
    username or else whose email matches ignoring case; None when there is none or no single one."""
    login = (login or "").strip()
    if not login:
        return None
    users = get_user_model().objects
    exact = users.filter(username=login).first()
    if exact is not None:
        return exact
    for lookup in ({"username__iexact": login}, {"email__iexact": login}):
        found = list(users.filter(**lookup)[:2])
        if len(found) == 1:
            return found[0]
        if found:
            return None
    return None


class LoginBackend(ModelBackend):
    """Django's model backend, signing in with the username or the email address, any case."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = account_for(username)
        if user is None:
            # Hash anyway, so an unknown login takes as long as a wrong password.
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


def throttle_key(request, credentials) -> str:
    """The name failures are counted under (AXES_USERNAME_CALLABLE): the account's username, so
    "Viewer", "viewer@example.com" and "viewer" share one count; an unknown login counts under
    its lower-cased spelling, so guessing at non-accounts is throttled alike."""
    typed = ((credentials or {}).get("username") or "").strip()
    memo = request.__dict__.setdefault("_fleet_throttle_keys", {}) if request is not None else {}
    if typed not in memo:
        account = account_for(typed)
        memo[typed] = account.get_username() if account is not None else typed.lower()[:150]
    return memo[typed]


def client_address(request) -> str:
    """REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the outermost one saw
    (counted from the right of X-Forwarded-For, which a client cannot forge past our proxies)."""
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if count and len(forwarded) >= count:
        return forwarded[-count]
    return request.META.get("REMOTE_ADDR", "")


class ThrottleHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit per kind of count.

    Axes compares the larger of its counts (per account, per address: AXES_LOCKOUT_PARAMETERS)
    with one limit, AXES_FAILURE_LIMIT, the per-account one. An office behind one address needs
    more room, so the address count is scaled to it: LOGIN_FAILURES_PER_ADDRESS failures from
    one address weigh as much as LOGIN_FAILURES_PER_USERNAME against one account.
    """

    def get_failures(self, request, credentials=None) -> int:
        by_account, by_address = (
            attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        per_account, per_address = settings.LOGIN_FAILURES_PER_USERNAME, settings.LOGIN_FAILURES_PER_ADDRESS
        return max(by_account, by_address * per_account // per_address)


def lockout_response(request, original_response=None, credentials=None):
    """What a locked-out sign-in gets (AXES_LOCKOUT_CALLABLE): 429, in the API's error shape
    from the token endpoint, else the sign-in page (the console's or the admin's) with the reason."""
    retry = {"Retry-After": str(int(settings.AXES_COOLOFF_TIME.total_seconds()))}
    match = request.resolver_match
    if match is not None and match.namespace == "api":
        body = {"ok": False, "error": "too_many_requests",
                "error_description": "Too many failed sign-in attempts; wait 15 minutes and try again."}
        return JsonResponse(body, status=429, headers={**retry, "Cache-Control": "no-store"})
    # Unbound, so showing it does not try the password again.
    form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")})
    form.cleaned_data = {}
    form.add_error(None, LOCKOUT_MESSAGE)
    context = {"form": form, "next": request.POST.get("next", "")}
    template = "registration/login.html"
    if match is not None and match.namespace == "admin":
        from django.contrib import admin

        template = "admin/login.html"
        context.update(admin.site.each_context(request), title="Log in", app_path=request.get_full_path())
    response = render(request, template, context, status=429)
    response["Retry-After"] = retry["Retry-After"]
    return response
