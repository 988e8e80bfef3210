"""A trigram index on the device ID, for the ID search on PostgreSQL.

Users paste part of an ID, from its start or its middle: `LIKE '%fragment%'`, which a B-tree
cannot serve. IDs are stored lower case (a check constraint), so the search lower-cases the
fragment and compares the column itself, with no UPPER() around it, and this index serves both
a prefix and a substring of three characters or more.
"""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute("CREATE INDEX IF NOT EXISTS device_id_trgm ON devices_device USING gin (device_id gin_trgm_ops)")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS device_id_trgm")


class Migration(migrations.Migration):
    dependencies = [("devices", "0005_device_identifiers_flash_quarantine")]
    operations = [migrations.RunPython(create_index, drop_index)]
