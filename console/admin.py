"""The Django admin, following each staff member's product roles object by object, like the console.

Superusers run the installation and see everything. Any other staff member needs Django's model
permission *and* a membership of the object's product, and its role decides (Membership.allows):
View-only and Support look, Developer and above change devices, groups and firmware, Owner and
Administrators change the team, a member restricted to groups sees and changes what the console
lets them. Another product's objects are 404s; choices offer only the object's product. Writes go
through the same services as the console and the API, so they are validated and audited.
"""

from functools import wraps

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group as UserGroup
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect

from console import services
from console.models import AccessToken, AuditEvent, Membership, Product, Role, Webhook, WebhookDelivery

VIEW, WRITE, PRODUCT_WIDE, TEAM = "view", "write", "product", "team"


def member_map(request) -> dict[int, Membership]:
    """The user's memberships by product id, read once per request."""
    if not hasattr(request, "_fleet_memberships"):
        request._fleet_memberships = {
            membership.product_id: membership
            for membership in Membership.objects.filter(user=request.user).select_related("product", "user")
        }
    return request._fleet_memberships


def _whole_product(queryset, membership):
    return queryset.filter(product_id=membership.product_id)


def visible(request, queryset, *, product_path: str = "product", scope=_whole_product):
    """The objects of `queryset` the user may see: everything of the products they fully see,
    and what `scope(queryset, membership)` leaves of a product they are restricted in."""
    if request.user.is_superuser:
        return queryset
    memberships = member_map(request).values()
    condition = Q(**{f"{product_path}__in": [m.product_id for m in memberships if m.restricted_group_ids() is None]})
    for membership in memberships:
        if membership.restricted_group_ids() is not None:
            condition |= Q(pk__in=scope(queryset.model._default_manager.all(), membership).values("pk"))
    return queryset.filter(condition)


def refusals_as_messages(view):
    """A service's refusal (one Owner always, names, ...) rolls the whole request back and is shown
    as a message, instead of a 500; every admin write is one transaction."""

    @wraps(view)
    def wrapped(self, request, *args, **kwargs):
        try:
            with transaction.atomic():
                return view(self, request, *args, **kwargs)
        except ValidationError as refused:
            self.message_user(request, "Nothing was changed: " + " ".join(refused.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    return wrapped


class MissingIsA404:
    """An object the user may not see answers 404, like one that does not exist (Django would
    redirect to the index with a message naming the id)."""

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object")
        return obj


class ProductScopedAdmin(MissingIsA404, admin.ModelAdmin):
    """An admin for a model that belongs to a product (`product_path` leads to it).

    `needs` says what kind of access (Membership.allows) adding, changing and deleting take; None
    means the admin never does it (the console and the API do, through their services). Viewing
    takes any membership. `scope` narrows a restricted member's view to what the console shows.
    """

    product_path = "product"
    needs = {"add": PRODUCT_WIDE, "change": PRODUCT_WIDE, "delete": PRODUCT_WIDE}

    def scope(self, queryset, membership):
        return queryset.filter(**{self.product_path: membership.product_id})

    def product_id_of(self, obj) -> int:
        return obj.pk if self.product_path == "pk" else getattr(obj, f"{self.product_path}_id")

    def allowed(self, request, action: str, obj=None) -> bool:
        need = VIEW if action == "view" else self.needs.get(action)
        if need is None:
            return False
        if request.user.is_superuser:
            return True
        memberships = member_map(request)
        if obj is None:
            return any(membership.allows(need) for membership in memberships.values())
        membership = memberships.get(self.product_id_of(obj))
        return membership is not None and membership.allows(need)

    def products_allowing(self, request, action: str):
        if request.user.is_superuser:
            return Product.objects.all()
        need = self.needs.get(action)
        return Product.objects.filter(
            pk__in=[pid for pid, membership in member_map(request).items() if need and membership.allows(need)]
        )

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self.allowed(request, "view", obj)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self.allowed(request, "add")

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.allowed(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self.allowed(request, "delete", obj)

    def get_queryset(self, request):
        return visible(request, super().get_queryset(request), product_path=self.product_path, scope=self.scope)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Product:
            kwargs["queryset"] = self.products_allowing(request, "add")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # What goes with a deleted object (a device's update history) is its service's business;
        # the role is asked about the chosen objects themselves.
        perms_needed = {name for name in perms_needed if name == self.model._meta.verbose_name}
        return deleted, counts, perms_needed, protected

    def get_changelist_instance(self, request):
        # Django would redirect to an "?e=1" page that blames the database installation.
        try:
            return super().get_changelist_instance(request)
        except IncorrectLookupParameters as error:
            raise BadRequest(f"A filter in this address has a value the list does not offer: {error}") from error

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term.replace("\x00", ""))

    def writable(self, request, queryset, action: str = "change"):
        """The queryset, after checking the user may `action` every object in it (403 otherwise)."""
        if not request.user.is_superuser:
            product_ids = set(queryset.order_by().values_list(self.product_path, flat=True).distinct())
            memberships = member_map(request)
            need = self.needs.get(action)
            if need is None or not all(pid in memberships and memberships[pid].allows(need) for pid in product_ids):
                raise PermissionDenied("Your role does not allow this change to every selected object.")
        return queryset

    changeform_view = refusals_as_messages(admin.ModelAdmin.changeform_view)
    delete_view = refusals_as_messages(admin.ModelAdmin.delete_view)
    changelist_view = refusals_as_messages(admin.ModelAdmin.changelist_view)


class SuperuserOnly:
    """Installation-wide models (accounts, sign-in records): superusers only. A staff member who
    could edit accounts could make themselves a superuser or read every tenant's users."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


for model, base in [
    (get_user_model(), auth_admin.UserAdmin),
    (UserGroup, auth_admin.GroupAdmin),
    (AccessAttempt, axes_admin.AccessAttemptAdmin),
    (AccessLog, axes_admin.AccessLogAdmin),
    (AccessFailureLog, axes_admin.AccessFailureLogAdmin),
]:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, type(base.__name__, (SuperuserOnly, base), {}))


@admin.register(Product)
class ProductAdmin(ProductScopedAdmin):
    product_path = "pk"
    needs = {"add": None, "change": TEAM, "delete": None}
    list_display = ["name", "slug", "default_firmware", "created_at"]
    search_fields = ["name", "slug"]
    # The slug is in every URL and script; products are created with their Owner (seed_demo).
    fields = ["name", "slug", "default_firmware", "created_at"]
    readonly_fields = ["slug", "default_firmware", "created_at"]
    list_select_related = ["default_firmware"]

    def save_model(self, request, obj, form, change):
        services.product_rename(product=obj, name=form.cleaned_data["name"], actor=request.user)


class MembershipAddForm(forms.ModelForm):
    identifier = forms.CharField(label="Username or email", max_length=254)
    role = forms.ChoiceField(choices=[choice for choice in Role.choices if choice[0] != Role.OWNER], initial=Role.VIEWER)

    class Meta:
        model = Membership
        fields = ["product", "identifier", "role"]


class MembershipChangeForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role", "restricted_groups"]


@admin.register(Membership)
class MembershipAdmin(ProductScopedAdmin):
    """The team, through the team services: exactly one Owner, no role change of one's own, every
    change audited. New members are named like on the team page (an exact username or email),
    so the admin lists no other tenant's users."""

    needs = {"add": TEAM, "change": TEAM, "delete": TEAM}
    list_display = ["user", "product", "role", "is_restricted", "created_at"]
    list_filter = ["role", ("product", admin.RelatedOnlyFieldListFilter), "is_restricted"]
    search_fields = ["user__username", "user__email", "product__slug"]
    list_select_related = ["user", "product"]
    readonly_fields = ["user", "product", "is_restricted", "created_at"]
    autocomplete_fields = ["restricted_groups"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = MembershipChangeForm if obj else MembershipAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["product", "identifier", "role"]
        return ["user", "product", "role", "restricted_groups", "is_restricted", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "restricted_groups":
            from groups.models import Group

            obj_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
            product_id = Membership.objects.filter(pk=obj_id).values("product_id")[:1] if obj_id else None
            # Only the membership's own product's groups; a foreign id is refused as invalid.
            kwargs["queryset"] = Group.objects.filter(product_id__in=product_id) if product_id is not None else Group.objects.none()
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            invited = services.membership_invite(
                product=data["product"], identifier=data["identifier"], role=data["role"], actor=request.user
            )
            obj.pk, obj.user, obj.role, obj.created_at = invited.pk, invited.user, invited.role, invited.created_at
            return
        member = services.membership_change_role(membership=Membership.objects.get(pk=obj.pk), role=data["role"], actor=request.user)
        services.membership_restrict(membership=member, groups=data["restricted_groups"], actor=request.user)

    def save_related(self, request, form, formsets, change):
        # The services above wrote the restricted groups; the form must not write them again.
        pass

    def delete_model(self, request, obj):
        services.membership_remove(membership=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("product", "user"):
            services.membership_remove(membership=membership, actor=request.user)


@admin.register(AccessToken)
class AccessTokenAdmin(MissingIsA404, admin.ModelAdmin):
    """Each staff member sees and revokes their own tokens; superusers anyone's (a leaked one)."""

    list_display = ["user", "name", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "name"]
    readonly_fields = ["user", "name", "created_at", "expires_at", "last_used_at", "revoked_at"]
    fields = readonly_fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request):
        return self.has_view_permission(request)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            services.token_revoke(token=token, actor=request.user)
        self.message_user(request, "The selected tokens were revoked; scripts using them now get 401.", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ProductScopedAdmin):
    needs = {"add": None, "change": None, "delete": None}
    list_display = ["created_at", "product", "actor", "action", "object_repr", "device_count"]
    list_filter = ["action", ("product", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["object_repr", "actor__username"]
    list_select_related = ["product", "actor"]
    date_hierarchy = "created_at"

    fields = ["created_at", "product", "actor", "token", "action", "object_type", "object_repr", "details",
              "device_count", "devices_named"]
    readonly_fields = ["devices_named"]

    def scope(self, queryset, membership):
        # As on the Activity page: a member limited to groups sees only their own actions.
        return queryset.filter(product_id=membership.product_id, actor_id=membership.user_id)

    @admin.display(description="device IDs")
    def devices_named(self, event):
        shown = list(
            event.device_links.order_by("device__device_id").values_list("device__device_id", flat=True)[:100]
        )
        more = event.device_count - len(shown)  # beyond the first 100, or removed since
        return ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")


class WebhookAdminBase(ProductScopedAdmin):
    """Read-only, and only for the product's Owner and Administrators, as on the Webhooks page (the
    deliveries carry the product's events). The signing secret is never shown here."""

    needs = {"add": None, "change": None, "delete": None}

    def allowed(self, request, action: str, obj=None) -> bool:
        # The list is open to any member, as every list here, and holds only what they may see.
        if action != "view" or obj is None or request.user.is_superuser:
            return super().allowed(request, action, obj)
        membership = member_map(request).get(self.product_id_of(obj))
        return membership is not None and membership.allows(TEAM)

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        managed = [pid for pid, membership in member_map(request).items() if membership.allows(TEAM)]
        return queryset.filter(**{f"{self.product_path}__in": managed})


@admin.register(Webhook)
class WebhookAdmin(WebhookAdminBase):
    list_display = ["url", "product", "active", "description", "created_by", "created_at"]
    list_filter = ["active", ("product", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["url", "description"]
    list_select_related = ["product", "created_by"]
    fields = ["product", "url", "description", "active", "created_by", "created_at"]
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(WebhookAdminBase):
    product_path = "webhook__product"
    list_display = ["created_at", "event", "webhook", "status", "attempts", "last_status_code", "next_attempt_at"]
    list_filter = ["status", "event"]
    search_fields = ["webhook__url", "event"]
    list_select_related = ["webhook"]
    date_hierarchy = "created_at"
    fields = ["webhook", "event", "status", "attempts", "last_status_code", "last_error", "next_attempt_at",
              "delivered_at", "created_at", "payload"]
    readonly_fields = fields

    def product_id_of(self, obj) -> int:
        return obj.webhook.product_id


# The task queue registers its own admin, which lists every product's tasks with their arguments:
# not for support staff, whose admin follows product roles. `manage.py db_worker` logs the tasks.
from django_tasks_db.models import DBTaskResult  # noqa: E402

if admin.site.is_registered(DBTaskResult):
    admin.site.unregister(DBTaskResult)
