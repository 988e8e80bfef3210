"""Transitional: the API plumbing moved to the `console.api` package (errors, parsing, auth) and
product access to `console.access`. Removed once every router imports from there."""

from console import access
from console.api.auth import TokenAuth  # noqa: F401
from console.api.errors import ApiError, ErrorOut, error_responses, invalid  # noqa: F401
from console.api.parsing import (  # noqa: F401
    Bool,
    Int,
    NameList,
    NullableInt,
    RequestParser,
    RequestSchema,
    Timestamp,
    form_data,
    is_form,
    request_body,
    timestamp,
)


def product_membership(request, product: str, *, write: bool = False):
    return access.membership_for(request.user, product, write=write)


def refuse_restricted(membership, action: str) -> None:
    if membership.restricted_group_ids() is not None:
        raise ApiError(
            403,
            "forbidden",
            f"Your access to this product is limited to some groups, so you cannot {action}. Ask an Administrator.",
        )
