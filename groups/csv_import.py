"""CSV import of group memberships, with a dry run.

A file names a device (device ID or serial number) in its first column and group names in the
others (several per cell may be separated by `;`). "add" adds each device to its groups; "replace"
makes them exactly its groups (a member restricted to groups replaces only theirs).

The rows are parsed and checked in Python (line numbers, names), then copied into temporary
tables (COPY on PostgreSQL) and everything else is a statement over them: which devices and
groups exist, which memberships would be added and removed, the firmware impact, the writes.
"""

import csv
import io
import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from console.models import AuditEvent
from devices.models import normalize_device_id
from firmware import targeting
from groups import services
from groups.models import GROUP_NAME_HINT, GROUP_NAME_RE, Group

MODES = {"add": "Add the devices to these groups", "replace": "Make each device's groups exactly these"}
MAX_BYTES = 16 * 1024 * 1024
MAX_ROWS = 200_000
# Problems and unknown devices listed in full up to here; the counts are always exact.
LISTED = 10_000
HEADER_NAMES = {"device", "device_id", "device id", "id", "serial", "serial_number", "serial number", "deviceid"}
SEPARATORS = re.compile(r"[;|\s]+")


@dataclass
class ImportPlan:
    """What importing the file would do now (the dry run), or did (after the import)."""

    mode: str
    rows: int = 0
    problems: list = field(default_factory=list)  # (line, message), bad rows
    problem_count: int = 0
    devices_found: int = 0
    not_found: list = field(default_factory=list)  # (line, value)
    not_found_count: int = 0
    groups_to_create: list = field(default_factory=list)
    by_group: list = field(default_factory=list)  # (group name, memberships added, removed)
    added: int = 0
    removed: int = 0
    impact: targeting.Impact = field(default_factory=targeting.Impact)
    applied: bool = False
    changed_devices: int = 0

    @property
    def blocked(self) -> bool:
        """Whether rows would be skipped (bad rows or unknown devices)."""
        return bool(self.problem_count or self.not_found_count)

    def as_json(self) -> dict:
        return {
            "mode": self.mode,
            "rows": self.rows,
            "problems": [{"line": line, "message": message} for line, message in self.problems],
            "problem_count": self.problem_count,
            "devices_found": self.devices_found,
            "not_found": [{"line": line, "device": value} for line, value in self.not_found],
            "not_found_count": self.not_found_count,
            "groups_to_create": self.groups_to_create,
            "by_group": [{"group": name, "added": added, "removed": removed} for name, added, removed in self.by_group],
            "memberships_added": self.added,
            "memberships_removed": self.removed,
            "firmware_update": self.impact.as_json(),
            "applied": self.applied,
            "updated": self.changed_devices,
        }


@dataclass
class _Parsed:
    rows: list  # (line, device key, group name or None)
    problems: list
    data_rows: int


def read_upload(upload) -> str:
    """The text of an uploaded CSV file, or a ValidationError saying what to fix."""
    if upload is None:
        raise ValidationError({"file": ["Choose a CSV file to import."]})
    if upload.size > MAX_BYTES:
        raise ValidationError({"file": [f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it."]})
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": ["The file must be UTF-8 text (save the spreadsheet as “CSV UTF-8”)."]}) from None


def _parse(text: str, *, visible_names: set | None) -> _Parsed:
    """Rows as (line, device key, group name), one per group; a row without groups names its
    device with None. `visible_names` (None: any) are the only groups a restricted member may use.
    A device with any bad row is left out altogether, so "replace" never applies half of it."""
    rows, problems, bad_devices, data_rows = [], [], set(), 0
    reader = csv.reader(io.StringIO(text))
    first = True
    try:
        for cells in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in cells]
            if not any(cells):
                continue
            if first and cells[0].lower() in HEADER_NAMES:
                first = False
                continue
            first = False
            data_rows += 1
            if data_rows > MAX_ROWS:
                raise ValidationError({"file": [f"Import at most {MAX_ROWS:,} rows per file; split it."]})
            raw = cells[0]
            key = normalize_device_id(raw) or raw
            if not raw:
                problems.append((line, "The first column is empty: put a device ID or serial number there."))
                continue
            if len(raw) > 64:
                problems.append((line, f"“{raw[:30]}…” is neither a device ID nor a serial number (too long)."))
                continue
            names = [name for cell in cells[1:] for name in SEPARATORS.split(cell) if name]
            wrong = [name for name in names if not GROUP_NAME_RE.match(name)]
            unknown = [name for name in names if visible_names is not None and name not in visible_names]
            if wrong:
                problems.append((line, f"“{wrong[0][:70]}” is not a valid group name. {GROUP_NAME_HINT}"))
                bad_devices.add(key)
            elif unknown:
                problems.append((line, f"Unknown group: {', '.join(unknown)} (you can use only your groups)."))
                bad_devices.add(key)
            else:
                rows.extend((line, key, name) for name in dict.fromkeys(names)) if names else rows.append((line, key, None))
    except csv.Error as error:
        raise ValidationError({"file": [f"Line {reader.line_num}: the file is not valid CSV ({error})."]}) from None
    if bad_devices:
        rows = [row for row in rows if row[1] not in bad_devices]
    return _Parsed(rows=rows, problems=problems, data_rows=data_rows)


class _Tables:
    """The temporary tables of one import, on this connection, for the current transaction."""

    NAMES = ("csv_import_row", "csv_import_device", "csv_import_group", "csv_import_want")

    def __init__(self, cursor, membership):
        self.cursor, self.membership = cursor, membership
        self.product_id = membership.product_id
        restricted = membership.restricted_group_ids()
        self.scope = "" if restricted is None else (
            f" AND group_id IN ({', '.join(['%s'] * len(restricted))})" if restricted else " AND 1 = 0"
        )
        self.scope_params = list(restricted or [])

    def execute(self, sql, params=()):
        self.cursor.execute(sql, list(params))

    def drop(self):
        for name in self.NAMES:
            self.execute(f"DROP TABLE IF EXISTS {name}")

    def load(self, rows) -> None:
        self.drop()
        self.execute("CREATE TEMP TABLE csv_import_row (line integer, device varchar(64), group_name varchar(64))")
        if connection.vendor == "postgresql":
            with self.cursor.cursor.copy("COPY csv_import_row (line, device, group_name) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif rows:
            self.cursor.executemany("INSERT INTO csv_import_row VALUES (%s, %s, %s)", rows)
        if connection.vendor == "postgresql":
            self.execute("ANALYZE csv_import_row")
        # A device is named by its device ID, or else by a serial number only one device has. IDs
        # are matched by a join; serial numbers only for the few values no ID matched.
        visible = "d.product_id = %s"
        visible_params = [self.product_id]
        if self.scope_params or self.scope:
            visible += (" AND EXISTS (SELECT 1 FROM groups_groupmembership vm WHERE vm.device_id = d.id"
                        f"{self.scope.replace('group_id', 'vm.group_id')})")
            visible_params += self.scope_params
        self.execute(
            "CREATE TEMP TABLE csv_import_device AS SELECT v.device, v.line, d.id AS device_pk,"
            " CAST(0 AS bigint) AS serials"
            " FROM (SELECT r.device, MIN(r.line) AS line FROM csv_import_row r GROUP BY r.device) AS v"
            f" LEFT JOIN devices_device d ON d.device_id = v.device AND {visible}",
            visible_params,
        )
        self.execute(
            "UPDATE csv_import_device SET"
            f" serials = (SELECT COUNT(*) FROM devices_device d WHERE d.serial_number = csv_import_device.device AND {visible}),"
            f" device_pk = (SELECT MIN(d.id) FROM devices_device d WHERE d.serial_number = csv_import_device.device AND {visible})"
            " WHERE device_pk IS NULL",
            [*visible_params, *visible_params],
        )
        self.execute("UPDATE csv_import_device SET device_pk = NULL WHERE serials > 1")
        self.execute(
            "CREATE TEMP TABLE csv_import_group AS SELECT r.group_name AS name,"
            " (SELECT g.id FROM groups_group g WHERE g.product_id = %s AND g.name = r.group_name) AS group_id"
            " FROM csv_import_row r WHERE r.group_name IS NOT NULL GROUP BY r.group_name",
            [self.product_id],
        )
        self.want()

    def want(self) -> None:
        """The memberships the file asks for, in groups that exist."""
        self.execute("DROP TABLE IF EXISTS csv_import_want")
        self.execute(
            "CREATE TEMP TABLE csv_import_want AS SELECT DISTINCT d.device_pk, g.group_id"
            " FROM csv_import_row r JOIN csv_import_device d ON d.device = r.device"
            " JOIN csv_import_group g ON g.name = r.group_name"
            " WHERE d.device_pk IS NOT NULL AND g.group_id IS NOT NULL"
        )
        if connection.vendor == "postgresql":
            self.execute("ANALYZE csv_import_device")
            self.execute("ANALYZE csv_import_want")

    def changes(self, mode: str) -> tuple[str, list]:
        """Rows (device_id, group_id, joined) the import would write."""
        adds = (
            "SELECT w.device_pk AS device_id, w.group_id, TRUE AS joined FROM csv_import_want w WHERE NOT EXISTS"
            " (SELECT 1 FROM groups_groupmembership m WHERE m.group_id = w.group_id AND m.device_id = w.device_pk)"
        )
        if mode != "replace":
            return adds, []
        removes = (
            "SELECT m.device_id, m.group_id, FALSE AS joined FROM groups_groupmembership m"
            " WHERE m.device_id IN (SELECT device_pk FROM csv_import_device WHERE device_pk IS NOT NULL)"
            f"{self.scope.replace('group_id', 'm.group_id')} AND NOT EXISTS"
            " (SELECT 1 FROM csv_import_want w WHERE w.group_id = m.group_id AND w.device_pk = m.device_id)"
        )
        return f"{adds} UNION ALL {removes}", list(self.scope_params)

    def fetch(self, sql, params=()):
        self.execute(sql, params)
        return self.cursor.fetchall()


def _plan(tables: _Tables, parsed: _Parsed, mode: str, *, impact: bool) -> ImportPlan:
    plan = ImportPlan(mode=mode, rows=parsed.data_rows)
    problems = list(parsed.problems)
    for device, line, serials in tables.fetch(
        "SELECT device, line, serials FROM csv_import_device WHERE device_pk IS NULL ORDER BY line"
    ):
        if serials > 1:
            problems.append((line, f"Serial number {device} belongs to {serials} devices: use the device ID."))
        else:
            plan.not_found.append((line, device))
    problems.sort()
    plan.problem_count, plan.problems = len(problems), problems[:LISTED]
    plan.not_found_count, plan.not_found = len(plan.not_found), plan.not_found[:LISTED]
    plan.devices_found = tables.fetch("SELECT COUNT(DISTINCT device_pk) FROM csv_import_device")[0][0]
    plan.groups_to_create = [row[0] for row in tables.fetch(
        "SELECT name FROM csv_import_group WHERE group_id IS NULL ORDER BY name"
    )]
    changes, params = tables.changes(mode)
    rows = tables.fetch(
        "SELECT g.name, SUM(CASE WHEN c.joined THEN 1 ELSE 0 END), SUM(CASE WHEN c.joined THEN 0 ELSE 1 END)"
        f" FROM ({changes}) AS c JOIN groups_group g ON g.id = c.group_id GROUP BY g.name",
        params,
    )
    if plan.groups_to_create:
        rows += tables.fetch(
            "SELECT g.name, COUNT(DISTINCT d.device_pk), 0 FROM csv_import_row r"
            " JOIN csv_import_device d ON d.device = r.device JOIN csv_import_group g ON g.name = r.group_name"
            " WHERE g.group_id IS NULL AND d.device_pk IS NOT NULL GROUP BY g.name"
        )
    plan.by_group = sorted((name, int(added), int(removed)) for name, added, removed in rows)
    plan.added = sum(added for _, added, _ in plan.by_group)
    plan.removed = sum(removed for _, _, removed in plan.by_group)
    if impact:
        plan.impact = services.memberships_change_impact(product_id=tables.product_id, changes_sql=changes,
                                                         params=params)
    return plan


def _checked_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValidationError({"mode": ["Choose “add” (add to these groups) or “replace” (exactly these groups)."]})
    return mode


def _visible_names(membership) -> set | None:
    if membership.restricted_group_ids() is None:
        return None
    return set(Group.objects.visible_to(membership).values_list("name", flat=True))


@contextmanager
def _loaded(membership, text: str, mode: str):
    """The checked file in its temporary tables, for the transaction the caller is in."""
    mode = _checked_mode(mode)
    parsed = _parse(text, visible_names=_visible_names(membership))
    with connection.cursor() as cursor:
        tables = _Tables(cursor, membership)
        tables.load(parsed.rows)
        try:
            yield tables, parsed, mode
        finally:
            tables.drop()


@transaction.atomic
def memberships_import_plan(*, membership, text: str, mode: str) -> ImportPlan:
    """The dry run: what importing `text` would do, without changing anything."""
    with _loaded(membership, text, mode) as (tables, parsed, mode):
        return _plan(tables, parsed, mode, impact=True)


@transaction.atomic
def memberships_import(*, membership, text: str, mode: str, skip_invalid: bool = False, file_name: str = "",
                       actor) -> ImportPlan:
    """Import the file in one transaction, as one audited (and undoable) edit. Nothing is
    applied while a row is bad or names an unknown device, unless `skip_invalid`."""
    with _loaded(membership, text, mode) as (tables, parsed, mode):
        plan = _plan(tables, parsed, mode, impact=False)
        if plan.blocked and not skip_invalid:
            lines = [f"Line {line}: {message}" for line, message in plan.problems[:20]]
            lines += [f"Line {line}: no device {value} in this product." for line, value in plan.not_found[:20]]
            raise ValidationError({"file": [
                f"Nothing was imported: {plan.problem_count + plan.not_found_count:,} row(s) cannot be"
                " applied. Correct them, or choose to skip them.", *lines]})
        if plan.groups_to_create:
            services.groups_resolve(membership=membership, names=plan.groups_to_create, actor=actor,
                                    create_missing=True, field="file")
            tables.execute(
                "UPDATE csv_import_group SET group_id = (SELECT g.id FROM groups_group g"
                " WHERE g.product_id = %s AND g.name = csv_import_group.name) WHERE group_id IS NULL",
                [tables.product_id],
            )
            tables.want()
        _write(tables, plan, mode, file_name=file_name, actor=actor)
    return plan


def _write(tables: _Tables, plan: ImportPlan, mode: str, *, file_name: str, actor) -> None:
    services.lock_groups(row[0] for row in tables.fetch("SELECT DISTINCT group_id FROM csv_import_want"))
    event = AuditEvent.record(
        product=tables.membership.product, actor=actor, action="device.groups_import", mode=mode,
        file=file_name[:100], rows=plan.rows,
        added=[name for name, added, _ in plan.by_group if added],
        removed=[name for name, _, removed in plan.by_group if removed],
    )
    services.write_memberships(
        tables.cursor,
        "INSERT INTO groups_groupmembership (group_id, device_id, added_by_id, added_at)"
        " SELECT w.group_id, w.device_pk, %s, %s FROM csv_import_want w WHERE TRUE"
        " ORDER BY w.group_id, w.device_pk ON CONFLICT (group_id, device_id) DO NOTHING",
        [getattr(actor, "pk", None), timezone.now()],
        event,
        joined=True,
    )
    if mode == "replace":
        services.write_memberships(
            tables.cursor,
            "DELETE FROM groups_groupmembership WHERE device_id IN"
            " (SELECT device_pk FROM csv_import_device WHERE device_pk IS NOT NULL)"
            f"{tables.scope} AND NOT EXISTS (SELECT 1 FROM csv_import_want w"
            " WHERE w.group_id = groups_groupmembership.group_id AND w.device_pk = groups_groupmembership.device_id)",
            tables.scope_params,
            event,
            joined=False,
        )
    plan.applied = True
    plan.changed_devices = event.count_devices()
    if not plan.changed_devices:
        event.delete()
