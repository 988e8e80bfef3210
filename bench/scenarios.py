"""The scenarios of DESIGN.md's performance targets, each with a check of its answer.

A scenario is one request through the real stack (Django's test client, in process) or one call
of the service function that does the work. Endpoints still being built are reported as not
available: a path that does not resolve, or a function that does not exist.
"""

import json
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlencode, urlsplit

from django.db import connection
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils import timezone

from bench import fleet as fleet_module
from bench.measure import Unavailable, WrongAnswer

PRODUCT = fleet_module.PRODUCT_SLUG
PAGE = 25
LIST_TARGET = (50.0, 100.0)
SEARCH = "sensor-00042"


@dataclass
class Scenario:
    name: str
    group: str
    call: Callable[[], object]
    check: Callable[[object], None] = lambda outcome: None
    target_ms: float | None = None
    target_p95_ms: float | None = None
    floor: bool = False
    # Writes alternate (add, then remove) and are slow; they get fewer samples.
    repeat: int | None = None
    warmup: int | None = None
    cleanup: Callable[[], None] | None = None
    # Work the scenario needs before its first call (ground truth, route checks); not measured.
    prepare: Callable[[], None] | None = None
    # Work before every call (e.g. ending the rollout the previous call started); not measured.
    reset: Callable[[], None] | None = None
    extra: dict = field(default_factory=dict)


class Bench:
    """What the scenarios share: the fleet, its product and user, signed-in clients."""

    def __init__(self, fleet: fleet_module.Fleet):
        from django.contrib.auth import get_user_model

        from console.models import AccessToken, Membership, Product
        from groups.models import Group

        self.fleet = fleet
        self.product = Product.objects.get(slug=PRODUCT)
        self.user = get_user_model().objects.get(username=fleet_module.USERNAME)
        self.membership = Membership.objects.get(user=self.user, product=self.product)
        self.groups = {group.name: group for group in Group.objects.filter(product=self.product)}
        self.scratch = self.groups[fleet_module.SCRATCH_GROUP]
        # Runs may overlap (a handshake load beside a read run): drop only tokens that expired.
        AccessToken.objects.filter(user=self.user, name="bench", expires_at__lt=timezone.now()).delete()
        _token, self.raw_token, _refresh = AccessToken.issue(user=self.user, name="bench", expires_in=6 * 3600)
        self.console = Client()
        self.console.force_login(self.user)
        self.api = Client(headers={"authorization": f"Bearer {self.raw_token}"})

    def rank(self, rank: int) -> str:
        return fleet_module.group_name(rank)

    def rank_near(self, size: int) -> str:
        """The group whose size is nearest to `size`."""
        sizes = self.fleet.group_sizes
        best = min(range(len(sizes)), key=lambda index: abs(sizes[index] - size))
        return self.rank(best + 1)

    def size(self, name: str) -> int:
        return self.fleet.group_sizes[int(name[1:]) - 1]

    # Ground truth, in hand-written SQL ----------------------------------------------------------

    def expected_page(self, *, groups=(), match_all=False, search=None, id_part=None, size=PAGE) -> list[str]:
        where, params = ["d.product_id = %s"], [self.product.id]
        ids = [self.groups[name].id for name in groups]
        if ids and match_all:
            where.append(
                "d.id IN (SELECT device_id FROM groups_groupmembership WHERE group_id = ANY(%s)"
                " GROUP BY device_id HAVING count(*) = %s)"
            )
            params += [ids, len(ids)]
        elif ids:
            where.append("d.id IN (SELECT device_id FROM groups_groupmembership WHERE group_id = ANY(%s))")
            params.append(ids)
        if search:
            where.append("(d.name ILIKE %s OR d.serial_number ILIKE %s OR strpos(d.device_id, %s) > 0)")
            params += [f"%{search}%", f"%{search}%", search.lower()]
        if id_part:
            where.append("strpos(d.device_id, %s) > 0")
            params.append(id_part.lower())
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT d.device_id FROM devices_device d WHERE {' AND '.join(where)}"
                " ORDER BY d.last_handshake_at DESC NULLS LAST, d.id DESC LIMIT %s",
                [*params, size],
            )
            return [row[0] for row in cursor.fetchall()]

    def device_in_most_groups(self) -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT d.device_id FROM devices_device d JOIN groups_groupmembership m ON m.device_id = d.id"
                " WHERE d.id <= 5000 AND NOT d.development AND d.desired_firmware_version IS NULL"
                " GROUP BY d.id ORDER BY count(*) DESC, d.id LIMIT 1"
            )
            return cursor.fetchone()[0]

    def id_parts(self) -> dict[str, str]:
        """Parts of one device's ID as users paste them: its start, its middle, short and long."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT device_id FROM devices_device WHERE product_id = %s ORDER BY id OFFSET %s LIMIT 1",
                           [self.product.id, self.fleet.devices // 2])
            device_id = cursor.fetchone()[0]
        return {"prefix": device_id[:6], "middle": device_id[9:15], "short": device_id[10:13], "long": device_id[4:20]}

    def listed_devices(self, group: str, count: int) -> list[str]:
        return self.expected_page(groups=[group], size=count)

    def scratch_members(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM groups_groupmembership WHERE group_id = %s", [self.scratch.id])
            return cursor.fetchone()[0]


# Requests ----------------------------------------------------------------------------------------


def _require_route(path: str) -> None:
    try:
        resolve(urlsplit(path).path)
    except Resolver404:
        raise Unavailable(f"no URL {urlsplit(path).path}") from None


def _response_ok(response, *, statuses=(200,)) -> None:
    if response.status_code == 404 and b"<html" not in response.content[:200].lower() and b"error" not in response.content:
        raise Unavailable(f"404 at {response.request['PATH_INFO']}")
    if response.status_code not in statuses:
        body = "" if "html" in response.get("Content-Type", "") else f": {response.content[:160].decode(errors='replace')}"
        raise WrongAnswer(f"HTTP {response.status_code}{body}")


def _get(client, path: str, params: list[tuple[str, str]] | None = None):
    url = f"{path}?{urlencode(params)}" if params else path
    _require_route(url)
    return lambda: client.get(url)


def _expect_ids_in_html(expected: list[str]):
    def check(response):
        _response_ok(response)
        body = response.content.decode()
        missing = [device_id for device_id in expected if device_id not in body]
        if not expected:
            raise WrongAnswer("the fleet has no devices for this filter")
        if missing:
            raise WrongAnswer(f"{len(missing)} of the {len(expected)} expected devices are not on the page")

    return check


def _expect_ids_in_json(expected: list[str]):
    def check(response):
        _response_ok(response)
        got = [device["id"] for device in response.json().get("devices", [])]
        if got != expected:
            raise WrongAnswer(f"got {len(got)} devices, expected {len(expected)} (first {got[:1]} vs {expected[:1]})")

    return check


# Scenario lists ----------------------------------------------------------------------------------


def _list_shapes(bench: Bench) -> list[tuple[str, dict]]:
    """(label, filter) pairs: one group at both ends of the size range, three groups any/all of,
    text search, and the whole fleet by last connection."""
    last = len(bench.fleet.group_sizes)
    # The middle group holds about 1% of the fleet (10,000 devices at 1M).
    huge, mid, small = bench.rank(1), bench.rank_near(bench.fleet.devices // 100), bench.rank(last)
    return [
        (f"1 group, huge ({huge}: {bench.size(huge):,})", {"groups": [huge]}),
        (f"1 group, small ({small}: {bench.size(small):,})", {"groups": [small]}),
        (f"3 groups any of ({huge}, {mid}, {small})", {"groups": [huge, mid, small]}),
        (f"3 groups all of ({bench.rank(1)}, {bench.rank(2)}, {bench.rank(3)})",
         {"groups": [bench.rank(1), bench.rank(2), bench.rank(3)], "match_all": True}),
        (f"2 groups all of, huge and small ({huge}, {bench.rank(min(100, last))})",
         {"groups": [huge, bench.rank(min(100, last))], "match_all": True}),
        (f"text search q={SEARCH}", {"search": SEARCH}),
        ("whole fleet by last connection", {}),
    ]


def _id_shapes(bench: Bench) -> list[tuple[str, dict]]:
    parts = bench.id_parts()
    return [(f"device ID, {kind} {len(part)} chars ({part})", {"id_part": part}) for kind, part in parts.items()]


def console_lists(bench: Bench) -> list[Scenario]:
    scenarios = []
    for label, shape in _list_shapes(bench):
        params = [("groups", name) for name in shape.get("groups", [])]
        if shape.get("match_all"):
            params.append(("groups_match", "all"))
        if shape.get("search"):
            params.append(("q", shape["search"]))
        params.append(("sort", "last_handshake"))
        scenarios.append(_lazy_list(bench, f"devices page: {label}", "console", bench.console,
                                    f"/products/{PRODUCT}/devices/", params, shape, html=True))
    middle = bench.id_parts()["middle"]
    scenarios.append(_lazy_list(bench, f"devices page: search by part of a device ID q={middle}", "console",
                                bench.console, f"/products/{PRODUCT}/devices/", [("q", middle), ("sort", "last_handshake")],
                                {"search": middle}, html=True))
    huge = bench.rank(1)
    scenarios.append(_lazy_list(
        bench, f"devices page: 1 group, huge ({huge}), 100 per page", "console", bench.console,
        f"/products/{PRODUCT}/devices/", [("groups", huge), ("per_page", "100")], {"groups": [huge]}, html=True, size=100,
    ))
    return scenarios


def api_lists(bench: Bench) -> list[Scenario]:
    scenarios = []
    for label, shape in [*_list_shapes(bench), *_id_shapes(bench)]:
        params = [("perPage", str(PAGE))]
        if shape.get("groups"):
            params.append(("groups", ",".join(shape["groups"])))
        if shape.get("match_all"):
            params.append(("groups_match", "all"))
        if shape.get("search"):
            params.append(("deviceName", shape["search"]))
        if shape.get("id_part"):
            params.append(("deviceId", shape["id_part"]))
        params += [("sortAttr", "lastConnection"), ("sortDir", "desc")]
        scenarios.append(_lazy_list(bench, f"API list: {label}", "api", bench.api,
                                    f"/v1/products/{PRODUCT}/devices", params, shape, html=False))
    return scenarios


def _lazy_list(bench, name, group, client, path, params, shape, *, html: bool, size: int = PAGE) -> Scenario:
    """A list scenario whose expected page is computed only when the endpoint exists."""
    url = f"{path}?{urlencode(params)}"
    state = {}

    def prepare():
        _require_route(url)
        expected = bench.expected_page(
            groups=shape.get("groups", ()), match_all=shape.get("match_all", False),
            search=shape.get("search"), id_part=shape.get("id_part"), size=size,
        )
        state["check"] = _expect_ids_in_html(expected) if html else _expect_ids_in_json(expected)

    return Scenario(name, group, lambda: client.get(url), check=lambda outcome: state["check"](outcome),
                    target_ms=LIST_TARGET[0], target_p95_ms=LIST_TARGET[1], floor=True, prepare=prepare,
                    extra={"url": url})


def pages(bench: Bench) -> list[Scenario]:
    device_id = bench.device_in_most_groups()

    def device_check(response):
        _response_ok(response)
        if device_id not in response.content.decode():
            raise WrongAnswer("the device page does not name the device")

    def api_device_check(response):
        _response_ok(response)
        if response.json().get("id") != device_id:
            raise WrongAnswer("the API answered another device")

    largest, smallest = bench.rank(1), bench.rank(len(bench.fleet.group_sizes))

    def groups_check(response):
        _response_ok(response)
        body = response.content.decode()
        count = bench.size(largest)
        if smallest not in body or largest not in body:
            raise WrongAnswer("the groups page does not list every group")
        if f"{count:,}" not in body and str(count) not in body:
            raise WrongAnswer(f"the groups page does not show {largest}'s {count:,} devices")

    def api_groups_check(response):
        _response_ok(response)
        groups = {group["name"]: group for group in response.json().get("groups", [])}
        if len(groups) != len(bench.groups) or groups.get(largest, {}).get("device_count") != bench.size(largest):
            raise WrongAnswer("the group list or its device counts are wrong")

    return [
        Scenario("device page", "console", _deferred(lambda: _get(bench.console, f"/products/{PRODUCT}/devices/{device_id}/")),
                 check=device_check, target_ms=30.0, floor=True),
        Scenario("API device", "api", _deferred(lambda: _get(bench.api, f"/v1/products/{PRODUCT}/devices/{device_id}")),
                 check=api_device_check, target_ms=30.0, floor=True),
        Scenario("groups page with all counts", "console", _deferred(lambda: _get(bench.console, f"/products/{PRODUCT}/groups/")),
                 check=groups_check, target_ms=150.0, floor=True),
        Scenario("API groups with all counts", "api", _deferred(lambda: _get(bench.api, f"/v1/products/{PRODUCT}/groups")),
                 check=api_groups_check, target_ms=150.0, floor=True),
        Scenario("release lint (API)", "api", _deferred(lambda: _get(bench.api, f"/v1/products/{PRODUCT}/release_lint")),
                 check=_response_ok, target_ms=1000.0),
    ]


def _deferred(make: Callable[[], Callable[[], object]]) -> Callable[[], object]:
    """A call built on first use, so building it (and finding the route missing) happens in the run."""
    built = []

    def call():
        if not built:
            built.append(make())
        return built[0]()

    return call


# Batch edits -------------------------------------------------------------------------------------


class Toggle:
    """Adds the scratch group to a set of devices, then removes it, and so on: every call is a real
    change, and the fleet ends as it started."""

    def __init__(self, bench: Bench, do: Callable[[bool], object]):
        self.bench, self.do, self.adding = bench, do, True

    def __call__(self):
        outcome = self.do(self.adding)
        self.adding = not self.adding
        return outcome

    def cleanup(self):
        from devices.models import Device
        from groups import services

        if self.bench.scratch_members():
            services.devices_edit_groups(product=self.bench.product, devices=Device.objects.filter(product=self.bench.product),
                                      remove=[self.bench.scratch], actor=self.bench.user)


def _changed_count(expected: int):
    def check(outcome):
        if outcome != expected:
            raise WrongAnswer(f"{outcome} devices changed, expected {expected}")

    return check


def batch_edits(bench: Bench) -> list[Scenario]:
    from devices.models import Device
    from groups import services

    ids = bench.listed_devices(bench.rank(2), 1000)
    filter_group = bench.rank_near(bench.fleet.devices // 10)
    filter_size = bench.size(filter_group)
    scratch = bench.scratch

    def service(devices_of):
        def do(adding):
            return services.devices_edit_groups(product=bench.product, devices=devices_of(), actor=bench.user,
                                             add=[scratch] if adding else [], remove=[] if adding else [scratch])
        return do

    def api_put(selection: dict):
        path = f"/v1/products/{PRODUCT}/devices"

        def do(adding):
            _require_route(path)
            metadata = {"add": [scratch.name]} if adding else {"remove": [scratch.name]}
            return bench.api.put(path, data=json.dumps({"action": "groups", **selection, "metadata": metadata}),
                                 content_type="application/json")
        return do

    def console_post(selection: dict):
        path = f"/products/{PRODUCT}/devices/edit-groups/"

        def do(adding):
            _require_route(path)
            return bench.console.post(path, {**selection, "add" if adding else "remove": scratch.name})
        return do

    def api_check(expected):
        def check(response):
            _response_ok(response)
            if response.json().get("updated") != expected:
                raise WrongAnswer(f"updated {response.json().get('updated')}, expected {expected}")
        return check

    def console_check(expected):
        def check(response):
            _response_ok(response, statuses=(204, 302))
            members = bench.scratch_members()
            if members not in (0, expected):
                raise WrongAnswer(f"the scratch group holds {members} devices, expected 0 or {expected}")
        return check

    listed = f"{len(ids):,} listed devices"
    matching = f"all {filter_size:,} matching {filter_group}"
    rows = [
        (f"batch edit: {listed} (service)", "service", 300.0, len(ids),
         service(lambda: Device.objects.filter(product=bench.product, device_id__in=ids)), _changed_count(len(ids))),
        (f"batch edit: {listed} (API PUT)", "api", 300.0, len(ids), api_put({"devices": ids}), api_check(len(ids))),
        (f"batch edit: {listed} (console)", "console", 300.0, len(ids), console_post({"ids": ids}),
         console_check(len(ids))),
        (f"batch edit: {matching} (service)", "service", 3000.0, filter_size,
         service(lambda: Device.objects.visible_to(bench.membership).in_groups([bench.groups[filter_group].id])),
         _changed_count(filter_size)),
        (f"batch edit: {matching} (API PUT filter)", "api", 3000.0, filter_size,
         api_put({"filter": {"groups": filter_group}}), api_check(filter_size)),
        (f"batch edit: {matching} (console)", "console", 3000.0, filter_size,
         console_post({"all": "1", "groups": filter_group}), console_check(filter_size)),
    ]
    scenarios = []
    for name, group, target, expected, do, check in rows:
        toggle = Toggle(bench, do)
        scenarios.append(Scenario(name, group, toggle, check=check, target_ms=target, cleanup=toggle.cleanup,
                                  repeat=4 if expected > 10_000 else 10, warmup=2, extra={"devices": expected}))
    return scenarios


# Impact previews ---------------------------------------------------------------------------------


def impacts(bench: Bench) -> list[Scenario]:
    from devices.models import Device
    from firmware.models import Firmware
    from groups import services as group_services

    try:
        from firmware import services as firmware_services
    except ImportError:
        firmware_services = None

    product = bench.product
    new_default = Firmware.objects.get(product=product, version=fleet_module.DEFAULT_VERSION + 9)
    unreleased = Firmware.objects.get(product=product, version=fleet_module.DEFAULT_VERSION - 1)
    kept_groups = [group for group in bench.groups.values() if group.released_firmware_id == new_default.id]
    top3 = [bench.groups[bench.rank(rank)] for rank in (1, 2, 3)]
    filter_group = bench.rank_near(bench.fleet.devices // 10)
    released = sorted((g for g in bench.groups.values() if g.released_firmware_id), key=lambda g: bench.size(g.name))[0]

    def positive(outcome):
        total = outcome.total if hasattr(outcome, "total") else outcome
        if not total:
            raise WrongAnswer("the impact is zero; the preview cannot have looked at the fleet")

    def service(call):
        def run():
            if firmware_services is None or not hasattr(firmware_services, "release_plan"):
                raise Unavailable("firmware.services.release_plan does not exist")
            return call()
        return run

    def api_check(response):
        _response_ok(response)
        total = response.json().get("devices", {}).get("firmware_update", {}).get("total")
        positive(total)

    def html_check(response):
        _response_ok(response)

    def names(groups):
        return [group.name for group in groups]

    confirm = f"/products/{PRODUCT}/firmware/{new_default.version}/release/confirm/"
    confirm_params = [("groups", name) for name in names(kept_groups)] + [("product_default", "on")]
    impact_path = f"/v1/products/{PRODUCT}/impact"
    return [
        Scenario(f"impact: v{new_default.version} as product default, whole fleet (service)", "service",
                 service(lambda: firmware_services.release_plan(firmware=new_default, groups=kept_groups,
                                                                product_default=True).impact()),
                 check=positive, target_ms=1500.0, repeat=5),
        Scenario(f"impact: v{unreleased.version} to the 3 largest groups (service)", "service",
                 service(lambda: firmware_services.release_plan(firmware=unreleased, groups=top3).impact()),
                 check=positive, target_ms=1500.0, repeat=5),
        Scenario(f"impact: v{new_default.version} as product default (console confirm)", "console",
                 _deferred(lambda: _get(bench.console, confirm, confirm_params)), check=html_check,
                 target_ms=1500.0, repeat=5, floor=True),
        Scenario(f"impact: v{new_default.version} as product default (API)", "api",
                 _deferred(lambda: _get(bench.api, impact_path, [
                     ("action", "edit_groups_for_firmware"), ("firmware_version", str(new_default.version)),
                     ("groups", ",".join(names(kept_groups))), ("product_default", "true")])),
                 check=api_check, target_ms=1500.0, repeat=5, floor=True),
        Scenario(f"impact: batch edit preview, all matching {filter_group} join {released.name} (service)", "service",
                 lambda: group_services.devices_edit_groups_impact(
                     devices=Device.objects.visible_to(bench.membership).in_groups([bench.groups[filter_group].id]),
                     add=[released]),
                 check=positive, target_ms=1500.0, repeat=5),
    ]


# CSV import and undo ---------------------------------------------------------------------------


def csv_imports(bench: Bench) -> list[Scenario]:
    """A file of 100,000 rows (device ID, the scratch group): its dry run, its import, and the
    undo of an import. Each timed call's opposite (back to the fleet as it was) runs in the
    check, outside the timing."""
    from console.models import AuditEvent
    from devices.models import Device
    from groups import csv_import, services, undo

    rows = min(100_000, bench.fleet.devices)
    state = {}

    def text():
        if "text" not in state:
            with connection.cursor() as cursor:
                cursor.execute("SELECT device_id FROM devices_device WHERE product_id = %s ORDER BY id LIMIT %s",
                               [bench.product.id, rows])
                ids = [row[0] for row in cursor.fetchall()]
            state["text"] = "device,groups\n" + "".join(f"{device_id},{bench.scratch.name}\n" for device_id in ids)
        return state["text"]

    def import_file():
        return csv_import.memberships_import(membership=bench.membership, text=text(), mode="add",
                                             file_name="bench.csv", actor=bench.user)

    def remove_scratch():
        services.devices_edit_groups(product=bench.product, devices=Device.objects.filter(product=bench.product),
                                     remove=[bench.scratch], actor=bench.user)

    def dry_run_check(plan):
        if plan.added != rows or plan.devices_found != rows:
            raise WrongAnswer(f"the dry run adds {plan.added} memberships of {plan.devices_found} devices, expected {rows}")

    def imported_check(plan):
        if plan.changed_devices != rows:
            raise WrongAnswer(f"{plan.changed_devices} devices changed, expected {rows}")
        remove_scratch()

    def last_import():
        return AuditEvent.objects.filter(product=bench.product, action="device.groups_import").latest("id")

    def undone_check(changed):
        if changed != rows:
            raise WrongAnswer(f"the undo changed {changed} devices, expected {rows}")
        import_file()

    def cleanup():
        if bench.scratch_members():
            remove_scratch()

    return [
        Scenario(f"CSV import: dry run of {rows:,} rows (service)", "service",
                 lambda: csv_import.memberships_import_plan(membership=bench.membership, text=text(), mode="add"),
                 check=dry_run_check, target_ms=5000.0, repeat=4, warmup=1, extra={"rows": rows}),
        Scenario(f"CSV import: import of {rows:,} rows (service)", "service", import_file,
                 check=imported_check, target_ms=5000.0, repeat=4, warmup=1, cleanup=cleanup, extra={"rows": rows}),
        Scenario(f"undo: an import of {rows:,} devices (service)", "service",
                 lambda: undo.edit_undo(membership=bench.membership, event=last_import(), actor=bench.user),
                 check=undone_check, target_ms=3000.0, repeat=4, warmup=1, prepare=import_file, cleanup=cleanup,
                 extra={"rows": rows}),
    ]


def all_scenarios(bench: Bench) -> list[Scenario]:
    from bench import rollouts

    return [*console_lists(bench), *api_lists(bench), *pages(bench), *batch_edits(bench), *impacts(bench),
            *csv_imports(bench), *rollouts.scenarios(bench)]
