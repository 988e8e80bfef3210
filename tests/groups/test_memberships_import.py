import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from console.models import AuditEvent, Membership
from groups import csv_import, undo
from groups.models import Group, GroupMembership
from tests.conftest import HTMX, id_lookups
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db
URL = "/products/acme/groups/import/"


def groups_of(device):
    return sorted(GroupMembership.objects.filter(device=device).values_list("group__name", flat=True))


def member(user, product):
    return Membership.objects.select_related("product", "user").get(user=user, product=product)


@pytest.fixture
def fleet(personas):
    product = personas.product
    devices = [DeviceFactory(product=product, serial_number=f"SN-{i}", firmware_version=1) for i in range(4)]
    v5 = FirmwareFactory(product=product, version=5)
    europe = GroupFactory(product=product, name="europe", devices=devices[:2])
    beta = GroupFactory(product=product, name="beta", devices=[devices[0]], released_firmware=v5)
    return devices, europe, beta


def upload(text, name="fleet.csv"):
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_the_dry_run_counts_devices_groups_memberships_and_impact_without_changing_anything(personas, fleet):
    devices, europe, beta = fleet
    text = (
        "device,groups\n"
        f"{devices[1].device_id.upper()},beta;asia\n"
        f"SN-2,beta\n"
        f"{'f' * 24},beta\n"
    )

    plan = csv_import.memberships_import_plan(membership=member(personas.developer, personas.product),
                                              text=text, mode="add")

    assert (plan.rows, plan.devices_found) == (3, 2)
    assert plan.not_found == [(4, "f" * 24)] and plan.problems == []
    assert plan.groups_to_create == ["asia"]
    assert plan.by_group == [("asia", 1, 0), ("beta", 2, 0)]
    assert (plan.added, plan.removed) == (3, 0)
    assert (plan.impact.total, plan.impact.by_target_version) == (2, {5: 2})
    assert groups_of(devices[1]) == ["europe"] and not Group.objects.filter(name="asia").exists()


def test_replace_makes_each_devices_groups_exactly_those_of_the_file(personas, fleet):
    devices, europe, beta = fleet
    text = f"{devices[0].device_id},europe\nSN-1,\nSN-3,beta\nSN-3,asia\n"

    plan = csv_import.memberships_import(membership=member(personas.developer, personas.product), text=text,
                                         mode="replace", file_name="fleet.csv", actor=personas.developer)

    assert [groups_of(device) for device in devices] == [["europe"], [], [], ["asia", "beta"]]
    assert (plan.added, plan.removed, plan.changed_devices) == (2, 2, 3)
    event = AuditEvent.objects.get(action="device.groups_import")
    assert event.details == {"mode": "replace", "file": "fleet.csv", "rows": 4, "added": ["asia", "beta"],
                             "removed": ["beta", "europe"]}
    assert event.device_count == 3


def test_an_import_can_be_undone_like_a_batch_edit(personas, fleet):
    devices, europe, beta = fleet
    membership = member(personas.developer, personas.product)
    csv_import.memberships_import(membership=membership, text="SN-2,europe\nSN-0,\n", mode="replace",
                                  actor=personas.developer)

    undo.edit_undo(membership=membership, event=AuditEvent.objects.get(action="device.groups_import"),
                   actor=personas.developer)

    assert [groups_of(device) for device in devices] == [["beta", "europe"], ["europe"], [], []]


def test_bad_rows_are_reported_by_line_and_nothing_is_applied(personas, fleet):
    devices, europe, beta = fleet
    text = f"SN-2,beta\n,beta\nSN-3,Europe\n{'a' * 24},beta\n"

    with pytest.raises(ValidationError) as refused:
        csv_import.memberships_import(membership=member(personas.developer, personas.product), text=text,
                                      mode="add", actor=personas.developer)

    messages = refused.value.message_dict["file"]
    assert messages[0].startswith("Nothing was imported: 3 row(s) cannot be applied.")
    assert "Line 2: The first column is empty: put a device ID or serial number there." in messages
    assert any(message.startswith("Line 3: “Europe” is not a valid group name.") for message in messages)
    assert f"Line 4: no device {'a' * 24} in this product." in messages
    assert groups_of(devices[2]) == [] and not AuditEvent.objects.filter(action="device.groups_import").exists()


def test_skipping_bad_rows_applies_the_others(personas, fleet):
    devices, europe, beta = fleet
    plan = csv_import.memberships_import(membership=member(personas.developer, personas.product),
                                         text="SN-2,beta\nSN-3,Europe\nnope,beta\n", mode="add", skip_invalid=True,
                                         actor=personas.developer)
    assert plan.changed_devices == 1
    assert [groups_of(device) for device in devices[2:]] == [["beta"], []]


def test_a_serial_number_shared_by_two_devices_asks_for_the_device_id(personas, fleet):
    devices, europe, beta = fleet
    DeviceFactory(product=personas.product, serial_number="SN-2")
    plan = csv_import.memberships_import_plan(membership=member(personas.developer, personas.product),
                                              text="SN-2,beta\n", mode="add")
    assert plan.problems == [(1, "Serial number SN-2 belongs to 2 devices: use the device ID.")]
    assert plan.not_found == []


def test_a_restricted_member_imports_only_into_their_groups_and_creates_none(personas, fleet):
    devices, europe, beta = fleet
    mine = DeviceFactory(product=personas.product, serial_number="MINE")
    personas.restricted_group.memberships.create(device=mine)
    membership = member(personas.restricted, personas.product)

    plan = csv_import.memberships_import_plan(
        membership=membership, text="MINE,partner-fleet;asia\nSN-0,partner-fleet\n", mode="add"
    )

    assert plan.problems == [(1, "Unknown group: asia (you can use only your groups).")]
    # A device outside their groups is not theirs to see.
    assert plan.not_found == [(2, "SN-0")] and plan.groups_to_create == []


def test_the_dry_run_and_the_import_take_a_bounded_number_of_queries(personas, fleet, django_assert_num_queries):
    devices, europe, beta = fleet
    many = DeviceFactory.create_batch(40, product=personas.product)
    text = "".join(f"{device.device_id},beta;europe\n" for device in many)
    membership = member(personas.developer, personas.product)
    membership.restricted_group_ids()
    # SQLite: no ANALYZE of the three temporary tables, and the rows go in by one executemany.
    on_sqlite = 0 if connection.vendor == "postgresql" else -2

    # Each counts the live rollout that the rule reads (none here).
    with django_assert_num_queries(29 + on_sqlite):
        csv_import.memberships_import_plan(membership=membership, text=text, mode="replace")
    with django_assert_num_queries(30 + on_sqlite + id_lookups(writes=1)):
        plan = csv_import.memberships_import(membership=membership, text=text, mode="replace", actor=personas.developer)
    assert plan.changed_devices == 40


# The console dialog ------------------------------------------------------------------------------


def test_the_dialog_dry_run_shows_the_plan_and_keeps_the_form(client_for, personas, fleet):
    devices, europe, beta = fleet
    response = client_for(personas.developer).post(
        URL, {"file": upload("SN-2,beta\nnope,beta\n"), "mode": "add", "dry_run": "1"}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<div id="import-result"')
    assert "<strong>1</strong> device found, <strong>1</strong> not found." in html
    assert "Line 2: nope" in html and 'download="devices-not-found.csv"' in html
    assert "1 device</strong> will be targeted for an OTA firmware update: 1 to v5." in html
    assert groups_of(devices[2]) == []


def test_the_dialog_import_closes_and_refreshes_the_groups(client_for, personas, fleet):
    devices, europe, beta = fleet
    response = client_for(personas.developer).post(URL, {"file": upload("SN-2,beta\n"), "mode": "add"}, **HTMX)
    assert response.status_code == 204
    assert "Imported: 1 device changed (1 memberships added, 0 removed)." in response.headers["HX-Trigger"]
    assert groups_of(devices[2]) == ["beta"]


def test_the_dialog_refuses_bad_rows_unless_skipped(client_for, personas, fleet):
    devices, europe, beta = fleet
    client = client_for(personas.developer)
    refused = client.post(URL, {"file": upload("SN-2,beta\nnope,beta\n"), "mode": "add"}, **HTMX).content.decode()
    assert "Nothing was imported: 1 row(s) cannot be applied." in refused and groups_of(devices[2]) == []
    client.post(URL, {"file": upload("SN-2,beta\nnope,beta\n"), "mode": "add", "skip_invalid": "on"}, **HTMX)
    assert groups_of(devices[2]) == ["beta"]


def test_the_dialog_asks_for_a_utf8_file(client_for, personas, fleet):
    html = client_for(personas.developer).post(
        URL, {"file": SimpleUploadedFile("x.csv", "SN-2,b\xe9ta\n".encode("latin-1")), "mode": "add"}
    ).content.decode()
    assert "The file must be UTF-8 text" in html


@pytest.mark.parametrize("persona,status", [("viewer", 403), ("outsider", 404)])
def test_only_members_who_can_write_may_import(client_for, personas, fleet, persona, status):
    devices, europe, beta = fleet
    client = client_for(getattr(personas, persona))
    assert client.get(URL).status_code == status
    assert client.post(URL, {"file": upload("SN-2,beta\n"), "mode": "add"}).status_code == status
    assert groups_of(devices[2]) == []
