"""Make a product's fleet behave like devices in the field, so rollouts visibly move.

Each round, first the online devices whose target is an *intelligent* release handshake (the
cloud pushes to them at once), then a share of the whole fleet (re)connects and handshakes.
Devices that were offered an update install it, except for a configurable failure rate, and a
share of online devices drops off at the end of the round.

Everything is set-based SQL over bounded batches of device ids, with the same targeting rule as
the handshake service (`Device.objects.with_target()`), so 100,000 devices take seconds. The
"random" choices are a deterministic hash of device id, round and --seed: a run can be repeated.
"""

import secrets

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Mod
from django.utils import timezone

from console.models import AuditEvent, Product
from devices.models import Device
from firmware import targeting
from firmware.models import FirmwareUpdate

PENDING, SUCCEEDED, FAILED = (FirmwareUpdate.Status.PENDING, FirmwareUpdate.Status.SUCCEEDED, FirmwareUpdate.Status.FAILED)


def _chance(field: str, salt: int, rate: float):
    """A condition true for about `rate` of the rows, chosen by a hash of the id and the salt.

    A multiplicative hash modulo the prime 2^31 - 1 whose multiplier depends on the salt, so
    that the choices of different salts (connect, fail, disconnect) are not correlated.
    """
    threshold = round(max(0.0, min(1.0, rate)) * 1000)
    multiplier = (48271 * (salt % 99991 + 1)) % 2147483647 or 48271
    mixed = Mod((F(field) + Value(salt % 1000003)) * Value(multiplier), Value(2147483647), output_field=IntegerField())
    expression = Mod(mixed, Value(1000), output_field=IntegerField())
    return Q(**{f"{field}_chance__lt": threshold}), {f"{field}_chance": expression}


def _sample(queryset, field: str, salt: int, rate: float):
    condition, annotation = _chance(field, salt, rate)
    return queryset.annotate(**annotation).filter(condition)


class Command(BaseCommand):
    help = "Run handshakes and OTA installs for a product's devices so that rollouts progress."

    def add_arguments(self, parser):
        parser.add_argument("--product", required=True, help="The product's slug.")
        parser.add_argument("--rounds", type=int, default=1)
        parser.add_argument("--connect-rate", type=float, default=0.3, help="Share of devices that handshake each round.")
        parser.add_argument("--failure-rate", type=float, default=0.05, help="Share of offered updates that fail to install.")
        parser.add_argument("--disconnect-rate", type=float, default=0.1, help="Share of online devices that go offline each round.")
        parser.add_argument("--batch-size", type=int, default=20_000)
        parser.add_argument("--seed", type=int, default=None, help="Repeat a run's choices (default: a new seed each run).")

    def handle(self, *args, product, rounds, connect_rate, failure_rate, disconnect_rate, batch_size, seed, **options):
        product = Product.objects.filter(slug=product).first()
        if product is None:
            raise CommandError("No product with that slug.")
        if batch_size < 1 or rounds < 1:
            raise CommandError("--rounds and --batch-size must be at least 1.")
        if seed is None:
            seed = secrets.randbelow(1_000_000)
        for number in range(1, rounds + 1):
            salt = seed * 1_000_003 + number * 104_729
            totals = {"handshakes": 0, "offered": 0, "updated": 0, "failed": 0, "disconnected": 0}
            # Online devices with an intelligent target first, then everyone who (re)connects.
            for pass_name in ("intelligent", "connect"):
                for low, high in self._ranges(product, batch_size):
                    with transaction.atomic():
                        batch = self._batch(product, low, high)
                        if pass_name == "intelligent":
                            chosen = self._intelligent(product, batch)
                        else:
                            chosen = _sample(batch, "id", salt, connect_rate)
                        ids = chosen if isinstance(chosen, list) else list(chosen.values_list("pk", flat=True))
                        self._round(product, ids, salt, failure_rate, totals)
            for low, high in self._ranges(product, batch_size):
                batch = self._batch(product, low, high).filter(online=True)
                dropped = _sample(batch, "id", salt + 17, disconnect_rate).values("pk")
                totals["disconnected"] += Device.objects.filter(pk__in=dropped).update(online=False)
            AuditEvent.record(product=product, actor=None, action="fleet.simulate", round=number, **totals)
            self.stdout.write(
                f"Round {number}: {totals['handshakes']} handshakes, {totals['offered']} updates offered, "
                f"{totals['updated']} installed, {totals['failed']} failed, {totals['disconnected']} went offline."
            )

    def _ranges(self, product, batch_size):
        """Primary-key ranges [low, high) of `batch_size` devices each (high None: to the end)."""
        devices = Device.objects.filter(product=product).order_by("pk").values_list("pk", flat=True)
        low = devices.first()
        while low is not None:
            edge = list(devices.filter(pk__gte=low)[batch_size:batch_size + 1])
            yield low, edge[0] if edge else None
            low = edge[0] if edge else None

    def _batch(self, product, low, high):
        batch = Device.objects.filter(product=product, pk__gte=low)
        return batch.filter(pk__lt=high) if high is not None else batch

    def _intelligent(self, product, batch):
        """Ids of online devices of the batch whose target is an intelligent release they do not run."""
        sql, params = targeting.fleet_targets_sql(batch.filter(online=True), product_id=product.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT t.id FROM ({sql}) AS t
                JOIN firmware_firmware f ON f.product_id = %s AND f.version = t.current_target AND f.intelligent
                WHERE t.firmware_version IS NULL OR t.firmware_version <> t.current_target
                """,
                [*params, product.pk],
            )
            return [row[0] for row in cursor.fetchall()]

    def _round(self, product, ids, salt, failure_rate, totals):
        """Handshake, settle, offer and install for the devices `ids`, set-based."""
        if not ids:
            return
        now = timezone.now()
        totals["handshakes"] += len(ids)
        Device.objects.filter(pk__in=ids).update(online=True, last_handshake_at=now)

        # Settle like device_handshake: the pending version is running, or the target moved on.
        FirmwareUpdate.objects.filter(device_id__in=ids, status=PENDING, to_version=F("device__firmware_version")).update(
            status=SUCCEEDED, finished_at=now
        )
        targets, params = targeting.fleet_targets_sql(Device.objects.filter(pk__in=ids), product_id=product.pk)
        table = FirmwareUpdate._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} SET status = %s, reason = %s, finished_at = %s
                FROM ({targets}) AS t
                WHERE {table}.device_id = t.id AND {table}.status = %s
                  AND (t.current_target IS NULL OR {table}.to_version <> t.current_target)
                """,
                [FAILED, "Superseded: the target changed.", now, *params, PENDING],
            )
            # Offer the target to every device not on it that has no pending update yet.
            cursor.execute(
                f"""
                INSERT INTO {table} (product_id, device_id, from_version, to_version, status, reason, created_at)
                SELECT %s, t.id, t.firmware_version, t.current_target, %s, '', %s
                FROM ({targets}) AS t
                WHERE t.current_target IS NOT NULL
                  AND (t.firmware_version IS NULL OR t.firmware_version <> t.current_target)
                  AND NOT EXISTS (SELECT 1 FROM {table} p WHERE p.device_id = t.id AND p.status = %s)
                  AND EXISTS (SELECT 1 FROM firmware_firmware f WHERE f.product_id = %s AND f.version = t.current_target)
                """,
                [product.pk, PENDING, now, *params, PENDING, product.pk],
            )
            totals["offered"] += cursor.rowcount

        # Install: some fail, the rest now run their new version.
        failing = _sample(FirmwareUpdate.objects.filter(device_id__in=ids, status=PENDING), "device_id", salt + 1, failure_rate)
        totals["failed"] += FirmwareUpdate.objects.filter(pk__in=failing.values("pk")).update(
            status=FAILED, reason="Simulated install failure.", finished_at=now
        )
        installing = FirmwareUpdate.objects.filter(device=OuterRef("pk"), status=PENDING)
        Device.objects.filter(pk__in=ids).filter(Exists(installing)).update(
            firmware_version=Subquery(installing.values("to_version")[:1])
        )
        totals["updated"] += FirmwareUpdate.objects.filter(device_id__in=ids, status=PENDING).update(
            status=SUCCEEDED, finished_at=now
        )
