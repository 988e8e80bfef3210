"""The gateway's one-statement handshake writes only when `device_handshake` would have nothing to
settle or create, and then answers what it would answer (firmware/handshake.py, NEEDS_MORE)."""

from datetime import timedelta

import pytest
from django.db import connection  # noqa: F401 - the skipif condition names it
from django.utils import timezone

from console.models import AuditEvent
from firmware import handshake, services
from firmware.models import FirmwareUpdate
from tests.factories import FirmwareFactory, GroupFactory
from tests.gateway import keyed_device

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the one statement is PostgreSQL's"),
]

# name: (running version, locked to, development, pending update to, version reported)
SCENARIOS = {
    "on target, nothing pending": (5, None, False, None, 5),
    "offered, pending already": (4, None, False, 5, 4),
    "offered, nothing pending yet": (4, None, False, None, 4),
    "reports the pending version": (4, None, False, 5, 5),
    "pending version no longer the target": (4, 3, False, 5, 4),
    "development device": (4, None, True, None, 4),
    "development device with a stale pending update": (4, None, True, 5, 4),
    "reports nothing, offered": (None, None, False, None, None),
    "reports a version the product does not have": (4, None, False, 5, 99),
    "locked to what it runs": (3, 3, False, None, 3),
}


def _device(product, group, running, locked, development, pending_to):
    device, _key = keyed_device(product, firmware_version=running, desired_firmware_version=locked,
                                development=development)
    group.memberships.create(device=device)
    if pending_to is not None:
        FirmwareUpdate.objects.create(product=product, device=device, from_version=running, to_version=pending_to)
    return device


def _history(device):
    return (sorted(FirmwareUpdate.objects.filter(device=device).values_list("to_version", "status")),
            AuditEvent.objects.filter(device_links__device=device).count())


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_one_statement_and_the_service_make_the_same_decision(personas, name):
    running, locked, development, pending_to, reported = SCENARIOS[name]
    product = personas.product
    FirmwareFactory(product=product, version=3)
    v5 = FirmwareFactory(product=product, version=5)
    group = GroupFactory(product=product, name="beta", released_firmware=v5)
    by_statement = _device(product, group, running, locked, development, pending_to)
    by_service = _device(product, group, running, locked, development, pending_to)
    before = _history(by_service)

    now = timezone.now()
    fast = handshake.fast(device_id=by_statement.device_id, key_hash=by_statement.key_hash,
                          firmware_version=reported, now=now, failure_limit=20, window_start=now - timedelta(minutes=5))
    by_service.product = product
    offered = services.device_handshake(device=by_service, firmware_version=reported)

    service_did_more = _history(by_service) != before
    assert fast.recorded == (not service_did_more)
    by_statement.refresh_from_db()
    if fast.recorded:
        assert fast.state.offer(reported) == offered
        assert (by_statement.firmware_version, by_statement.online) == (reported, True)
    else:
        assert by_statement.last_handshake_at is None  # it wrote nothing; the general path will
