"""The caller, their tokens and their products, as Particle's clients ask for them (API.md, "Users,
tokens and products"): `/v1/user`, `/v1/access_tokens...`, `/v1/products[/:product[/team]]` and
`/v1/serial_numbers/:serial`."""

from django.http import Http404
from ninja import Router, Schema
from ninja.errors import AuthenticationError
from pydantic import Field

from console import access, services
from console.api.auth import TokenAuth
from console.api.errors import OkOut, error_responses
from console.api.parsing import Timestamp, timestamp
from console.models import AccessToken, Membership
from devices.models import Device
from groups.models import Group

router = Router()


# ---------------------------------------------------------------------------------------------
# The user and their tokens


class AccountInfo(Schema):
    first_name: str
    last_name: str


class UserOut(Schema):
    username: str
    email: str
    account_info: AccountInfo


class TokenOut(Schema):
    id: int
    client: str = Field(description="The name the token was given (the OAuth client id for a signed-in client).")
    created_at: Timestamp
    expires_at: Timestamp = Field(description="null: the token never expires.")
    last_used_at: Timestamp


class RevokedOut(Schema):
    ok: bool
    revoked: int


@router.get("/v1/user", response={200: UserOut, **error_responses()}, summary="Get the current user")
def get_user(request):
    """The token's user: what `particle login --token` and `particle whoami` ask for."""
    user = request.user
    return {
        "username": user.get_username(),
        "email": user.email,
        "account_info": {"first_name": user.first_name, "last_name": user.last_name},
    }


@router.get("/v1/access_tokens", response={200: list[TokenOut], **error_responses()}, summary="List your access tokens")
def list_tokens(request):
    """Your tokens that still work, newest first, never-expiring ones included. Tokens are stored
    hashed, so the list cannot show their values."""
    tokens = AccessToken.objects.filter(user=request.user).active().order_by("-created_at", "-id")
    return [
        {
            "id": token.pk,
            "client": token.name,
            "created_at": timestamp(token.created_at),
            "expires_at": timestamp(token.expires_at),
            "last_used_at": timestamp(token.last_used_at),
        }
        for token in tokens
    ]


@router.delete(
    "/v1/access_tokens", response={200: RevokedOut, **error_responses()}, summary="Revoke all your access tokens"
)
def revoke_all_tokens(request):
    """Every token of yours stops working, the one making this call included."""
    revoked = services.tokens_revoke_all(user=request.user, actor=request.user)
    return {"ok": True, "revoked": revoked}


@router.delete(
    "/v1/access_tokens/{token}",
    auth=None,
    response={200: OkOut, **error_responses(404)},
    summary="Revoke an access token",
    openapi_extra={"security": [{"TokenAuth": []}, {}]},
)
def revoke_token(request, token: str):
    """Revokes one of your own tokens: another user's token is a 404, as if it did not exist.

    Particle's clients send this call without any other credential (`particle token revoke`),
    so a token in the path with no `Authorization` header authenticates itself: whoever holds a
    token may use it, so they may also end it."""
    caller = TokenAuth()(request)
    if caller is None and request._api_token_presented:
        raise AuthenticationError()
    target = AccessToken.objects.authenticate(token) if "\x00" not in token else None
    if caller is None:
        if target is None:
            request._api_token_presented = True
            raise AuthenticationError()
        actor = target.user
        actor.current_token = target
    elif target is None or target.user_id != caller.user_id:
        raise Http404("No such token")
    else:
        actor = request.user
    services.token_revoke(token=target, actor=actor)
    return {"ok": True}


# ---------------------------------------------------------------------------------------------
# Products


class ProductOut(Schema):
    id: int
    slug: str
    name: str
    role: str = Field(description="*(ours)* Your role in the product.")
    groups: list[str] = Field(description="The product's device groups you can see, by name.")


class ProductList(Schema):
    products: list[ProductOut]


class ProductDetail(Schema):
    product: ProductOut


class TeamMember(Schema):
    username: str
    email: str
    role: str
    restricted_groups: list[str] | None = Field(
        description="*(ours)* The groups the member is limited to, or null for the whole product."
    )


class TeamList(Schema):
    team: list[TeamMember]


class SerialLookup(Schema):
    ok: bool
    device_id: str
    product_id: int
    platform_id: int
    iccid: str


def _visible_group_names(memberships) -> dict[int, list[str]]:
    """Product id -> names of the groups each member sees, in one query."""
    whole = [membership.product_id for membership in memberships if membership.restricted_group_ids() is None]
    limited = [group_id for membership in memberships for group_id in membership.restricted_group_ids() or []]
    rows = (Group.objects.filter(product_id__in=whole) | Group.objects.filter(id__in=limited)).order_by("name")
    names: dict[int, list[str]] = {}
    for product_id, name in rows.values_list("product_id", "name"):
        names.setdefault(product_id, []).append(name)
    return names


def _product_json(membership: Membership, groups: list[str]) -> dict:
    product = membership.product
    return {
        "id": product.pk,
        "slug": product.slug,
        "name": product.name,
        "role": membership.get_role_display(),
        "groups": groups,
    }


@router.get("/v1/products", response={200: ProductList, **error_responses()}, summary="List your products")
def list_products(request):
    """The products you are a member of, by name."""
    memberships = list(Membership.objects.for_user(request.user).select_related("product").order_by("product__name"))
    names = _visible_group_names(memberships)
    return {"products": [_product_json(membership, names.get(membership.product_id, [])) for membership in memberships]}


@router.get(
    "/v1/products/{product}", response={200: ProductDetail, **error_responses(404)}, summary="Get a product"
)
def get_product(request, product: str):
    """One of your products, by id or slug."""
    membership = access.membership_for(request.user, product)
    names = _visible_group_names([membership])
    return {"product": _product_json(membership, names.get(membership.product_id, []))}


@router.get(
    "/v1/products/{product}/team", response={200: TeamList, **error_responses(404)}, summary="List the product's team"
)
def list_team(request, product: str):
    """Everyone on the product's team with their role (as the console's Team page shows it)."""
    membership = access.membership_for(request.user, product)
    members = Membership.objects.team(membership.product_id)
    return {
        "team": [
            {
                "username": member.user.get_username(),
                "email": member.user.email,
                "role": member.get_role_display(),
                "restricted_groups": sorted(group.name for group in member.restricted_groups.all())
                if member.is_restricted
                else None,
            }
            for member in members
        ]
    }


@router.get(
    "/v1/serial_numbers/{serial_number}",
    response={200: SerialLookup, **error_responses(404)},
    summary="Look up a device by serial number",
)
def lookup_serial_number(request, serial_number: str):
    """The device with this serial number among the devices you can see in your products; a
    serial number you cannot see is a 404, as if it did not exist."""
    memberships = list(Membership.objects.for_user(request.user))
    device = (
        Device.objects.reachable_by(memberships)
        .filter(serial_number=serial_number.strip())
        .order_by("id")
        .only("device_id", "product_id", "platform_id", "iccid")
        .first()
        if serial_number.strip() and "\x00" not in serial_number
        else None
    )
    if device is None:
        raise Http404("No such serial number")
    return {
        "ok": True,
        "device_id": device.device_id,
        "product_id": device.product_id,
        "platform_id": device.platform_id,
        "iccid": device.iccid,
    }
