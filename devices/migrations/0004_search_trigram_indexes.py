"""Trigram indexes for the devices search on PostgreSQL.

The search (`q`) matches names and serial numbers anywhere (`icontains`, which Django writes
as `UPPER(column::text) LIKE UPPER('%…%')`), so a B-tree cannot serve it and every search read
the whole table. GIN trigram indexes on the same upper-cased expressions can.
"""

from django.db import migrations

INDEXES = {
    "device_name_trgm": "name",
    "device_serial_trgm": "serial_number",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON devices_device USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("devices", "0003_handshake_order_index")]
    operations = [migrations.RunPython(create_indexes, drop_indexes)]
