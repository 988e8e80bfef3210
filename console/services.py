"""Team and token changes. The team page, the admin and scripts all go through these."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from console.models import DEFAULT_TOKEN_SECONDS, MAX_TOKEN_SECONDS, AccessToken, AuditEvent, Membership, Role


def _restriction_names(membership) -> list[str]:
    return sorted(membership.restricted_groups.values_list("name", flat=True))


@transaction.atomic
def membership_invite(*, product, identifier: str, role: str, actor) -> Membership:
    """Add an existing user, found by username or email, to the product's team."""
    identifier = (identifier or "").strip()
    if not identifier:
        raise ValidationError({"identifier": ["Enter the username or email address of an existing user."]})
    users = list(get_user_model().objects.filter(Q(username__iexact=identifier) | Q(email__iexact=identifier), is_active=True)[:2])
    if len(users) != 1:
        raise ValidationError({"identifier": [f"No single active user is called “{identifier}”. Check the spelling, or ask them to sign up first."]})
    user = users[0]
    if role == Role.OWNER or role not in Role.values:
        raise ValidationError({"role": ["Choose Administrator, Developer, Support or View-only. Ownership is transferred, not given on invite."]})
    if Membership.objects.filter(product=product, user=user).exists():
        raise ValidationError({"identifier": [f"{user.username} is already on this team."]})
    membership = Membership.objects.create(product=product, user=user, role=role)
    AuditEvent.record(product=product, actor=actor, action="team.invite", obj=membership, user=user.username, role=role)
    return membership


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor) -> Membership:
    """Change a member's role. Making someone Owner transfers ownership: there is exactly one."""
    if role not in Role.values:
        raise ValidationError({"role": ["Choose one of the roles listed."]})
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == role:
        return locked
    if locked.user_id == getattr(actor, "pk", None):
        # Otherwise an Administrator could make themselves Owner and the Owner an Administrator.
        raise ValidationError({"role": ["You cannot change your own role; ask the Owner or another Administrator."]})
    if locked.role == Role.OWNER:
        raise ValidationError({"role": ["The Owner's role changes only when ownership is transferred to someone else."]})
    before = locked.role
    if role == Role.OWNER:
        Membership.objects.filter(product_id=locked.product_id, role=Role.OWNER).update(role=Role.ADMINISTRATOR)
    locked.role = role
    locked.save(update_fields=["role"])
    AuditEvent.record(product=locked.product, actor=actor, action="team.role", obj=locked,
                      user=locked.user.username, before=before, after=role)
    return locked


@transaction.atomic
def membership_restrict(*, membership: Membership, groups, actor) -> Membership:
    """Limit a member to some groups (an empty list lifts the restriction)."""
    groups = list(groups)
    if any(group.product_id != membership.product_id for group in groups):
        raise ValidationError({"groups": ["Choose groups of this product."]})
    if groups and membership.role in {Role.OWNER, Role.ADMINISTRATOR}:
        raise ValidationError({"groups": ["Owners and Administrators manage the team and cannot be restricted to groups."]})
    before = _restriction_names(membership)
    membership.restricted_groups.set(groups)
    if membership.is_restricted != bool(groups):
        membership.is_restricted = bool(groups)
        membership.save(update_fields=["is_restricted"])
    after = sorted(group.name for group in groups)
    if before != after:
        AuditEvent.record(product=membership.product, actor=actor, action="team.restrict", obj=membership,
                          user=membership.user.username, before=before, after=after)
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor) -> None:
    if membership.role == Role.OWNER:
        raise ValidationError({"role": ["The Owner cannot be removed; transfer ownership first."]})
    AuditEvent.record(product=membership.product, actor=actor, action="team.remove", obj=membership,
                      user=membership.user.username, role=membership.role)
    membership.delete()


@transaction.atomic
def token_create(*, user, name: str = "", expires_in: int | None = None) -> tuple[AccessToken, str, str]:
    """Issue a personal API token; the raw values are returned once and never stored.

    `expires_in=0` issues a token that never expires: allowed (Particle's clients ask for one
    with `--never-expires`), listed on the tokens page and revocable there like any other."""
    expires_in = DEFAULT_TOKEN_SECONDS if expires_in is None else expires_in
    if not 0 <= expires_in <= MAX_TOKEN_SECONDS:
        raise ValidationError({"expires_in": [
            f"Choose a lifetime in seconds between 1 and {MAX_TOKEN_SECONDS:,} (a year), or 0 for a token that never expires."
        ]})
    if len(name) > 100:
        raise ValidationError({"name": ["Use at most 100 characters."]})
    token, raw, refresh = AccessToken.issue(user=user, name=name, expires_in=expires_in)
    AuditEvent.record(product=None, actor=user, action="token.create", obj=token, token_id=token.pk)
    return token, raw, refresh


@transaction.atomic
def token_revoke(*, token: AccessToken, actor) -> None:
    if token.revoked_at is None:
        token.revoke()
        AuditEvent.record(product=None, actor=actor, action="token.revoke", obj=token, token_id=token.pk)


@transaction.atomic
def product_rename(*, product, name: str, actor):
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": ["Give the product a name of 1 to 100 characters."]})
    if name == product.name:
        return product
    before, product.name = product.name, name
    product.save(update_fields=["name"])
    AuditEvent.record(product=product, actor=actor, action="product.rename", obj=product, before=before, after=name)
    return product


@transaction.atomic
def tokens_revoke_all(*, user, actor) -> int:
    """Revoke every live token of the user (the one making the call included); returns how many."""
    token_ids = list(AccessToken.objects.filter(user=user).active().values_list("pk", flat=True))
    if token_ids:
        AccessToken.objects.filter(pk__in=token_ids).update(revoked_at=timezone.now())
        AuditEvent.record(product=None, actor=actor, action="token.revoke_all", obj=user, token_ids=token_ids)
    return len(token_ids)
