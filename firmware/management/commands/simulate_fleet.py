"""Make a product's fleet behave like devices in the field, so rollouts visibly move.

Each round, first the online devices whose target is an *intelligent* release handshake (the
cloud pushes to them at once), then a share of the whole fleet (re)connects and handshakes.
Devices that were offered an update install it and handshake again with it, except for a
configurable failure rate whose devices report the failure, and a share of online devices drops
off at the end of the round.

Every handshake and failure report goes through the device gateway's services
(`gateway_handshake`, `gateway_update_failed`), authenticated by the device's key, one device at
a time as real devices do, so the simulation settles and offers updates exactly as the gateway
does. Running inside the server, it presents the key's stored hash, which is what the gateway
checks; devices without a device key are left alone, as the gateway would refuse them. Choosing the devices is set-based
SQL over bounded batches of device ids. The "random" choices are a deterministic hash of device
id, round and --seed: a run can be repeated.
"""

import secrets

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import F, IntegerField, Q, Value
from django.db.models.functions import Mod

from console.models import AuditEvent, Product
from devices.models import Device
from firmware import gateway, targeting


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
        """Handshake, install (or fail to) and handshake again, device by device."""
        if not ids:
            return
        devices = Device.objects.filter(pk__in=ids).exclude(key_hash="")
        failing = set(_sample(devices, "id", salt + 1, failure_rate).values_list("pk", flat=True))
        for device in devices.order_by("pk").only("pk", "device_id", "key_hash", "firmware_version"):
            credentials = gateway.Credentials(device.device_id, device.key_hash)
            totals["handshakes"] += 1
            offer = gateway.gateway_handshake(credentials=credentials, firmware_version=device.firmware_version)
            if offer is None:
                continue
            totals["offered"] += 1
            if device.pk in failing:
                gateway.gateway_update_failed(
                    credentials=credentials, version=offer.version, reason="Simulated install failure."
                )
                totals["failed"] += 1
            else:
                gateway.gateway_handshake(credentials=credentials, firmware_version=offer.version)
                totals["updated"] += 1
