"""Load and faults against gunicorn on loopback, then an account of everything written.

`python -m bench.soak [--seconds 60] [--devices 20000]` (or `make soak`). The run gets a fresh
database of its own (`SOAK_DATABASE_URL`, default fleet_soak on the local PostgreSQL; the name
must contain "soak", since it is dropped and recreated), a generated fleet (bench.fleet), and
gunicorn serving the project on a free loopback port. For a bounded time, threads then drive:

* handshakes: each thread owns a slice of the devices and plays them, reporting the version a
  device runs and installing offered updates most of the time;
* batch group edits (`PUT /devices`, by ID lists and by filter) over overlapping device sets:
  each edit thread owns some groups (add and remove), and all of them add to shared groups;
* releases and unreleases of versions to groups, one thread (the product allows one at a time).

Midway it kills a gunicorn worker with SIGKILL and terminates the app's database backends. Every
request the soak sends is idempotent, so a request without an answer (connection error) or with
a 5xx is sent again until it is answered; the expected final state is then deterministic.

Afterwards it checks the database against that expected state: memberships of every group,
released versions, each device's reported version, each firmware update row (and the audit events
beside them), then handshakes the devices whose pending update a later release made stale and
checks that every pending update matches its device's current target. It exits non-zero on any
discrepancy, any 5xx not caused by a terminated backend, or any refused (4xx) request.
"""

import argparse
import base64
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fleet_soak"
APPLICATION_NAME = "fleet-soak-app"
SEED = 20261127
VERSIONS = range(41, 51)  # above the fleet's default (40), all reported by some device at the start
EDIT_GROUPS_PER_THREAD = 3
SHARED_GROUPS = ["soak-shared-a", "soak-shared-b"]
MAX_BATCH = 200
HOT_DEVICES = 2000
ATTEMPTS = 40
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="duration of the load (default 60)")
    parser.add_argument("--devices", type=int, default=20_000, help="fleet size (default 20,000)")
    parser.add_argument("--groups", type=int, default=200, help="groups of the generated fleet (default 200)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--handshake-threads", type=int, default=8)
    parser.add_argument("--edit-threads", type=int, default=3)
    parser.add_argument("--faults", default="kill,terminate",
                        help="comma-separated: kill (SIGKILL a gunicorn worker at 1/3 of the run), "
                             "terminate (pg_terminate_backend the app's connections at 2/3); 'none' for neither")
    return parser.parse_args(argv)


# Requests -----------------------------------------------------------------------------------------


@dataclass
class Call:
    kind: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection refused or reset, timeout)


@dataclass
class Fault:
    name: str
    started: float
    ended: float
    detail: str
    # A terminated backend fails the request using it; a killed worker only drops its connection.
    fails_in_flight: bool


class Api:
    def __init__(self, port: int, token: str, product: str):
        self.port, self.product = port, product
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.calls: list[Call] = []
        self.refused: list[str] = []

    def send(self, kind: str, method: str, path: str, body=None, *, device: str | None = None) -> tuple[int | None, object]:
        """One attempt: (status or None, decoded answer). With `device`, to the device gateway
        (`/v1/device...`) with that device's own key; otherwise to the product's API."""
        started = time.monotonic()
        status, answer = None, None
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            url = f"/v1/device{path}" if device is not None else f"/v1/products/{self.product}{path}"
            connection.request(method, url,
                               body=None if body is None else json.dumps(body), headers=self._headers(device))
            response = connection.getresponse()
            raw = response.read()
            status = response.status
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = raw[:200].decode(errors="replace")
        except (OSError, http.client.HTTPException) as error:
            answer = f"{type(error).__name__}: {error}"
        finally:
            connection.close()
        self.calls.append(Call(kind, started, time.monotonic(), status))
        return status, answer

    def _headers(self, device: str | None) -> dict:
        if device is None:
            return self.headers
        from bench.fleet import bench_key

        credentials = base64.b64encode(f"{device}:{bench_key(device)}".encode()).decode()
        return {**self.headers, "Authorization": f"Basic {credentials}"}

    def answered(self, kind: str, method: str, path: str, body=None, *, device: str | None = None) -> tuple[int | None, object, int]:
        """Send until the app answers below 500; (status, answer, attempts that went unanswered).

        Safe because every soak request is idempotent: a repeated handshake reports the same
        version, a repeated edit adds and removes the same pairs, a repeated release names the
        complete group list again. A status of None means the app never answered.
        """
        for attempt in range(ATTEMPTS):
            status, answer = self.send(kind, method, path, body, device=device)
            if status is not None and status < 500:
                if status >= 300:
                    self.refused.append(f"{kind} {method} {path}: HTTP {status} {str(answer)[:200]}")
                return status, answer, attempt
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        return None, None, ATTEMPTS


# The load ---------------------------------------------------------------------------------------


@dataclass
class Model:
    """What the acknowledged requests imply, kept by the threads that sent them."""

    running: dict[str, int | None]  # device -> version it runs (what its next handshake reports)
    members: dict[str, set[str]]  # group -> devices, for every group an edit thread changes
    released: dict[str, int | None]  # group -> released version, for every group of the product
    static_members: set[str]  # the group filter-based edits select (nobody changes it)
    static_group: str
    last_sent: dict[str, int | None] = field(default_factory=dict)
    last_offer: dict[str, int | None] = field(default_factory=dict)
    ever_sent: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    # "handshake attempts", "changing edits", "releases", and per kind the attempts left unanswered.
    counts: Counter = field(default_factory=Counter)
    release_answers_wrong: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    uncertain_devices: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counts[name] += amount


def handshake_thread(index: int, devices: list[str], api: Api, model: Model, stop: threading.Event) -> None:
    rng = random.Random(SEED + index)
    hot = devices[:200]
    while not stop.is_set():
        device = rng.choice(hot if rng.random() < 0.7 else devices)
        handshake(device, api, model, rng, kind="handshake")


def handshake(device: str, api: Api, model: Model, rng: random.Random, *, kind: str) -> None:
    version = model.running[device]
    model.ever_sent[device].add(version)
    status, answer, unsettled = api.answered(kind, "POST", "/handshake", {"firmware_version": version}, device=device)
    model.count("handshake attempts", unsettled + 1)
    model.count(f"unanswered {kind}", unsettled)
    if status is None:
        model.uncertain.append(f"device {device}: a handshake was never answered")
        model.uncertain_devices.add(device)
        return
    if status != 200:
        return
    offer = answer["update"]["version"] if answer["update"] else None
    model.last_sent[device], model.last_offer[device] = version, offer
    if offer is not None and rng.random() < 0.6:
        model.running[device] = offer  # installed; the next handshake reports it
    elif rng.random() < 0.02:
        model.running[device] = rng.choice([None, *range(1, 51)])  # flashed by hand


def edit_thread(index: int, own: list[str], hot: list[str], fleet: list[str], api: Api, model: Model,
                stop: threading.Event) -> None:
    rng = random.Random(SEED + 100 + index)
    private = [group for group in own if group.startswith("soak-")]
    while not stop.is_set():
        if rng.random() < 0.1:
            # By filter: every member of the static group, whatever their number.
            add, remove = ([rng.choice(private)], []) if rng.random() < 0.5 else ([], [rng.choice(private)])
            devices = model.static_members
            selection = {"filter": {"groups": model.static_group}}
        else:
            add = rng.sample(own, rng.randint(1, 2))
            remove = [group for group in rng.sample(own, 1) if group not in add] if rng.random() < 0.5 else []
            if rng.random() < 0.3:
                add.append(rng.choice(SHARED_GROUPS))
            devices = set(rng.sample(hot if rng.random() < 0.8 else fleet, rng.randint(1, MAX_BATCH)))
            selection = {"devices": sorted(devices)}
        body = {"action": "groups", **selection, "metadata": {"add": add, "remove": remove}}
        status, answer, unsettled = api.answered("batch edit", "PUT", "/devices", body)
        model.count("unanswered batch edit", unsettled)
        if status is None:
            model.uncertain.append(f"groups {add + remove}: an edit was never answered")
            with model.lock:
                for group in add + remove:
                    model.members.pop(group, None)
            continue
        if status != 200:
            continue
        model.count("changing edits", int(answer["updated"] > 0))
        with model.lock:  # only for the shared groups; the others have this thread as their one writer
            for group in add:
                if group in model.members:
                    model.members[group] |= devices
            for group in remove:
                if group in model.members:
                    model.members[group] -= devices


def release_thread(candidates: list[str], api: Api, model: Model, stop: threading.Event) -> None:
    rng = random.Random(SEED + 200)
    while not stop.wait(rng.uniform(0.2, 0.8)):
        version = rng.choice(VERSIONS)
        groups = sorted(rng.sample(candidates, rng.choice([0, 1, 1, 2, 2, 3])))
        status, answer, unsettled = api.answered("release", "PUT", "/firmware/release",
                                                 {"version": version, "groups": groups})
        model.count("unanswered release", unsettled)
        if status is None:
            model.uncertain.append(f"v{version}: a release was never answered")
            continue
        if status != 200:
            continue
        model.count("releases")
        for group, released in list(model.released.items()):
            if released == version and group not in groups:
                model.released[group] = None
        for group in groups:
            model.released[group] = version
        expected = sorted(group for group, released in model.released.items() if released == version)
        if sorted(answer["groups"]) != expected:
            model.release_answers_wrong.append(f"v{version}: answered {answer['groups']}, expected {expected}")


# Faults -----------------------------------------------------------------------------------------


def gunicorn_workers(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    if children.exists():
        return [int(pid) for pid in children.read_text().split()]
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def kill_worker(master: int) -> Fault:
    started = time.monotonic()
    workers = gunicorn_workers(master)
    if not workers:
        return Fault("SIGKILL a gunicorn worker", started, started, "no worker found", False)
    victim = random.Random(SEED).choice(workers)
    os.kill(victim, signal.SIGKILL)
    return Fault("SIGKILL a gunicorn worker", started, time.monotonic(), f"pid {victim} of {len(workers)}", False)


def terminate_backends() -> Fault:
    from django.db import connection

    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s AND datname = current_database() AND pid <> pg_backend_pid()",
                [APPLICATION_NAME],
            )
            terminated = cursor.fetchone()[0]
    finally:
        connection.close()
    return Fault("pg_terminate_backend the app's connections", started, time.monotonic(),
                 f"{terminated} backends", True)


def fault_thread(kinds: set[str], seconds: float, master: int, faults: list[Fault], began: float,
                 stop: threading.Event) -> None:
    plan = [(1 / 3, "kill", lambda: kill_worker(master)), (2 / 3, "terminate", terminate_backends)]
    for share, kind, inject in plan:
        if kind in kinds and not stop.wait(max(0.0, began + seconds * share - time.monotonic())):
            faults.append(inject())


# Setup ------------------------------------------------------------------------------------------


def start_gunicorn(url: str, workers: int, log_path: Path):
    from bench.load import PROJECT, _free_port, _wait_listening

    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings",
           "BENCH_DATABASE_URL": f"{url}{'&' if '?' in url else '?'}application_name={APPLICATION_NAME}"}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "console.wsgi:application", "--workers", str(workers),
             "--bind", f"127.0.0.1:{port}", "--timeout", "60", "--log-level", "warning"],
            cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    _wait_listening(port, server)
    return server, port


def snapshot(product) -> dict:
    from devices.models import Device
    from groups.models import Group, GroupMembership

    members = defaultdict(set)
    for group, device in GroupMembership.objects.filter(group__product=product).values_list("group__name",
                                                                                             "device__device_id"):
        members[group].add(device)
    return {
        "running": dict(Device.objects.filter(product=product).values_list("device_id", "firmware_version")),
        "members": members,
        "released": dict(Group.objects.filter(product=product).values_list("name", "released_firmware__version")),
    }


# Checks -----------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    problems: list[str]
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def differences(label: str, expected: dict, found: dict) -> list[str]:
    return [f"{label} {key}: expected {expected.get(key)!r}, found {found.get(key)!r}"
            for key in sorted(set(expected) | set(found), key=str) if expected.get(key) != found.get(key)]


def verify(product, model: Model, before: dict, edited: set[str]) -> list[Check]:
    from console.models import AuditEvent
    from firmware.models import FirmwareUpdate

    now = snapshot(product)
    checks = []

    problems = []
    for group in sorted(edited):
        if group not in model.members:
            continue  # an edit that was never answered left it unknown (reported apart)
        missing, extra = model.members[group] - now["members"][group], now["members"][group] - model.members[group]
        if missing or extra:
            problems.append(f"{group}: {len(missing)} memberships missing (e.g. {sorted(missing)[:3]}), "
                            f"{len(extra)} unexpected (e.g. {sorted(extra)[:3]})")
    pairs = sum(len(model.members[group]) for group in edited if group in model.members)
    checks.append(Check("memberships of the edited groups", problems, f"{len(edited)} groups, {pairs:,} memberships"))

    untouched = (set(before["members"]) | set(now["members"])) - edited
    problems = [f"{group}: {len(before['members'][group])} members before, {len(now['members'][group])} after"
                for group in sorted(untouched) if before["members"][group] != now["members"][group]]
    checks.append(Check("memberships of the other groups unchanged", problems, f"{len(untouched)} groups"))

    released = sum(version is not None for version in now["released"].values())
    checks.append(Check("released versions",
                        differences("group", model.released, now["released"]) + model.release_answers_wrong,
                        f"{model.counts['releases']} releases; {released} groups released at the end"))

    uncertain = model.uncertain_devices
    expected_versions = {device: model.last_sent.get(device, version)
                         for device, version in before["running"].items() if device not in uncertain}
    found_versions = {device: now["running"][device] for device in expected_versions}
    checks.append(Check("each device's version is the one it last reported",
                        differences("device", expected_versions, found_versions),
                        f"{len(model.last_sent):,} devices handshook"))

    rows = list(FirmwareUpdate.objects.filter(product=product).values_list("device__device_id", "to_version",
                                                                           "status", "reason"))
    pending = defaultdict(list)
    for device, to_version, status, _reason in rows:
        if status == FirmwareUpdate.Status.PENDING:
            pending[device].append(to_version)
    problems = [f"device {device}: {len(versions)} pending updates" for device, versions in pending.items()
                if len(versions) > 1]
    offers = {device: offer for device, offer in model.last_offer.items() if device not in uncertain}
    problems += differences("pending update of device", offers,
                            {device: pending[device][0] if device in pending else None for device in offers})
    checks.append(Check("pending updates: at most one per device, the one its last handshake was offered",
                        problems, f"{sum(map(len, pending.values())):,} pending"))

    problems = []
    status_counts = Counter(status for _device, _to, status, _reason in rows)
    for device, to_version, status, reason in rows:
        if device not in model.ever_sent:
            problems.append(f"device {device} never handshook but has an update to v{to_version}")
        elif status == FirmwareUpdate.Status.SUCCEEDED and to_version not in model.ever_sent[device]:
            problems.append(f"device {device}: update to v{to_version} succeeded but it never reported v{to_version}")
        elif status == FirmwareUpdate.Status.FAILED and not reason.startswith("Superseded"):
            problems.append(f"device {device}: update to v{to_version} failed ({reason}), yet no failure was reported")
    if len(rows) > model.counts["handshake attempts"]:
        problems.append(f"{len(rows)} update rows from {model.counts['handshake attempts']} handshakes")
    events = Counter(AuditEvent.objects.filter(product=product, action__startswith="firmware.update_")
                     .values_list("action", flat=True))
    for action, expected in (("firmware.update_targeted", len(rows)),
                             ("firmware.update_succeeded", status_counts[FirmwareUpdate.Status.SUCCEEDED]),
                             ("firmware.update_superseded", status_counts[FirmwareUpdate.Status.FAILED])):
        if events[action] != expected:
            problems.append(f"{events[action]} {action} audit events for {expected} update rows")
    checks.append(Check("every update row accounted for, with its audit event", problems,
                        ", ".join(f"{count:,} {status}" for status, count in sorted(status_counts.items()))))

    problems = []
    for action, kind in (("device.groups", "batch edit"), ("firmware.release", "release")):
        acknowledged = model.counts["changing edits" if kind == "batch edit" else "releases"]
        unsettled = model.counts[f"unanswered {kind}"]
        recorded = AuditEvent.objects.filter(product=product, action=action).count()
        if not acknowledged <= recorded <= acknowledged + unsettled:
            problems.append(f"{recorded} {action} events for {acknowledged} acknowledged changes"
                            f" and {unsettled} unanswered attempts")
    checks.append(Check("audit events of edits and releases", problems,
                        f"{model.counts['changing edits']:,} changing edits, {model.counts['releases']} releases"))
    return checks


def stale_pending(product) -> list[str]:
    """Devices whose pending update is no longer their target (a release moved it since)."""
    from django.db.models import F, OuterRef, Q, Subquery

    from devices.models import Device
    from firmware.models import FirmwareUpdate

    pending = FirmwareUpdate.objects.filter(device=OuterRef("pk"), status=FirmwareUpdate.Status.PENDING)
    return list(
        Device.objects.filter(product=product).with_target()
        .annotate(pending_to=Subquery(pending.values("to_version")[:1]))
        .filter(pending_to__isnull=False)
        .filter(Q(target_version__isnull=True) | ~Q(pending_to=F("target_version")))
        .values_list("device_id", flat=True)
    )


# Report -----------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def classify(calls: list[Call], faults: list[Fault]) -> tuple[dict, int]:
    """Per kind: counts by outcome and latencies; and the number of unexplained 5xx."""
    windows = [(fault.started, fault.ended + 0.2) for fault in faults if fault.fails_in_flight]
    table, unexplained = {}, 0
    for call in calls:
        row = table.setdefault(call.kind, {"requests": 0, "2xx": 0, "4xx": 0, "5xx": 0, "5xx at a fault": 0,
                                           "no answer": 0, "ms": []})
        row["requests"] += 1
        if call.status is None:
            row["no answer"] += 1
            continue
        row["ms"].append((call.ended - call.started) * 1000)
        if call.status < 300:
            row["2xx"] += 1
        elif call.status < 500:
            row["4xx"] += 1
        elif any(call.started <= end and call.ended >= start for start, end in windows):
            row["5xx at a fault"] += 1
        else:
            row["5xx"] += 1
            unexplained += 1
    return table, unexplained


def report_table(table: dict, seconds: float) -> str:
    columns = ["requests", "2xx", "4xx", "5xx", "5xx at a fault", "no answer"]
    lines = [f"| kind | {' | '.join(columns)} | per s | p50 ms | p95 ms | max ms |",
             "|---|" + "---:|" * (len(columns) + 4)]
    for kind, row in table.items():
        rate = row["requests"] / seconds if kind != "settling handshake" else None
        numbers = [f"{row[column]:,}" for column in columns]
        latency = [percentile(row["ms"], 50), percentile(row["ms"], 95), max(row["ms"], default=None)]
        lines.append(f"| {kind} | {' | '.join(numbers)} | {'' if rate is None else f'{rate:,.0f}'} | "
                     + " | ".join("" if value is None else f"{value:,.0f}" for value in latency) + " |")
    return "\n".join(lines)


def recovery(calls: list[Call], fault: Fault) -> str:
    """Seconds from the end of a fault to the end of the first 2xx that started after it."""
    after = [call.ended for call in calls if call.started >= fault.ended and call.status and call.status < 300]
    return f"{min(after) - fault.ended:.2f} s" if after else "never"


# Main -------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    url = os.environ.get("SOAK_DATABASE_URL", DEFAULT_DATABASE_URL)
    if "soak" not in urlparse(url).path:
        raise SystemExit(f"SOAK_DATABASE_URL must name a database with 'soak' in it (it is dropped): {url}")
    os.environ["BENCH_DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    faults_wanted = {kind.strip() for kind in args.faults.split(",")} - {"none", ""}
    from bench import fleet as fleet_module
    from bench.load import stop_server

    fleet_module.ensure_database(url, recreate=True)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from console.models import AccessToken, Product
    from groups import services as group_services

    fleet_module.migrate()
    fleet = fleet_module.ensure(devices=args.devices, groups=args.groups)
    product = Product.objects.get(slug=fleet_module.PRODUCT_SLUG)
    user = get_user_model().objects.get(username=fleet_module.USERNAME)
    _token, raw_token, _refresh = AccessToken.issue(user=user, name="soak")

    # Who changes what: edit thread i owns three new groups and one mid-size fleet group; the
    # filter-based edits select a fleet group nobody changes; releases go to all of these.
    ranks = list(range(30, fleet.groups + 1))[: args.edit_threads]
    static_rank = 25
    if len(ranks) < args.edit_threads:
        raise SystemExit("too few groups for the edit threads: raise --groups")
    owned = [[f"soak-e{index}-{k}" for k in range(EDIT_GROUPS_PER_THREAD)] + [fleet_module.group_name(rank)]
             for index, rank in enumerate(ranks)]
    for name in [*SHARED_GROUPS, *(group for groups in owned for group in groups if group.startswith("soak-"))]:
        group_services.group_create(product=product, name=name, actor=user)
    before = snapshot(product)
    static_group = fleet_module.group_name(static_rank)
    edited = {*SHARED_GROUPS, *(group for groups in owned for group in groups)}
    model = Model(running=dict(before["running"]),
                  members={group: set(before["members"][group]) for group in edited},
                  released=dict(before["released"]),
                  static_members=set(before["members"][static_group]), static_group=static_group)
    fleet_ranks = [rank for rank in (5, 12, 40) if rank <= fleet.groups]
    release_candidates = sorted(edited | {fleet_module.group_name(rank) for rank in fleet_ranks})

    rng = random.Random(SEED)
    devices = sorted(before["running"])
    shuffled = rng.sample(devices, len(devices))
    hot = shuffled[:HOT_DEVICES]
    slices = [shuffled[index :: args.handshake_threads] for index in range(args.handshake_threads)]

    RESULTS.mkdir(exist_ok=True)
    log_path = RESULTS / "soak-gunicorn.log"
    server, port = start_gunicorn(url, args.workers, log_path)
    api = Api(port, raw_token, product.slug)
    print(f"Database {urlparse(url).path.lstrip('/')}: {fleet.devices:,} devices, {fleet.groups} groups; gunicorn"
          f" with {args.workers} workers on 127.0.0.1:{port}; {args.handshake_threads} handshake, {args.edit_threads}"
          f" edit and 1 release threads for {args.seconds:.0f} s;"
          f" faults: {', '.join(sorted(faults_wanted)) or 'none'}.",
          flush=True)
    stop = threading.Event()
    faults: list[Fault] = []
    threads = [threading.Thread(target=handshake_thread, args=(i, slices[i], api, model, stop))
               for i in range(args.handshake_threads)]
    threads += [threading.Thread(target=edit_thread, args=(i, owned[i], hot, devices, api, model, stop))
                for i in range(args.edit_threads)]
    threads.append(threading.Thread(target=release_thread, args=(release_candidates, api, model, stop)))
    began, cpu_began = time.monotonic(), time.process_time()
    threads.append(threading.Thread(target=fault_thread,
                                    args=(faults_wanted, args.seconds, server.pid, faults, began, stop)))
    try:
        for thread in threads:
            thread.start()
        stop.wait(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        load_seconds, load_cpu = time.monotonic() - began, time.process_time() - cpu_began

        # Let a pending update that a later release made stale be settled by a last handshake.
        stale = stale_pending(product)
        settle_rng = random.Random(SEED + 300)
        with ThreadPoolExecutor(args.handshake_threads) as pool:
            list(pool.map(lambda device: handshake(device, api, model, settle_rng, kind="settling handshake"),
                          stale))
    finally:
        stop_server(server)

    checks = verify(product, model, before, edited)
    still_stale = stale_pending(product)
    checks.append(Check("after settling, every pending update is its device's current target",
                        [f"device {device}" for device in still_stale[:20]],
                        f"{len(stale):,} stale before the settling handshakes"))
    checks.append(Check("every request answered", model.uncertain))
    checks.append(Check("no request refused (4xx)", api.refused))

    table, unexplained = classify(api.calls, faults)
    print()
    print(report_table(table, load_seconds))
    print()
    for fault in faults:
        print(f"- {fault.name} at {fault.started - began:.1f} s ({fault.detail}): first success"
              f" {recovery(api.calls, fault)} after it")
    server_errors = Counter(line[:100] for line in log_path.read_text(errors="replace").splitlines()
                            if line.startswith("django.db.utils."))
    for line, count in server_errors.most_common():
        print(f"- {count} × {line} (in {log_path.relative_to(HERE.parent)})")
    print(f"- the soak's own CPU time: {load_cpu:.0f} s over {load_seconds:.0f} s")
    print()
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}{f' ({check.detail})' if check.detail else ''}")
        for problem in check.problems[:10]:
            print(f"       {problem}")
        if len(check.problems) > 10:
            print(f"       ... and {len(check.problems) - 10} more")
    failed = unexplained or not all(check.ok for check in checks)
    print(f"\n{unexplained} 5xx outside the faults; {'FAILED' if failed else 'passed'}.")

    summary = {
        "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.soak " + " ".join(sys.argv[1:] if argv is None else argv),
        "load_seconds": round(load_seconds, 1),
        "cores": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "requests": {kind: {key: value for key, value in row.items() if key != "ms"} | {
            "p50_ms": percentile(row["ms"], 50), "p95_ms": percentile(row["ms"], 95)} for kind, row in table.items()},
        "faults": [{"name": f.name, "at_s": round(f.started - began, 1), "detail": f.detail,
                    "recovery": recovery(api.calls, f)} for f in faults],
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "problems": c.problems[:50]} for c in checks],
        "unexplained_5xx": unexplained,
    }
    (RESULTS / "soak-latest.json").write_text(json.dumps(summary, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
