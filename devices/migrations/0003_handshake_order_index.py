from django.db import migrations


def create_index(apps, schema_editor):
    # The devices list's default order; SQLite cannot express NULLS LAST in an index.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS device_product_handshake ON devices_device "
            "(product_id, last_handshake_at DESC NULLS LAST, id DESC)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS device_product_handshake")


class Migration(migrations.Migration):
    dependencies = [("devices", "0002_initial")]
    operations = [migrations.RunPython(create_index, drop_index)]
