"""The app survives a PostgreSQL restart.

gunicorn serves the project with its production settings (persistent connections, health-checked
before reuse) against a throwaway PostgreSQL cluster of the test's own, which the test restarts
and stops underneath it. The shared server the rest of the suite uses is never touched.
"""

import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests import gunicorn
from tests.gunicorn import free_port
from tests.gateway import basic

PROJECT = Path(__file__).resolve().parents[2]
PRODUCT = "acme"
APPLICATION_NAME = "fleet-restart-test"
DEVICES = [f"{n:024x}" for n in range(0xA0, 0xA5)]
# A request that takes longer than this during an outage counts as a hang.
PROMPT_SECONDS = 5

SEED = """
from django.contrib.auth import get_user_model
from console.models import AccessToken, Membership, Product, Role
user = get_user_model().objects.create(username="restart", email="restart@example.com")
product = Product.objects.create(name="Acme", slug="%s")
Membership.objects.create(user=user, product=product, role=Role.ADMINISTRATOR)
print(AccessToken.issue(user=user, name="restart")[1])
""" % PRODUCT


def server_binaries() -> Path | None:
    """The newest PostgreSQL server bin folder: Debian's versioned ones, else pg_ctl on PATH."""

    def version(folder: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", Path(folder).parent.name))

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for folder in candidates:
        if all(Path(folder, name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


BINARIES = server_binaries()
AS_ROOT = os.geteuid() == 0

pytestmark = [
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the restart test runs against PostgreSQL only"),
    pytest.mark.skipif(BINARIES is None, reason="PostgreSQL server binaries (initdb, pg_ctl) are not installed"),
]


class Cluster:
    """A PostgreSQL cluster in a temporary folder, on a free loopback port, trust auth.

    initdb refuses to run as root, so as root every server command runs as the postgres user.
    """

    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="fleet-restart-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.prefix = []
        if AS_ROOT:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        # fsync off only spares the disk: a restart is a clean shutdown, which writes every page out.
        self.options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"

    def run(self, tool: str, *args: str) -> None:
        command = [*self.prefix, str(self.binaries / tool), *args]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if completed.returncode:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {completed.stdout}{completed.stderr}{self.log()}")

    def pg_ctl(self, action: str, *args: str) -> None:
        self.run("pg_ctl", action, "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-w", "-t", "30",
                 "-o", self.options, *args)

    def log(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.pg_ctl("start")
        self.sql("CREATE DATABASE fleet", database="postgres")

    def sql(self, query: str, params=(), *, database: str = "fleet") -> list[tuple]:
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database,
                             autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def app_backends(self) -> list[int]:
        """Process ids of the server backends the app holds open."""
        rows = self.sql("SELECT pid FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
                        [APPLICATION_NAME])
        return [pid for (pid,) in rows]

    def destroy(self) -> None:
        try:
            self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate")
        except RuntimeError:
            pass  # not running
        shutil.rmtree(self.folder, ignore_errors=True)


class App:
    """gunicorn, one sync worker, serving the project against the cluster."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.port = free_port()
        self.log_path = cluster.folder / "gunicorn.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{cluster.port}/fleet?application_name={APPLICATION_NAME}",
            "DB_CONN_MAX_AGE": "600",
            "DEBUG": "0",
            "MEDIA_ROOT": str(cluster.folder / "media"),
        }
        self.token = ""
        self.device_keys: dict[str, str] = {}
        self.process = None

    def manage(self, *args: str) -> str:
        completed = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env=self.env,
                                   capture_output=True, text=True, timeout=120)
        if completed.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed: {completed.stderr[-2000:]}")
        return completed.stdout

    def start(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        self.token = self.manage("shell", "-c", SEED).strip().splitlines()[-1]
        self.process = gunicorn.start(env=self.env, port=self.port, log_path=self.log_path, workers=1)

    def stop(self) -> None:
        gunicorn.stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def call(self, method: str, path: str, body=None, *, device: str | None = None) -> tuple[int, object, float]:
        """(status, decoded JSON or text, seconds taken) of one request: to the product's API with
        the member's token, or with `device` to the device gateway with that device's key."""
        if device is None:
            url, authorization = f"/v1/products/{PRODUCT}{path}", f"Bearer {self.token}"
        else:
            url, authorization = f"/v1/device{path}", basic(device, self.device_keys[device])
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{url}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": authorization, "Content-Type": "application/json"},
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        seconds = time.monotonic() - started
        try:
            return status, json.loads(raw), seconds
        except ValueError:
            return status, raw.decode(errors="replace"), seconds

    def ok(self, method: str, path: str, body=None, *, device: str | None = None):
        status, answer, _seconds = self.call(method, path, body, device=device)
        assert status == 200, f"{method} {path}: HTTP {status} {str(answer)[:300]}\n{self.log()}"
        return answer

    def add_to_group(self, group: str) -> int:
        body = {"action": "groups", "devices": DEVICES, "metadata": {"add": [group]}}
        return self.ok("PUT", "/devices", body)["updated"]


@pytest.fixture(scope="module")
def app():
    if AS_ROOT:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, initdb needs the postgres OS user, which does not exist")
    cluster = Cluster(BINARIES)
    server = App(cluster)
    try:
        cluster.init()
        server.start()
        server.device_keys = server.ok("POST", "/devices", {"ids": DEVICES, "issue_keys": True})["device_keys"]
        yield server
    finally:
        server.stop()
        cluster.destroy()


def members(app: App, group: str) -> set[str]:
    rows = app.cluster.sql(
        "SELECT d.device_id FROM groups_groupmembership m JOIN groups_group g ON g.id = m.group_id"
        " JOIN devices_device d ON d.id = m.device_id WHERE g.name = %s",
        [group],
    )
    return {device_id for (device_id,) in rows}


def test_the_first_request_after_a_restart_succeeds_and_sees_the_earlier_writes(app):
    assert app.add_to_group("before-restart") == len(DEVICES)
    app.ok("POST", "/handshake", {"firmware_version": 3}, device=DEVICES[0])
    app.ok("GET", "/groups/before-restart")
    held = app.cluster.app_backends()
    app.ok("GET", "/groups/before-restart")
    # One connection, kept across requests: the restart below leaves the worker holding a dead one.
    assert len(held) == 1 and app.cluster.app_backends() == held

    app.cluster.pg_ctl("restart", "-m", "fast")
    assert app.cluster.app_backends() == []

    # The gateway skips Django's per-request health check: its handshake finds the connection
    # dead, and is repeated once on a new one.
    assert app.ok("POST", "/handshake", {"firmware_version": 4}, device=DEVICES[1]) == {"update": None}
    group = app.ok("GET", "/groups/before-restart")["group"]
    assert group["device_count"] == len(DEVICES)
    assert app.ok("GET", f"/devices/{DEVICES[0]}")["firmware_version"] == 3
    assert app.ok("GET", f"/devices/{DEVICES[1]}")["firmware_version"] == 4
    assert app.add_to_group("after-restart") == len(DEVICES)
    assert members(app, "after-restart") == set(DEVICES)
    reconnected = app.cluster.app_backends()
    assert len(reconnected) == 1 and reconnected != held


def test_a_request_while_postgresql_is_down_fails_promptly_and_the_next_one_recovers(app):
    app.ok("GET", "/groups")
    app.cluster.pg_ctl("stop", "-m", "fast")
    try:
        for _attempt in range(2):
            status, answer, seconds = app.call("PUT", "/devices", {
                "action": "groups", "devices": DEVICES, "metadata": {"add": ["during-outage"]}})
            assert status == 500, f"HTTP {status} {str(answer)[:300]}"
            assert answer["error"] == "server_error"
            assert seconds < PROMPT_SECONDS, f"a request during the outage took {seconds:.1f} s"
        assert app.process.poll() is None, "gunicorn died during the outage"
        assert "OperationalError" in app.log()
    finally:
        app.cluster.pg_ctl("start")

    assert members(app, "during-outage") == set()
    assert app.add_to_group("during-outage") == len(DEVICES)
    assert members(app, "during-outage") == set(DEVICES)
