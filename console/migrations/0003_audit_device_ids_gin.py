from django.db import migrations


def create_index(apps, schema_editor):
    # Device histories look events up by containment in device_ids; only PostgreSQL can index that.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS audit_device_ids_gin ON console_auditevent "
            "USING gin (device_ids jsonb_path_ops)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS audit_device_ids_gin")


class Migration(migrations.Migration):
    dependencies = [("console", "0002_initial")]
    operations = [migrations.RunPython(create_index, drop_index)]
