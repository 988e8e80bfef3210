"""Export of a filtered devices list as CSV, streamed: rows are read from the database in chunks
(a server-side cursor on PostgreSQL) and written out as they come, so a million devices never
sit in memory. The console and the API both answer `devices_csv_response`."""

import csv
from collections import defaultdict

from django.http import StreamingHttpResponse

from firmware import targeting
from groups.models import Group, GroupMembership

HEADER = ["ID", "name", "serial", "groups", "running", "target", "why"]
CHUNK = 2000
# Spreadsheets run a cell that starts with one of these as a formula; names are typed by people.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value):
        return value


def _text(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _lines(rows, membership):
    """CSV lines of a chunk of rows, with their groups (the ones the member may see) in one query."""
    names = defaultdict(list)
    memberships = (
        GroupMembership.objects.filter(device_id__in=[row[0] for row in rows], group__in=Group.objects.visible_to(membership))
        .order_by("group__name")
        .values_list("device_id", "group__name")
    )
    for device_pk, name in memberships:
        names[device_pk].append(name)
    writer = csv.writer(_Echo())
    for pk, device_id, name, serial, running, target, rule, group in rows:
        yield writer.writerow([
            device_id, _text(name), _text(serial), " ".join(names[pk]), "" if running is None else running,
            "" if target is None else target, targeting.explain(rule, group),
        ])


def devices_csv(devices, membership):
    """The lines of the CSV of `devices` (a filtered queryset), header first."""
    yield csv.writer(_Echo()).writerow(HEADER)
    rows = devices.with_target().values_list(
        "pk", "device_id", "name", "serial_number", "firmware_version", "target_version", "target_rule", "target_group"
    ).iterator(chunk_size=CHUNK)
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield from _lines(chunk, membership)
            chunk = []
    if chunk:
        yield from _lines(chunk, membership)


def devices_csv_response(devices, membership) -> StreamingHttpResponse:
    response = StreamingHttpResponse(devices_csv(devices, membership), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{membership.product.slug}-devices.csv"'
    return response
