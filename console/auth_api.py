"""Access tokens: `POST /oauth/token` (password grant) and `DELETE /v1/access_tokens/current`."""

from django.contrib.auth import authenticate
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from console.api.errors import ApiError, error_responses
from console.api.parsing import Int
from console import services
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
    expires_in: Int = Field(
        DEFAULT_TOKEN_SECONDS, ge=0, le=MAX_TOKEN_SECONDS, description="Seconds; 0 asks for a token that never expires."
    )


class TokenOut(Schema):
    token_type: str
    access_token: str
    expires_in: int
    refresh_token: str


class OkOut(Schema):
    ok: bool


@router.post(
    "/oauth/token",
    auth=None,
    response={200: TokenOut, **error_responses(429)},
    summary="Create an access token (password grant)",
)
def create_token(request, payload: TokenIn):
    """Form-encoded or JSON. The username may be the account's email. Repeated wrong credentials
    are throttled (429) per account and per client address, together with the console's and the
    admin's sign-in; a throttled call fails even with the right password."""
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
    # django-axes refuses a locked-out login here and answers 429 (console.signin.lockout_response).
    user = authenticate(request, username=payload.username, password=payload.password)
    if user is None:
        raise ApiError(400, "invalid_grant", "User credentials are invalid: check the username and password.")
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
    """The token sent with this call stops working at once (signing out)."""
    services.token_revoke(token=request.auth, actor=request.user)
    return {"ok": True}
