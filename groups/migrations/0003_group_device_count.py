"""Group.device_count, kept exact by triggers on memberships.

Counting three million memberships on every view of the groups page took seconds; a counter
kept by the database costs one UPDATE of the touched groups per statement. PostgreSQL uses
statement-level triggers with transition tables (one UPDATE per batch edit, whatever its size);
SQLite, the demo database, has only row-level triggers, which is fine at its scale. (SQLite
rebuilds a table to alter it, dropping its triggers: a later migration that alters
groups_groupmembership must create them again; tests/groups/test_device_count.py notices.)
"""

from django.db import migrations, models

POSTGRESQL = [
    """
    CREATE FUNCTION groups_membership_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE groups_group g SET device_count = g.device_count - o.n
        FROM (SELECT group_id, count(*) AS n FROM old_rows GROUP BY group_id) o WHERE g.id = o.group_id;
      END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE groups_group g SET device_count = g.device_count + i.n
        FROM (SELECT group_id, count(*) AS n FROM new_rows GROUP BY group_id) i WHERE g.id = i.group_id;
      END IF;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER membership_count_insert AFTER INSERT ON groups_groupmembership
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION groups_membership_count()
    """,
    """
    CREATE TRIGGER membership_count_delete AFTER DELETE ON groups_groupmembership
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION groups_membership_count()
    """,
    """
    CREATE TRIGGER membership_count_update AFTER UPDATE ON groups_groupmembership
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION groups_membership_count()
    """,
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS membership_count_insert ON groups_groupmembership",
    "DROP TRIGGER IF EXISTS membership_count_delete ON groups_groupmembership",
    "DROP TRIGGER IF EXISTS membership_count_update ON groups_groupmembership",
    "DROP FUNCTION IF EXISTS groups_membership_count()",
]
SQLITE = [
    """
    CREATE TRIGGER membership_count_insert AFTER INSERT ON groups_groupmembership BEGIN
      UPDATE groups_group SET device_count = device_count + 1 WHERE id = NEW.group_id;
    END
    """,
    """
    CREATE TRIGGER membership_count_delete AFTER DELETE ON groups_groupmembership BEGIN
      UPDATE groups_group SET device_count = device_count - 1 WHERE id = OLD.group_id;
    END
    """,
    """
    CREATE TRIGGER membership_count_update AFTER UPDATE OF group_id ON groups_groupmembership BEGIN
      UPDATE groups_group SET device_count = device_count - 1 WHERE id = OLD.group_id;
      UPDATE groups_group SET device_count = device_count + 1 WHERE id = NEW.group_id;
    END
    """,
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS membership_count_insert",
    "DROP TRIGGER IF EXISTS membership_count_delete",
    "DROP TRIGGER IF EXISTS membership_count_update",
]
BACKFILL = (
    "UPDATE groups_group SET device_count ="
    " (SELECT count(*) FROM groups_groupmembership m WHERE m.group_id = groups_group.id)"
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
    dependencies = [("groups", "0002_membership_fewer_indexes")]

    operations = [
        migrations.AddField(
            model_name="group",
            name="device_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
