import hashlib
import secrets
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import connection, models
from django.db.models.functions import Now
from django.utils import timezone

from console.prepared import Statement


class CountedByDatabase(models.Model):
    """A model with counters the database keeps (triggers, see the migrations that add them).

    A full save() writes every column of the instance, and an instance's counter may be stale
    by then; the counters are left out, so saving never undoes the triggers' work.
    """

    database_counters: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                field.name for field in self._meta.concrete_fields
                if not field.primary_key and field.name not in self.database_counters
            ]
        super().save(*args, **kwargs)


class Product(CountedByDatabase):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=64, unique=True)
    # The release every device falls back to (rule 4); set through firmware services only.
    default_firmware = models.ForeignKey(
        "firmware.Firmware", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The staged rollout releasing firmware to the product now, if any (firmware.rollouts).
    live_rollout = models.ForeignKey(
        "firmware.Rollout", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Kept exact by triggers on devices (migration 0006); never written by Django.
    device_count = models.PositiveIntegerField(default=0, editable=False)

    database_counters = ("device_count",)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMINISTRATOR = "administrator", "Administrator"
    DEVELOPER = "developer", "Developer"
    SUPPORT = "support", "Support"
    VIEWER = "viewer", "View-only"


WRITE_ROLES = {Role.OWNER, Role.ADMINISTRATOR, Role.DEVELOPER}
TEAM_ROLES = {Role.OWNER, Role.ADMINISTRATOR}


class MembershipQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user) if user.is_authenticated else self.none()

    def team(self, product_id: int):
        """A product's team by username, with users and group restrictions loaded."""
        return (
            self.filter(product_id=product_id)
            .select_related("user")
            .prefetch_related("restricted_groups")
            .order_by("user__username")
        )


class Membership(models.Model):
    """A user's role in a product, optionally restricted to some of its groups."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    # Restricted members see only devices in `restricted_groups`; with none left (all deleted),
    # they see no devices at all rather than silently seeing everything.
    is_restricted = models.BooleanField("restricted to groups", default=False)
    restricted_groups = models.ManyToManyField("groups.Group", blank=True, related_name="restricted_memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "product"], name="membership_one_per_user_product"),
            models.UniqueConstraint(
                fields=["product"], condition=models.Q(role="owner"), name="membership_one_owner_per_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.product}"

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES

    @property
    def can_write_product_wide(self) -> bool:
        """May make changes beyond any one group (see `console.access.membership_for`)."""
        return self.can_write and self.restricted_group_ids() is None

    @property
    def can_manage_team(self) -> bool:
        return self.role in TEAM_ROLES

    def allows(self, need: str) -> bool:
        """Whether the role permits a kind of access: "view"; "write" (within a restricted
        member's groups); "product" (product-wide writes, which restricted members may not make);
        "team" (the team itself). The admin asks this object by object, as the console asks
        console.access.membership_for."""
        if need == "view":
            return True
        if need == "write":
            return self.can_write
        if need == "product":
            return self.can_write and self.restricted_group_ids() is None
        if need == "team":
            return self.can_manage_team
        raise ValueError(f"Unknown kind of access {need!r}")

    def restricted_group_ids(self) -> list[int] | None:
        """The ids of the groups this member is limited to (maybe none), or None when unrestricted.

        Cached on the instance: every list and count of a request asks it.
        """
        if not self.is_restricted:
            return None
        if not hasattr(self, "_restricted_group_ids"):
            self._restricted_group_ids = list(self.restricted_groups.values_list("id", flat=True))
        return self._restricted_group_ids

    def restricted_group_names(self) -> set[str] | None:
        """The names of the groups this member is limited to, or None when unrestricted (cached)."""
        if not self.is_restricted:
            return None
        if not hasattr(self, "_restricted_group_names"):
            self._restricted_group_names = set(self.restricted_groups.values_list("name", flat=True))
        return self._restricted_group_names


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def password_digest(user) -> str:
    """What binds a token to the password its user had when it was issued: a token whose user's
    password changed since (whichever way: console, admin, `changepassword`, a reset) is dead.
    A digest of the stored hash, never the hash itself, so the tokens table holds no copy."""
    return hashlib.sha256(f"fleet-token-password:{user.password}".encode()).hexdigest()


DEFAULT_TOKEN_SECONDS = 90 * 24 * 3600
# At most a year, as API.md fixes; 0 asks for a token that never expires (listed and revocable on
# the tokens page), which is how a long-lived token for a script is made.
MAX_TOKEN_SECONDS = 365 * 24 * 3600


class AccessTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now()),
                           revoked_at__isnull=True)

    def live(self, key_hash: str):
        """The token with this hash, unless revoked, expired or its user deactivated (authenticate()
        also refuses it once its user's password has changed)."""
        return self.filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=Now()),
            key_hash=key_hash, revoked_at__isnull=True, user__is_active=True,
        )

    def authenticate(self, raw: str):
        """The live token for a raw bearer string, with its user loaded, or None.

        Every API call runs it: one indexed statement, compiled once and prepared per connection
        (console.prepared), that reads the token and its user.
        """
        if not raw:
            return None
        statement = _live_token_statement()
        with connection.cursor() as cursor:
            statement.execute(cursor, key_hash=_token_hash(raw))
            row = statement.fetchone(cursor)
        if row is None:
            return None
        user_model = AccessToken._meta.get_field("user").related_model
        token_fields, user_fields = _attnames(AccessToken), _attnames(user_model)
        token = AccessToken.from_db(connection.alias, token_fields, row[: len(token_fields)])
        token.user = user_model.from_db(connection.alias, user_fields, row[len(token_fields) :])
        return token if token.password_unchanged else None


HASH_SENTINEL = "key-hash-sentinel"  # stands for the hash while compiling; real hashes are hex


def _attnames(model) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


@cache
def _live_token_statement() -> Statement:
    user_model = AccessToken._meta.get_field("user").related_model
    live = AccessToken.objects.live(HASH_SENTINEL).values_list(
        *_attnames(AccessToken), *(f"user__{name}" for name in _attnames(user_model))
    )
    return Statement.from_queryset("fleet_live_token", live, key_hash=HASH_SENTINEL)


class AccessToken(models.Model):
    """A bearer token for the API. Only hashes are stored; the raw values are shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    refresh_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Null: the token never expires (asked for with expires_in=0); it is listed and revocable
    # on the tokens page like any other.
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # password_digest(user) when issued; see password_unchanged.
    password_digest = models.CharField(max_length=64, editable=False)

    objects = AccessTokenQuerySet.as_manager()

    def __str__(self) -> str:
        expires = f"expires {self.expires_at:%Y-%m-%d}" if self.expires_at else "never expires"
        return f"{self.name or 'token'} of {self.user} ({expires})"

    @classmethod
    def issue(cls, *, user, name: str = "", expires_in: int = DEFAULT_TOKEN_SECONDS) -> tuple["AccessToken", str, str]:
        """Create a token; returns it with the raw access and refresh strings (never stored).
        `expires_in=0` makes a token that never expires."""
        raw, refresh = secrets.token_hex(20), secrets.token_hex(20)
        token = cls.objects.create(
            user=user,
            name=name,
            key_hash=_token_hash(raw),
            refresh_hash=_token_hash(refresh),
            expires_at=timezone.now() + timedelta(seconds=expires_in) if expires_in else None,
            password_digest=password_digest(user),
        )
        return token, raw, refresh

    @property
    def password_unchanged(self) -> bool:
        """False once the user's password has changed since the token was issued: the token no
        longer authenticates, as a session ends on a password change."""
        return secrets.compare_digest(self.password_digest, password_digest(self.user))

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


class AuditEventQuerySet(models.QuerySet):
    def touching_device(self, device_id: str):
        """Events that name this device: an index lookup however long the log grows."""
        return self.filter(id__in=AuditEventDevice.objects.filter(device__device_id=device_id).values("event_id"))


class AuditEvent(models.Model):
    """Append-only record of a change: who did what to which object, with the details."""

    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    token = models.ForeignKey(AccessToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=32, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    # How many devices the change named; which ones are AuditEventDevice rows.
    device_count = models.PositiveIntegerField("devices", default=0)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["product", "-created_at"], name="audit_product_created")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"

    def count_devices(self) -> int:
        """Store (and return) how many devices the event names, for devices named after it was
        recorded (see groups.services.devices_edit_groups)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE console_auditevent SET device_count ="
                " (SELECT COUNT(*) FROM console_auditeventdevice WHERE event_id = %s) WHERE id = %s"
                " RETURNING device_count",
                [self.pk, self.pk],
            )
            self.device_count = cursor.fetchone()[0]
        return self.device_count

    @property
    def device_ids(self) -> list[str]:
        """The IDs of the devices the event names that still exist."""
        return sorted(self.device_links.values_list("device__device_id", flat=True))

    @classmethod
    def newest_id(cls, product_id: int) -> int:
        """The id of the product's newest event: what the product's groups, releases and devices'
        settings are changes only through services that record an event, so this names a state
        (caches of figures derived from them key on it)."""
        return cls.objects.filter(product_id=product_id).order_by("-id").values_list("id", flat=True).first() or 0

    @classmethod
    def record(cls, *, product, actor, action: str, obj=None, device_ids=(), **details) -> "AuditEvent":
        """Append an event. `actor` is a user; an API call sets `actor.current_token` to its token."""
        device_ids = sorted(set(device_ids))
        event = cls.objects.create(
            product=product,
            actor=actor if getattr(actor, "pk", None) else None,
            token=getattr(actor, "current_token", None),
            action=action,
            object_type=type(obj).__name__.lower() if obj is not None else "",
            object_repr=str(obj)[:200] if obj is not None else "",
            device_count=len(device_ids),
            details=details,
        )
        if device_ids:
            AuditEventDevice.add(event, device_ids)
        return event


class AuditEventDevice(models.Model):
    """A device an audit event names. A batch edit names up to the whole fleet: one narrow row
    of two keys each, written in the same statement as the change, and found again by device
    through an index (a GIN index on PostgreSQL, whose pending list takes 100,000 new entries
    as one append; see migration 0005)."""

    # Written only beside its event and never changed, so no database-level foreign keys to
    # check 100,000 times at commit; Django still cascades an event's deletion. A removed
    # device's rows stay: the history keeps its key, and its events keep their device_count.
    pk = models.CompositePrimaryKey("event", "device")
    event = models.ForeignKey(
        AuditEvent, on_delete=models.CASCADE, related_name="device_links", db_constraint=False, db_index=False
    )
    device = models.ForeignKey(
        "devices.Device", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )

    @classmethod
    def add(cls, event: AuditEvent, device_ids: list[str]) -> None:
        """Name these devices (by device ID) in the event."""
        insert = "INSERT INTO console_auditeventdevice (event_id, device_id) SELECT %s, id FROM devices_device WHERE"
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"{insert} device_id = ANY(%s)", [event.pk, device_ids])
                return
            for start in range(0, len(device_ids), 500):
                chunk = device_ids[start : start + 500]
                cursor.execute(f"{insert} device_id IN ({', '.join(['%s'] * len(chunk))})", [event.pk, *chunk])


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


class Webhook(models.Model):
    """A product's endpoint for rollout events (console.webhooks). The secret signs every delivery,
    so it is kept as it is (not hashed); it is shown to people once, when the webhook is created."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField("URL", max_length=500)
    secret = models.CharField(max_length=80, default=new_webhook_secret, editable=False)
    description = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to one webhook, with what its last attempt got back."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["webhook", "-created_at"], name="webhook_delivery_recent"),
            models.Index(fields=["webhook"], condition=models.Q(status="pending"), name="webhook_delivery_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk} to {self.webhook_id}"
