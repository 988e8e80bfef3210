"""Audit events name their devices in a table of their own instead of a JSON array.

A batch edit of 100,000 devices wrote a 2.8 MB array into one row, and a device's history had
to open every event's array: PostgreSQL, seeing a small table, preferred reading them all to the
GIN index. One row of two keys per (event, device) and an index on the device make a history an
index lookup however long the log grows. On PostgreSQL that index is a GIN index (btree_gin):
its pending list takes a batch's 100,000 entries as one append where a B-tree would update as
many scattered pages.
"""

import django.db.models.deletion
from django.db import migrations, models

COPY = {
    "postgresql": [
        "INSERT INTO console_auditeventdevice (event_id, device_id)"
        " SELECT DISTINCT e.id, d.id FROM console_auditevent e"
        " CROSS JOIN LATERAL jsonb_array_elements_text(e.device_ids) AS ids(device_id)"
        " JOIN devices_device d ON d.device_id = ids.device_id",
        "UPDATE console_auditevent SET device_count = jsonb_array_length(device_ids)",
    ],
    "sqlite": [
        "INSERT INTO console_auditeventdevice (event_id, device_id)"
        " SELECT DISTINCT e.id, d.id FROM console_auditevent e, json_each(e.device_ids) AS ids"
        " JOIN devices_device d ON d.device_id = ids.value",
        "UPDATE console_auditevent SET device_count = json_array_length(device_ids)",
    ],
}
COPY_BACK = {
    "postgresql": [
        "UPDATE console_auditevent e SET device_ids = COALESCE((SELECT jsonb_agg(d.device_id ORDER BY d.device_id)"
        " FROM console_auditeventdevice l JOIN devices_device d ON d.id = l.device_id WHERE l.event_id = e.id),"
        " '[]'::jsonb)",
    ],
    "sqlite": [
        "UPDATE console_auditevent SET device_ids = COALESCE((SELECT json_group_array(device_id) FROM"
        " (SELECT d.device_id FROM console_auditeventdevice l JOIN devices_device d ON d.id = l.device_id"
        " WHERE l.event_id = console_auditevent.id ORDER BY d.device_id)), '[]')",
    ],
}
DEVICE_INDEX = {
    "postgresql": [
        "CREATE EXTENSION IF NOT EXISTS btree_gin",
        "CREATE INDEX audit_device_history ON console_auditeventdevice USING gin (device_id)",
    ],
    "sqlite": ["CREATE INDEX audit_device_history ON console_auditeventdevice (device_id)"],
}


def copy(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in [*COPY[vendor], *DEVICE_INDEX[vendor]]:
        schema_editor.execute(statement)


def copy_back(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS audit_device_history")
    for statement in COPY_BACK[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0004_membership_is_restricted"),
        ("devices", "0004_search_trigram_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="device_count",
            field=models.PositiveIntegerField(default=0, verbose_name="devices"),
        ),
        migrations.CreateModel(
            name="AuditEventDevice",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "event", "device", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "event",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="device_links",
                        to="console.auditevent",
                    ),
                ),
                (
                    "device",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="devices.device",
                    ),
                ),
            ],
        ),
        migrations.RunPython(copy, copy_back),
        # Dropping the column drops its GIN index (migration 0003) with it.
        migrations.RemoveField(model_name="auditevent", name="device_ids"),
    ]
