"""Access tokens: `POST /oauth/token` (password grant) and `DELETE /v1/access_tokens/current`."""

from django.contrib.auth import authenticate, get_user_model
from django.db.models import Q
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from console.api.errors import ApiError, error_responses
from console.api.parsing import Int
from console import services, throttle
from console.models import DEFAULT_TOKEN_SECONDS, MAX_TOKEN_SECONDS

router = Router(tags=["Authentication"])


class TokenIn(Schema):
    # OAuth clients send more than we use (scope, ...); extra fields are ignored here.
    model_config = ConfigDict(extra="ignore")

    grant_type: str = Field(json_schema_extra={"enum": ["password"]})
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    expires_in: Int = Field(DEFAULT_TOKEN_SECONDS, ge=1, le=MAX_TOKEN_SECONDS)


class TokenOut(Schema):
    token_type: str
    access_token: str
    expires_in: int
    refresh_token: str


class OkOut(Schema):
    ok: bool


def _user_for(username: str, password: str):
    """The active user with these credentials; the username may also be the account's email."""
    candidate = (
        get_user_model()
        .objects.filter(Q(username=username) | Q(email__iexact=username))
        .order_by("-username")  # an exact username match wins over an email match
        .first()
    )
    login = candidate.get_username() if candidate is not None else username
    return authenticate(username=login, password=password)


@router.post(
    "/oauth/token",
    auth=None,
    response={200: TokenOut, **error_responses(429)},
    summary="Create an access token (password grant)",
)
def create_token(request, payload: TokenIn):
    """Form-encoded or JSON. Repeated wrong credentials are throttled (429) per username and per
    client address; a throttled call fails even with the right password."""
    if payload.grant_type != "password":
        raise ApiError(
            400,
            "unsupported_grant_type",
            "Only grant_type=password is supported.",
            {"grant_type": ["Use password."]},
        )
    missing = {field: ["This field is required."] for field in ("username", "password") if not getattr(payload, field)}
    if missing:
        raise ApiError(400, "invalid_request", "Send a username and a password.", missing)
    address = throttle.client_address(request)
    if throttle.is_throttled(payload.username, address):
        raise ApiError(
            429,
            "too_many_requests",
            "Too many failed sign-in attempts; wait 15 minutes and try again.",
            headers={"Retry-After": str(throttle.WINDOW_SECONDS)},
        )
    user = _user_for(payload.username, payload.password)
    if user is None:
        throttle.record_failure(payload.username, address)
        raise ApiError(400, "invalid_grant", "User credentials are invalid: check the username and password.")
    throttle.reset(payload.username)
    _token, raw, refresh = services.token_create(
        user=user, name=f"oauth {payload.client_id or ''}".strip()[:100], expires_in=payload.expires_in
    )
    return {"token_type": "bearer", "access_token": raw, "expires_in": payload.expires_in, "refresh_token": refresh}


@router.delete(
    "/v1/access_tokens/current",
    response={200: OkOut, **error_responses()},
    summary="Revoke the access token used for this call",
)
def revoke_current_token(request):
    services.token_revoke(token=request.auth, actor=request.user)
    return {"ok": True}
