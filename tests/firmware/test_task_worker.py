"""The task queue's real worker process (`manage.py db_worker`, as `make run` and production start
it) runs what a rollout queued while no worker was running: nothing is lost, it catches up."""

import subprocess
import sys

import pytest
from django.db import connection

from firmware import services
from firmware.models import Rollout
from firmware.services import rollouts
from groups.models import Group
from tests.factories import DeviceFactory, GroupFactory
from tests.firmware.helpers import proven_firmware
from tests.gunicorn import PROJECT, GunicornServer


def test_the_worker_process_catches_up_with_a_rollout_queued_while_it_was_down(transactional_db, personas, settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process reaches the PostgreSQL test database only (SQLite's is in memory)")
    product = personas.product
    proven_firmware(product, 4)
    v5 = proven_firmware(product, 5)
    everyone = GroupFactory(product=product, name="everyone", devices=DeviceFactory.create_batch(20, product=product))
    spec = rollouts.rollout_spec(product=product, stages="10%, 100%", soak_minutes=0, min_updated=0)
    services.firmware_release(firmware=v5, groups=[everyone], rollout=spec, actor=personas.developer)
    rollout = Rollout.objects.get(firmware=v5)
    assert rollout.status == Rollout.Status.RUNNING and rollout.current_stage == 0

    env = GunicornServer(media_root=settings.MEDIA_ROOT, log_path=tmp_path / "unused.log").env
    finished = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload", "--interval", "0.1"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]

    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.COMPLETED, finished.stderr[-3000:]
    assert Group.objects.get(pk=everyone.pk).released_firmware == v5
    assert rollout.samples.count() >= 2
