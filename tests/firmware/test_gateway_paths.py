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


# With a rollout of v6 live (to "beta", which has v5; stages "prerelease, 100%", the canary stage
# open): name: (status, in the canary group, offered v6 already with its update pending, running,
# version reported).
ROLLOUT_SCENARIOS = {
    "stage open, not offered yet": ("running", True, False, 5, 5),
    "stage open, offered, pending": ("running", True, True, 5, 5),
    "stage open, reports the rollout's version": ("running", True, True, 5, 6),
    "stage open, on the rollout's version already": ("running", True, False, 6, 6),
    "stage closed, on target": ("running", False, False, 5, 5),
    "stage closed, behind": ("running", False, False, 4, 4),
    "paused, offered, pending": ("paused", True, True, 5, 5),
    "paused, canary not offered": ("paused", True, False, 5, 5),
    "halted, offered, reports the rollout's version": ("halted", True, True, 5, 6),
    "halted, not offered": ("halted", False, False, 5, 5),
}


@pytest.fixture
def live_rollout(personas):
    from firmware.models import Rollout
    from firmware.services import rollouts
    from tests.firmware.helpers import proven_firmware

    product = personas.product
    v5, v6 = proven_firmware(product, 5), proven_firmware(product, 6)
    beta = GroupFactory(product=product, name="beta")
    canary = GroupFactory(product=product, name="prerelease")
    services.firmware_release(firmware=v5, groups=[beta], actor=personas.developer)
    spec = rollouts.rollout_spec(product=product, stages="prerelease, 100%", max_failure_percent=100)
    services.firmware_release(firmware=v6, groups=[beta], rollout=spec, actor=personas.developer)
    return Rollout.objects.get(firmware=v6), beta, canary


def _rollout_device(rollout, beta, canary, *, in_canary, offered, running):
    device, _key = keyed_device(rollout.product, firmware_version=running)
    beta.memberships.create(device=device)
    if in_canary:
        canary.memberships.create(device=device)
    if offered:
        FirmwareUpdate.objects.create(product=rollout.product, device=device, from_version=running, to_version=6,
                                      rollout=rollout, stage=0)
        device.rollout = rollout
        device.save(update_fields=["rollout"])
    return device


@pytest.mark.parametrize("name", ROLLOUT_SCENARIOS)
def test_with_a_rollout_live_the_one_statement_and_the_service_make_the_same_decision(personas, live_rollout, name):
    from firmware.models import Rollout

    status, in_canary, offered, running, reported = ROLLOUT_SCENARIOS[name]
    rollout, beta, canary = live_rollout
    by_statement = _rollout_device(rollout, beta, canary, in_canary=in_canary, offered=offered, running=running)
    by_service = _rollout_device(rollout, beta, canary, in_canary=in_canary, offered=offered, running=running)
    Rollout.objects.filter(pk=rollout.pk).update(status=status)
    before = _history(by_service)
    stage_before = list(rollout.stages.values_list("offered", "updated", "failed"))

    now = timezone.now()
    fast = handshake.fast(device_id=by_statement.device_id, key_hash=by_statement.key_hash,
                          firmware_version=reported, now=now, failure_limit=20, window_start=now - timedelta(minutes=5))
    by_service.refresh_from_db()
    offered_now = services.device_handshake(device=by_service, firmware_version=reported)

    service_did_more = _history(by_service) != before
    assert fast.recorded == (not service_did_more)
    by_statement.refresh_from_db()
    if fast.recorded:
        assert fast.state.offer(reported) == offered_now
        assert (by_statement.firmware_version, by_statement.online) == (reported, True)
        # The statement counts nothing in the rollout: it records only when the service would not either.
        assert list(rollout.stages.values_list("offered", "updated", "failed")) == stage_before
    else:
        assert by_statement.last_handshake_at is None


def test_with_a_rollout_live_the_common_handshake_is_still_one_statement(personas, live_rollout,
                                                                         django_assert_num_queries):
    rollout, beta, canary = live_rollout
    open_device = _rollout_device(rollout, beta, canary, in_canary=True, offered=True, running=5)
    closed_device = _rollout_device(rollout, beta, canary, in_canary=False, offered=False, running=5)
    now = timezone.now()
    offers = []
    for device in (open_device, closed_device):
        with django_assert_num_queries(1):
            fast = handshake.fast(device_id=device.device_id, key_hash=device.key_hash, firmware_version=5, now=now,
                                  failure_limit=20, window_start=now - timedelta(minutes=5))
        assert fast.recorded
        offer = fast.state.offer(5)
        offers.append(offer and offer.version)
    assert offers == [6, None]  # the open stage is offered v6 again; the closed one keeps v5
