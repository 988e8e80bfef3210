"""An idempotent demo: product acme-tracker with a fleet, groups, firmware and a team.

Running it again converges to the same state (it never duplicates rows); passwords are reset to
the one given, so the printed logins always work.
"""

import hashlib
import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from console.models import Membership, Product, Role
from devices import keys
from devices import services as device_services
from devices.models import Device
from firmware.models import BUCKETS, Firmware, FirmwareUpdate, Rollout, RolloutSample, RolloutStage, rollout_bucket
from firmware.services import rollouts
from groups.models import Group, GroupMembership

DEFAULT_PASSWORD = "fleet-demo-2026"

DEMO_GROUPS = [
    ("prerelease", "Internal testers who get new firmware first", "#8b5cf6"),
    ("europe", "Devices deployed in Europe", "#0ea5e9"),
    ("asia", "Devices deployed in Asia", "#f59e0b"),
    ("americas", "Devices deployed in North and South America", "#22c55e"),
    ("customer-globex", "Fleet of customer Globex Corp.", "#ef4444"),
    ("customer-initech", "Fleet of customer Initech", "#ec4899"),
    ("cold-chain", "Refrigerated trailers", "#14b8a6"),
    ("field-service", "Service partner's devices", "#64748b"),
]
DEMO_FIRMWARE = [
    (1, "Initial release", "First production firmware."),
    (2, "Battery saver", "Longer sleep between GPS fixes."),
    (3, "Stable 3", "Current production firmware."),
    (4, "Cellular fixes", "Reconnects faster after losing the network."),
    (5, "Geofencing beta", "Adds geofence alerts; being tested by prerelease devices."),
]
# Which admin permissions (a codename regex over the fleet apps) each staff user gets.
# The product role still decides object by object (console.admin); Support only looks, as in the console.
STAFF_PERMISSIONS = {"admin": r"^(view|change|add|delete)_", "support": r"^view_"}

TEAM = [
    ("owner", Role.OWNER),
    ("admin", Role.ADMINISTRATOR),
    ("developer", Role.DEVELOPER),
    ("support", Role.SUPPORT),
    ("viewer", Role.VIEWER),
]


def demo_device_id(product_id: int, index: int) -> str:
    return hashlib.sha256(f"demo-{product_id}-{index}".encode()).hexdigest()[:24]


class Command(BaseCommand):
    help = "Create or refresh the demo products, fleet and users (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--devices", type=int, default=2000, help="devices in acme-tracker (default 2000)")
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="password given to every demo user")

    @transaction.atomic
    def handle(self, *args, devices: int, password: str, **options):
        users = {name: self._user(name, password) for name, _role in TEAM}
        users["partner"] = self._user("partner", password)
        users["outsider"] = self._user("outsider", password)

        acme = self._product("acme-tracker", "Acme Tracker")
        groups = self._groups(acme, DEMO_GROUPS)
        firmware = self._firmware(acme, DEMO_FIRMWARE, users["developer"])
        self._fleet(acme, devices, groups, regions=["europe", "asia", "americas"], seed=1)
        self._releases(acme, groups, firmware)
        self._rollout_history(acme, groups, firmware, users["developer"])
        for name, role in TEAM:
            Membership.objects.update_or_create(user=users[name], product=acme, defaults={"role": role})
        partner, _ = Membership.objects.update_or_create(
            user=users["partner"], product=acme, defaults={"role": Role.DEVELOPER, "is_restricted": True}
        )
        partner.restricted_groups.set([groups["field-service"]])
        # Two devices that got in touch without being imported, for the Quarantined page.
        for number, serial in enumerate(("P046QA000001", "P046QA000002")):
            device_services.device_contact(product=acme, device_id=f"{0xFEED0000 + number:024x}", serial_number=serial)

        other = self._product("other-fleet", "Other Fleet")
        other_groups = self._groups(other, [("north", "Northern depots", "#0ea5e9"), ("south", "Southern depots", "#f97316")])
        self._fleet(other, max(devices // 10, 20), other_groups, regions=["north", "south"], seed=2)
        Membership.objects.update_or_create(user=users["outsider"], product=other, defaults={"role": Role.OWNER})

        fleet = Device.objects.filter(product=acme).count()
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {acme.name} ({acme.slug}) with {fleet} devices, "
                                             f"{len(groups)} groups, {len(firmware)} firmware versions."))
        self.stdout.write("Sign in with any of these users, password: " + password)
        for name, role in TEAM:
            self.stdout.write(f"  {name:<9} {role.label} of acme-tracker")
        self.stdout.write("  partner   Developer of acme-tracker, restricted to group field-service")
        self.stdout.write("  outsider  Owner of other-fleet only")
        self.stdout.write("The Django admin at /admin/ takes admin and support (scoped to acme-tracker).")

    def _user(self, username, password):
        user, _ = get_user_model().objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.set_password(password)
        # Support staff and administrators also work in the Django admin, scoped to their products.
        user.is_staff = username in STAFF_PERMISSIONS
        user.save(update_fields=["password", "is_staff"])
        if user.is_staff:
            user.user_permissions.set(Permission.objects.filter(
                content_type__app_label__in=["console", "devices", "groups", "firmware"],
                codename__regex=STAFF_PERMISSIONS[username],
            ))
        return user

    def _product(self, slug, name):
        product, _ = Product.objects.get_or_create(slug=slug, defaults={"name": name})
        return product

    def _groups(self, product, specs):
        groups = {}
        for name, description, color in specs:
            groups[name], _ = Group.objects.get_or_create(
                product=product, name=name, defaults={"description": description, "color": color}
            )
        return groups

    def _firmware(self, product, specs, uploader):
        result = {}
        for version, title, description in specs:
            firmware = Firmware.objects.filter(product=product, version=version).first()
            if firmware is None:
                content = f"demo firmware {product.slug} v{version}\n".encode() * 64
                firmware = Firmware(
                    product=product, version=version, title=title, description=description,
                    size=len(content), sha256=hashlib.sha256(content).hexdigest(), uploaded_by=uploader,
                )
                firmware.binary.save(f"v{version}.bin", ContentFile(content), save=False)
                firmware.save()
            result[version] = firmware
        return result

    def _fleet(self, product, count, groups, *, regions, seed):
        rng = random.Random(seed)
        now = timezone.now()
        rows = []
        for index in range(count):
            running = rng.choices([None, 1, 2, 3, 4, 5], weights=[3, 2, 10, 70, 12, 3])[0]
            seen = rng.random() < 0.9
            rows.append(Device(
                product=product,
                device_id=demo_device_id(product.id, index),
                name=f"{product.slug.split('-')[0]}-{index:05d}",
                serial_number=f"{product.slug[:3].upper()}{seed}{index:07d}",
                firmware_version=running,
                online=seen and rng.random() < 0.35,
                last_handshake_at=now - timedelta(minutes=rng.randint(1, 60 * 24 * 30)) if seen else None,
                development=index % 250 == 7,
                desired_firmware_version=2 if index % 400 == 13 and running else None,
                # Simulated devices (manage.py simulate_fleet) have keys nobody holds; "Rotate
                # device key" on a device's page gives one to use with a real device.
                key_hash=keys.key_hash(keys.new_key()),
                key_rotated_at=now,
            ))
        Device.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
        ids = dict(Device.objects.filter(product=product).values_list("device_id", "id"))
        others = sorted(set(groups) - set(regions))
        memberships = []
        for index in range(count):
            pk = ids[demo_device_id(product.id, index)]
            # Regions are exclusive; customers and special groups overlap them.
            memberships.append(GroupMembership(group=groups[regions[index % len(regions)]], device_id=pk))
            for name in others:
                if rng.random() < (0.03 if name == "prerelease" else 0.1):
                    memberships.append(GroupMembership(group=groups[name], device_id=pk))
        GroupMembership.objects.bulk_create(memberships, batch_size=5000, ignore_conflicts=True)

    def _rollout_history(self, product, groups, firmware, developer):
        """A completed canary rollout of v4 to europe, three days ago, with its samples and a few
        failures, so the Rollouts page has something to show before anyone starts one."""
        if Rollout.objects.filter(product=product).exists():
            return
        v4 = firmware[4]
        started = timezone.now() - timedelta(days=3)
        rng = random.Random(4)
        europe = list(GroupMembership.objects.filter(group=groups["europe"]).values_list("device_id", flat=True))
        rollout = Rollout.objects.create(
            product=product, firmware=v4, status=Rollout.Status.COMPLETED, seed=rollouts.seed_for(v4),
            current_stage=2, open_share=BUCKETS, stage_opened_at=started + timedelta(hours=2), timeout=timedelta(hours=1),
            previous={"groups": {str(groups["europe"].pk): 3}, "default": 3}, created_by=developer,
            started_at=started, ended_at=started + timedelta(hours=3),
        )
        Rollout.objects.filter(pk=rollout.pk).update(created_at=started)
        rollout.release_groups.set([groups["europe"]])
        shares = [100, 1000, BUCKETS]
        placed = {index: [] for index in range(3)}
        for pk in europe:
            bucket = rollout_bucket(pk, rollout.seed)
            placed[next(index for index, share in enumerate(shares) if bucket < share)].append(pk)
        failures = {0: 0, 1: 2, 2: 9}
        reasons = ["Flash write error at 0x8000", "Battery too low to install", "Timed out: v4 not reported within 60 min."]
        updates = []
        for index, share in enumerate(shares):
            devices = placed[index]
            failed = min(failures[index], len(devices))
            RolloutStage.objects.create(
                rollout=rollout, index=index, share=share, soak=timedelta(minutes=60), max_failure_percent=5,
                min_updated=10, targeted=len(devices), offered=len(devices), updated=len(devices) - failed, failed=failed,
                timed_out=sum(1 for number in range(failed) if number % 3 == 2 and number >= 5), opened_at=started + timedelta(hours=index),
            )
            for number, pk in enumerate(devices[:failed]):
                updates.append(FirmwareUpdate(
                    product=product, device_id=pk, from_version=3, to_version=4, status=FirmwareUpdate.Status.FAILED,
                    reason=reasons[0 if number % 3 != 2 else (1 if number < 5 else 2)], rollout=rollout, stage=index,
                    finished_at=started + timedelta(hours=index, minutes=30),
                ))
        FirmwareUpdate.objects.bulk_create(updates)
        samples, updated, failed = [], 0, 0
        totals = [(len(placed[i]) - min(failures[i], len(placed[i])), min(failures[i], len(placed[i]))) for i in range(3)]
        for minute in range(0, 181, 5):
            stage = min(minute // 60, 2)
            done_before = [sum(t[k] for t in totals[:stage]) for k in (0, 1)]
            fraction = min(1.0, (minute - stage * 60) / 45 + rng.random() * 0.02)
            updated = done_before[0] + int(totals[stage][0] * fraction)
            failed = done_before[1] + int(totals[stage][1] * fraction)
            offered = sum(len(placed[i]) for i in range(stage + 1))
            samples.append(RolloutSample(rollout=rollout, at=started + timedelta(minutes=minute), offered=offered,
                                         updated=updated, failed=failed))
        RolloutSample.objects.bulk_create(samples)

    def _releases(self, product, groups, firmware):
        # Version 5 runs on the development devices, so it can be released to testers.
        Device.objects.filter(product=product, development=True).update(firmware_version=5)
        Group.objects.filter(pk=groups["prerelease"].pk).update(released_firmware=firmware[5])
        Group.objects.filter(pk=groups["europe"].pk).update(released_firmware=firmware[4])
        Firmware.objects.filter(pk__in=[firmware[3].pk, firmware[4].pk, firmware[5].pk]).update(ever_released=True)
        Product.objects.filter(pk=product.pk).update(default_firmware=firmware[3])
        # The fleet has reported running the versions it runs (through the gateway, in a real fleet).
        for version, item in firmware.items():
            reporter = Device.objects.filter(product=product, firmware_version=version).values_list("device_id", flat=True).first()
            if reporter:
                now = timezone.now()
                Firmware.objects.filter(pk=item.pk, first_reported_at__isnull=True).update(
                    first_reported_at=now, first_reported_by=reporter, last_reported_at=now, last_reported_by=reporter
                )
