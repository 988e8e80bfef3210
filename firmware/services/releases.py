"""Releasing a version to groups and as product default, and what a release would do.

A version may be released (to a group or as product default) only once some device of the
product has *reported running it* through the device gateway (recorded on the firmware, first
and last report, by the gateway's handshake), or it was released before. Neither is ever
forgotten. Unreleasing never needs this.

An *intelligent* release is a flag on the firmware: the device cloud (and simulate_fleet) pushes
it to online devices at once instead of waiting for their next handshake. Releasing creates no
update rows; rollout progress counts devices by their current target.
"""

from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from console.models import AuditEvent, Product
from devices.models import Device
from firmware import targeting
from firmware.models import Firmware
from firmware.services import rollouts
from groups.models import Group

# How long a staged release's preview figures wait for the release (see ReleasePlan.impact).
IMPACT_SECONDS = 600

UNPROVEN_MESSAGE = (
    "No device of this product has reported running v{version} yet. Try it on a development "
    "device first: flash it there, let the device report it, then release it."
)


@dataclass(frozen=True)
class ReleasePlan:
    """What a release call means, read before anything is written: the groups and the product
    default before and after, the targeting scenario that follows, and its impact. The console's
    confirmation, the API's release and impact endpoints and `firmware_release` all use one."""

    firmware: Firmware
    groups_before: tuple[Group, ...]
    groups_after: tuple[Group, ...]
    default_before: bool
    default_after: bool
    # A staged release's rollout as asked for (firmware.services.rollouts); None: all at once.
    rollout: object = None

    @property
    def groups_added(self) -> list[Group]:
        return [group for group in self.groups_after if group not in self.groups_before]

    @property
    def groups_removed(self) -> list[Group]:
        return [group for group in self.groups_before if group not in self.groups_after]

    @property
    def releases_anything(self) -> bool:
        """Whether the version is released anywhere afterwards (else this is an unrelease)."""
        return bool(self.groups_after) or self.default_after

    @property
    def is_empty(self) -> bool:
        """Released nowhere before or after: neither a release nor an unrelease."""
        return not (self.groups_before or self.groups_after or self.default_before or self.default_after)

    @property
    def newly_releases(self) -> bool:
        """Whether the version goes somewhere it was not released before (which needs proof
        that a device has run it; unreleasing never does)."""
        return bool(self.groups_added) or (self.default_after and not self.default_before)

    @property
    def scenario(self) -> targeting.Scenario:
        version = self.firmware.version
        releases = {group.id: version for group in self.groups_after}
        releases.update({group.id: None for group in self.groups_before if group.id not in releases})
        if self.default_after == self.default_before:
            default = targeting.UNCHANGED
        else:
            default = version if self.default_after else None
        return targeting.Scenario(releases=releases, default=default)

    def impact(self, devices=None) -> targeting.Impact:
        """Devices the release would target for an OTA update, in one SQL statement over the
        fleet; `devices` narrows the count (a restricted member passes the devices they see)."""
        stage = None
        if self.rollout is not None:
            stage = rollouts.stage_sql(self.rollout.stages, seed=rollouts.seed_for(self.firmware), device="t")
        if devices is not None or self.rollout is None:
            devices = devices if devices is not None else Device.objects.filter(product_id=self.firmware.product_id)
            return targeting.impact(devices, self.scenario, product_id=self.firmware.product_id, stage=stage)
        # A staged release's figures over the whole fleet are kept for the release that follows its
        # preview (they become the stages' targeted counts and the audit event's), keyed on the
        # product's state: the newest audit event and the device count. What no event records (a
        # device reporting a new version by itself) may make them a few devices off; the rule
        # itself never reads them.
        key = self._impact_key()
        found = cache.get(key)
        if found is None:
            found = targeting.impact(Device.objects.filter(product_id=self.firmware.product_id), self.scenario,
                                     product_id=self.firmware.product_id, stage=stage)
            cache.set(key, found, IMPACT_SECONDS)
        return found

    def _impact_key(self) -> str:
        product = self.firmware.product
        stages = ";".join(f"{stage.share}:{','.join(str(g.id) for g in stage.groups)}" for stage in self.rollout.stages)
        groups = ",".join(str(group.id) for group in self.groups_after)
        return (f"staged-impact:{product.pk}:{AuditEvent.newest_id(product.pk)}:{product.device_count}:"
                f"{self.firmware.pk}:{groups}:{self.default_before}:{self.default_after}:{stages}")

    def check(self) -> None:
        """Raise the ValidationError `firmware_release` would raise for this plan, if any."""
        if self.newly_releases and not ever_reported_running(self.firmware):
            raise ValidationError({"version": [UNPROVEN_MESSAGE.format(version=self.firmware.version)]})
        if not self.is_empty:
            rollouts.refuse_while_live(self.firmware.product)
        if self.rollout is not None:
            rollouts.check_staged(self)


PRODUCT_WIDE_MESSAGE = (
    "Your access to this product is limited to some groups, so you cannot change the product default or "
    "whether v{version} is delivered intelligently: both reach the whole product. Ask an Administrator."
)


def release_plan(*, firmware: Firmware, groups=None, product_default: bool | None = None,
                 intelligent: bool | None = None, membership=None, rollout=None) -> ReleasePlan:
    """The plan of a release call: `groups` is the complete list of groups the version is released
    to afterwards (None leaves them), `product_default` True/False/None (unchanged), `intelligent`
    True/False/None (unchanged), `rollout` a checked `rollouts.RolloutSpec` to stage the release
    (None: all at once).

    A member restricted to groups (`membership`) names only theirs: the version stays released
    to the groups they cannot see, and they may change nothing product-wide (the default, the
    intelligent flag): that is refused with PermissionDenied.
    """
    before = tuple(Group.objects.filter(product_id=firmware.product_id, released_firmware=firmware).order_by("name"))
    if groups is None:
        after = before
    else:
        groups = list(groups)
        restricted = membership.restricted_group_ids() if membership is not None else None
        if restricted is not None:
            groups += [group for group in before if group.id not in restricted]
        after = tuple(sorted({group.id: group for group in groups}.values(), key=lambda group: group.name))
        foreign = [group.name for group in after if group.product_id != firmware.product_id]
        if foreign:
            raise ValidationError({"groups": [f"Unknown group: {', '.join(foreign)}."]})
    default_before = firmware.product.default_firmware_id == firmware.id
    default_after = default_before if product_default is None else bool(product_default)
    changes_flag = intelligent is not None and bool(intelligent) != firmware.intelligent
    restricted = membership.restricted_group_ids() if membership is not None else None
    if restricted is not None and (default_after != default_before or changes_flag):
        raise PermissionDenied(PRODUCT_WIDE_MESSAGE.format(version=firmware.version))
    return ReleasePlan(firmware, before, after, default_before, default_after, rollout)


def ever_reported_running(firmware: Firmware) -> bool:
    """Whether the version may be released: it was released before, or a device of the product
    reported running it through the gateway (`Firmware.first_reported_at`). Both are kept for
    good, so a version once proven stays releasable whatever its devices run later."""
    return firmware.ever_released or firmware.first_reported_at is not None


@transaction.atomic
def firmware_release(*, firmware: Firmware, groups=None, product_default: bool | None = None,
                     intelligent: bool | None = None, membership=None, rollout=None, actor) -> ReleasePlan:
    """Release (or unrelease) a version as `release_plan()` with the same arguments plans it,
    planned again under the locks; returns the plan it carried out. With `rollout`, the release
    is staged: it starts a rollout (firmware.services.rollouts) instead of releasing at once."""
    # One release at a time per product: the product row is the lock. NO KEY UPDATE, because
    # rows that merely point at the product (audit events, pending updates, written by batch
    # edits and handshakes meanwhile) must not wait for the release, nor deadlock with it.
    product = Product.objects.select_for_update(no_key=True).get(pk=firmware.product_id)
    firmware = Firmware.objects.select_for_update().filter(pk=firmware.pk).first()
    if firmware is None:
        raise ValidationError({"version": ["This firmware no longer exists."]})
    firmware.product = product
    if groups is not None:
        # Every group the release will write (those it keeps or gets, and those losing it) is
        # locked now, in one statement ordered by name as batch edits lock theirs: taking some
        # later, in the UPDATEs, could deadlock with a batch edit. It also keeps a concurrent
        # delete from taking a group away underneath the release.
        wanted = {group.id: group for group in groups}
        locked = Group.objects.select_for_update().filter(product=product).filter(
            Q(id__in=wanted) | Q(released_firmware=firmware)
        )
        found = [group for group in locked if group.id in wanted]
        missing = sorted(group.name for group_id, group in wanted.items() if group_id not in {g.id for g in found})
        if missing:
            raise ValidationError({"groups": [f"Unknown group: {', '.join(missing)}."]})
        groups = found
    plan = release_plan(
        firmware=firmware, groups=groups, product_default=product_default, intelligent=intelligent,
        membership=membership, rollout=rollout,
    )
    plan.check()
    impact = plan.impact()
    if not plan.is_empty:
        # A release decides afresh for the devices a stopped rollout kept on a version.
        Device.objects.filter(product=product, pinned_version__isnull=False).update(pinned_version=None)

    after_ids = [group.id for group in plan.groups_after]
    if rollout is not None:
        started = rollouts.start(plan=plan, spec=rollout, impact=impact, actor=actor)
    elif groups is not None:
        Group.objects.filter(product=product, released_firmware=firmware).exclude(id__in=after_ids).update(
            released_firmware=None
        )
        Group.objects.filter(product=product, id__in=after_ids).update(released_firmware=firmware)
    if plan.default_after != plan.default_before and rollout is None:
        product.default_firmware = firmware if plan.default_after else None
        product.save(update_fields=["default_firmware"])
    changed = []
    if intelligent is not None and bool(intelligent) != firmware.intelligent:
        firmware.intelligent = bool(intelligent)
        changed.append("intelligent")
    if plan.releases_anything and not firmware.ever_released:
        firmware.ever_released = True
        changed.append("ever_released")
    if changed:
        firmware.save(update_fields=changed)

    AuditEvent.record(
        product=product, actor=actor, action="firmware.release", obj=firmware,
        version=firmware.version,
        groups_before=[group.name for group in plan.groups_before],
        groups_after=[group.name for group in plan.groups_after],
        product_default_before=plan.default_before, product_default_after=plan.default_after,
        intelligent=firmware.intelligent, impacted=impact.total, impact=impact.as_json(),
        **({"rollout": started.pk, "stages": rollout.summary} if rollout is not None else {}),
    )
    return plan
