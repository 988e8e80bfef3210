"""Concurrent writers on PostgreSQL, with real threads and connections, and an injected fault."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from console.models import AuditEvent
from devices.models import Device
from groups import services
from groups.models import Group, GroupMembership
from tests.factories import DeviceFactory, GroupFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks and triggers need PostgreSQL"),
]


def run_together(*jobs, timeout=60):
    """Run callables in threads that start at the same moment; return their results or errors."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def runner(index, job):
        try:
            barrier.wait()
            results[index] = job()
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a writer is stuck"
    return results


def test_two_overlapping_batch_edits_at_once_lose_no_membership(personas):
    product = personas.product
    devices = DeviceFactory.create_batch(60, product=product)
    europe, beta = GroupFactory(product=product, name="europe"), GroupFactory(product=product, name="beta")
    first, second = [d.pk for d in devices[:40]], [d.pk for d in devices[20:]]

    def edit(pks, group):
        return lambda: services.devices_edit_groups(
            product=product, devices=Device.objects.filter(pk__in=pks), add=[group, europe], actor=personas.admin
        )

    results = run_together(edit(first, beta), edit(second, beta))

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert GroupMembership.objects.filter(group=beta).count() == 60
    assert GroupMembership.objects.filter(group=europe).count() == 60
    # Every device is counted once: the overlap was added by exactly one of the two edits.
    assert sum(results) == 60


def test_a_group_deleted_during_a_batch_add_leaves_no_rows_and_a_clear_error(personas):
    product = personas.product
    devices = DeviceFactory.create_batch(10, product=product)
    doomed = GroupFactory(product=product, name="doomed")
    deleting = threading.Event()
    release = threading.Event()

    def delete():
        with transaction.atomic():
            group = Group.objects.select_for_update().get(pk=doomed.pk)
            deleting.set()
            release.wait(10)
            services.group_delete(group=group, actor=personas.admin)

    def add():
        deleting.wait(10)
        threading.Timer(0.5, release.set).start()  # the add is now blocked on the group's row lock
        return services.devices_edit_groups(
            product=product, devices=Device.objects.filter(pk__in=[d.pk for d in devices]), add=[doomed],
            actor=personas.admin,
        )

    deleted, added = run_together(delete, add)

    assert deleted is None
    assert isinstance(added, ValidationError)
    assert "deleted while you edited" in " ".join(added.messages)
    assert not Group.objects.filter(pk=doomed.pk).exists()
    assert GroupMembership.objects.count() == 0
    assert not AuditEvent.objects.filter(action="device.groups").exists()


def test_a_database_error_in_the_middle_of_a_batch_edit_changes_nothing(personas):
    product = personas.product
    devices = DeviceFactory.create_batch(5, product=product)
    old, new = GroupFactory(product=product, name="old", devices=devices), GroupFactory(product=product, name="new")
    # The insert of the new memberships succeeds; the delete of the old ones then fails in the database.
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION refuse_delete() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_membership_delete BEFORE DELETE ON groups_groupmembership
            FOR EACH ROW EXECUTE FUNCTION refuse_delete();
        """)
    try:
        with pytest.raises(Exception, match="injected failure"):
            services.devices_edit_groups(
                product=product, devices=Device.objects.filter(product=product), add=[new], remove=[old],
                actor=personas.admin,
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_membership_delete ON groups_groupmembership; DROP FUNCTION refuse_delete();")

    assert GroupMembership.objects.filter(group=new).count() == 0
    assert GroupMembership.objects.filter(group=old).count() == 5
    assert not AuditEvent.objects.filter(action="device.groups").exists()


def test_two_releases_racing_for_one_group_end_consistent_and_serialized(personas):
    from firmware import services as firmware_services
    from tests.firmware.helpers import proven_firmware

    product = personas.product
    v4, v5 = proven_firmware(product, 4), proven_firmware(product, 5)
    europe = GroupFactory(product=product, name="europe", devices=DeviceFactory.create_batch(5, product=product))

    def release(firmware):
        return lambda: firmware_services.firmware_release(firmware=firmware, groups=[europe], actor=personas.admin)

    results = run_together(release(v4), release(v5))

    assert not [r for r in results if isinstance(r, BaseException)], results
    europe.refresh_from_db()
    # The later of the two serialized releases wins, and its audit event is the newest.
    events = list(AuditEvent.objects.filter(action__startswith="firmware.release").order_by("created_at", "id"))
    assert len(events) == 2
    assert europe.released_firmware.version == int(events[-1].object_repr.split()[0].lstrip("v"))
    assert Group.objects.filter(product=product, released_firmware__isnull=False).count() == 1


def test_a_database_error_in_the_middle_of_a_release_changes_nothing(personas):
    from firmware import services as firmware_services
    from firmware.models import Firmware
    from tests.firmware.helpers import proven_firmware

    product = personas.product
    v5 = proven_firmware(product, 5)
    first, second = GroupFactory(product=product, name="alpha"), GroupFactory(product=product, name="zulu")
    # The release updates groups one statement at a time or together; fail on the second group.
    with connection.cursor() as cursor:
        cursor.execute(f"""
            CREATE FUNCTION refuse_zulu() RETURNS trigger AS $$
            BEGIN IF NEW.id = {second.pk} THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$
            LANGUAGE plpgsql;
            CREATE TRIGGER refuse_zulu_release BEFORE UPDATE ON groups_group
            FOR EACH ROW EXECUTE FUNCTION refuse_zulu();
        """)
    try:
        with pytest.raises(Exception, match="injected failure"):
            firmware_services.firmware_release(
                firmware=v5, groups=[first, second], product_default=True, actor=personas.admin
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_zulu_release ON groups_group; DROP FUNCTION refuse_zulu();")

    first.refresh_from_db()
    product.refresh_from_db()
    assert first.released_firmware is None
    assert product.default_firmware is None
    assert not Firmware.objects.get(pk=v5.pk).ever_released
    assert not AuditEvent.objects.filter(action__startswith="firmware.release").exists()


def test_a_batch_edit_does_not_wait_for_a_slow_release_of_other_groups(personas):
    """The release lock is the product row; batch edits and handshakes only point at it (their
    audit events and updates), so they must neither queue behind a release nor deadlock with it."""
    import time

    from firmware import services as firmware_services
    from tests.firmware.helpers import proven_firmware

    product = personas.product
    v5 = proven_firmware(product, 5)
    europe, beta = GroupFactory(product=product, name="europe"), GroupFactory(product=product, name="beta")
    devices = DeviceFactory.create_batch(3, product=product)
    with connection.cursor() as cursor:  # the release's group update takes two seconds
        cursor.execute(f"""
            CREATE FUNCTION slow_release() RETURNS trigger AS $$
            BEGIN IF NEW.id = {europe.pk} THEN PERFORM pg_sleep(2); END IF; RETURN NEW; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER slow_release BEFORE UPDATE ON groups_group FOR EACH ROW EXECUTE FUNCTION slow_release();
        """)
    finished = {}

    def release():
        firmware_services.firmware_release(firmware=v5, groups=[europe], actor=personas.admin)
        finished["release"] = time.monotonic()

    def batch_edit():
        time.sleep(0.5)  # once the release holds its lock
        services.devices_edit_groups(product=product, devices=Device.objects.filter(pk__in=[d.pk for d in devices]),
                                  add=[beta], actor=personas.developer)
        finished["edit"] = time.monotonic()

    try:
        results = run_together(release, batch_edit)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER slow_release ON groups_group; DROP FUNCTION slow_release();")

    assert results == [None, None]
    assert finished["edit"] < finished["release"] - 0.5
    assert GroupMembership.objects.filter(group=beta).count() == 3
    assert Group.objects.get(pk=europe.pk).released_firmware_id == v5.pk
