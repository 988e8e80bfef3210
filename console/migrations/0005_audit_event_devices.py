"""Audit events name their devices in a table of their own instead of a JSON array.

A batch edit of 100,000 devices wrote a 2.8 MB array into one row, and a device's history had
to open every event's array: PostgreSQL, seeing a small table, preferred reading them all to the
GIN index. One narrow row per (event, device) and a B-tree on the device make a history an
index lookup however long the log grows.
"""

import django.db.models.deletion
from django.db import migrations, models

COPY = {
    "postgresql": [
        "INSERT INTO console_auditeventdevice (event_id, device_id)"
        " SELECT DISTINCT e.id, ids.device_id FROM console_auditevent e"
        " CROSS JOIN LATERAL jsonb_array_elements_text(e.device_ids) AS ids(device_id)",
        "UPDATE console_auditevent SET device_count = jsonb_array_length(device_ids)",
    ],
    "sqlite": [
        "INSERT INTO console_auditeventdevice (event_id, device_id)"
        " SELECT DISTINCT e.id, ids.value FROM console_auditevent e, json_each(e.device_ids) AS ids",
        "UPDATE console_auditevent SET device_count = json_array_length(device_ids)",
    ],
}
COPY_BACK = {
    "postgresql": [
        "UPDATE console_auditevent e SET device_ids = COALESCE((SELECT jsonb_agg(l.device_id ORDER BY l.device_id)"
        " FROM console_auditeventdevice l WHERE l.event_id = e.id), '[]'::jsonb)",
    ],
    "sqlite": [
        "UPDATE console_auditevent SET device_ids = COALESCE((SELECT json_group_array(device_id) FROM"
        " (SELECT device_id FROM console_auditeventdevice l WHERE l.event_id = console_auditevent.id"
        " ORDER BY device_id)), '[]')",
    ],
}


def copy(apps, schema_editor):
    for statement in COPY[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


def copy_back(apps, schema_editor):
    for statement in COPY_BACK[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("console", "0004_membership_is_restricted")]

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
                        "event", "device_id", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("device_id", models.CharField(max_length=24)),
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
            ],
            options={
                "indexes": [models.Index(fields=["device_id", "event"], name="audit_device_history")],
            },
        ),
        migrations.RunPython(copy, copy_back),
        # Dropping the column drops its GIN index (migration 0003) with it.
        migrations.RemoveField(model_name="auditevent", name="device_ids"),
    ]
