"""Put back, on SQLite, the triggers of console migration 0006 (product device counts, devices
stay in their product).

SQLite cannot alter a column in place, so Django rebuilds the devices table for migrations 0005
and 0007, and a rebuilt table loses its triggers. PostgreSQL alters the table and keeps them;
there this migration does nothing.
"""

from django.db import migrations

SQLITE = [
    "DROP TRIGGER IF EXISTS device_count_insert",
    "DROP TRIGGER IF EXISTS device_count_delete",
    "DROP TRIGGER IF EXISTS device_stays_in_product",
    """
    CREATE TRIGGER device_count_insert AFTER INSERT ON devices_device BEGIN
      UPDATE console_product SET device_count = device_count + 1 WHERE id = NEW.product_id;
    END
    """,
    """
    CREATE TRIGGER device_count_delete AFTER DELETE ON devices_device BEGIN
      UPDATE console_product SET device_count = device_count - 1 WHERE id = OLD.product_id;
    END
    """,
    """
    CREATE TRIGGER device_stays_in_product BEFORE UPDATE OF product_id ON devices_device
    WHEN NEW.product_id <> OLD.product_id BEGIN
      SELECT RAISE(ABORT, 'A device cannot move to another product.');
    END
    """,
    "UPDATE console_product SET device_count ="
    " (SELECT count(*) FROM devices_device d WHERE d.product_id = console_product.id)",
]


def recreate_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in SQLITE:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("devices", "0007_device_key"), ("console", "0006_product_device_count")]
    operations = [migrations.RunPython(recreate_triggers, migrations.RunPython.noop)]
