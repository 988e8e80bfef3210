"""Product.device_count, kept exact by triggers on devices.

The API's `meta.total` for an unfiltered list counted a million devices on every call; the
counter costs one UPDATE of the product per statement that adds or removes devices (imports are
one statement). Devices never move between products, and a trigger says so, so updates (the
handshakes) leave the counter alone. Statement-level on PostgreSQL, row-level on SQLite.
"""

from django.db import migrations, models

POSTGRESQL = [
    """
    CREATE FUNCTION devices_product_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        UPDATE console_product p SET device_count = p.device_count - o.n
        FROM (SELECT product_id, count(*) AS n FROM old_rows GROUP BY product_id) o WHERE p.id = o.product_id;
      ELSE
        UPDATE console_product p SET device_count = p.device_count + i.n
        FROM (SELECT product_id, count(*) AS n FROM new_rows GROUP BY product_id) i WHERE p.id = i.product_id;
      END IF;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER device_count_insert AFTER INSERT ON devices_device
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION devices_product_count()
    """,
    """
    CREATE TRIGGER device_count_delete AFTER DELETE ON devices_device
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION devices_product_count()
    """,
    """
    CREATE FUNCTION devices_stay_in_product() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.product_id <> OLD.product_id THEN
        RAISE EXCEPTION 'A device cannot move to another product.' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER device_stays_in_product BEFORE UPDATE OF product_id ON devices_device
    FOR EACH ROW EXECUTE FUNCTION devices_stay_in_product()
    """,
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS device_count_insert ON devices_device",
    "DROP TRIGGER IF EXISTS device_count_delete ON devices_device",
    "DROP TRIGGER IF EXISTS device_stays_in_product ON devices_device",
    "DROP FUNCTION IF EXISTS devices_product_count()",
    "DROP FUNCTION IF EXISTS devices_stay_in_product()",
]
SQLITE = [
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
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS device_count_insert",
    "DROP TRIGGER IF EXISTS device_count_delete",
    "DROP TRIGGER IF EXISTS device_stays_in_product",
]
BACKFILL = (
    "UPDATE console_product SET device_count ="
    " (SELECT count(*) FROM devices_device d WHERE d.product_id = console_product.id)"
)


def create_triggers(apps, schema_editor):
    statements = POSTGRESQL if schema_editor.connection.vendor == "postgresql" else SQLITE
    for statement in [*statements, BACKFILL]:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    statements = POSTGRESQL_REVERSE if schema_editor.connection.vendor == "postgresql" else SQLITE_REVERSE
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("console", "0005_audit_event_devices")]

    operations = [
        migrations.AddField(
            model_name="product",
            name="device_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
