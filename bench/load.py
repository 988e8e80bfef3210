"""Handshake throughput under concurrent load: gunicorn on loopback, driven by wrk, beside a
trivial JSON view served by the same processes, so the ratio says what the handshake costs.

Each request is one of 1,000 devices, authenticated by its own device key (HTTP Basic), through
the device gateway (`POST /v1/device/handshake`), reporting the version it runs."""

import base64
import io

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.measure import Result

PROJECT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.3  # DESIGN.md: at least 30% of the trivial view (the long-run aim is 50%)
HANDSHAKE = "/v1/device/handshake"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, process, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start listening")


def _ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing; installing Debian's package...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and could not be installed (apt-get install wrk)")
    return found


def _authorization(device_id: str) -> str:
    from bench.fleet import bench_key

    return "Basic " + base64.b64encode(f"{device_id}:{bench_key(device_id)}".encode()).decode()


def _lua_script(devices: list[tuple[str, int | None]]) -> str:
    rows = ",\n".join(
        f"{{'{_authorization(device_id)}', '{json.dumps({'firmware_version': version})}'}}"
        for device_id, version in devices
    )
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local devices = {{
{rows}
}}
local count = #devices
math.randomseed(42)
request = function()
  local device = devices[math.random(count)]
  wrk.headers["Authorization"] = device[1]
  return wrk.format(nil, "{HANDSHAKE}", nil, device[2])
end
"""


def _run_wrk(wrk: str, url: str, *, seconds: int, connections: int, script: str | None = None) -> dict:
    command = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        command += ["-s", script]
    output = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors:.*", output)
    latencies = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", output, re.MULTILINE))
    return {
        "requests_per_second": float(rps.group(1)) if rps else 0.0,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(0) if socket_errors else "",
        "latency": latencies,
        "output": output,
    }


def _to_ms(value: str | None) -> float | None:
    if not value:
        return None
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}.get(unit, 1.0)


def _wsgi_handshake(application, device_id: str, version) -> bytes:
    body = json.dumps({"firmware_version": version}).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": HANDSHAKE, "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body)), "HTTP_AUTHORIZATION": _authorization(device_id),
               "wsgi.input": io.BytesIO(body), "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
               "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1"}
    chunks = application(environ, lambda status, headers, exc_info=None: None)
    answer = b"".join(chunks)
    chunks.close()
    return answer


def breakdown(devices: list[tuple[str, int | None]]) -> dict:
    """Where a common handshake's time goes, measured in this process through the WSGI application
    as gunicorn runs it (medians over the devices): the process's CPU for everything but the
    database (Django, ninja, psycopg), the statement's round trip with and without waiting for
    the commit's WAL flush, and PostgreSQL's own execution time and WAL per statement."""
    from console.wsgi import application
    from firmware import handshake

    # The requests below end by closing a connection older than CONN_MAX_AGE, which would leave the
    # cursor held across them on a closed connection: start on a fresh one (its statements are
    # prepared again by the first pass).
    connection.close()
    for device_id, version in devices:  # every device's first handshake settles what it needs
        _wsgi_handshake(application, device_id, version)
    statement = [0.0]

    def timed_statement(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statement[0] += time.perf_counter() - started

    def run() -> tuple[list[float], list[float]]:
        cpu, round_trips = [], []
        with connection.execute_wrapper(timed_statement):
            for device_id, version in devices:
                statement[0], started = 0.0, time.process_time()
                _wsgi_handshake(application, device_id, version)
                cpu.append((time.process_time() - started) * 1000)
                round_trips.append(statement[0] * 1000)
        return cpu, round_trips

    cpu, synchronous = run()
    ping = []
    for _device in devices:
        started = time.process_time()
        chunks = application({"REQUEST_METHOD": "GET", "PATH_INFO": "/bench/ping", "wsgi.input": io.BytesIO(b""),
                              "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
                              "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1"},
                             lambda status, headers, exc_info=None: None)
        b"".join(chunks)
        chunks.close()
        ping.append((time.process_time() - started) * 1000)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        _cpu, asynchronous = run()
        cursor.execute("SET synchronous_commit = on")
        executions, wal = [], []
        name = handshake._fast_statement().name
        for device_id, version in devices[:200]:
            arguments = _statement_arguments(device_id, version)
            cursor.execute(f"EXPLAIN (ANALYZE, WAL, FORMAT JSON) EXECUTE {name}({', '.join(['%s'] * len(arguments))})",
                           arguments)
            plan = cursor.fetchone()[0][0]
            executions.append(plan["Execution Time"])
            wal.append(plan["Plan"].get("WAL Bytes", 0))
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'devices_device'")
        indexes = cursor.fetchone()[0]
    median = statistics.median
    return {
        "python_cpu_ms": round(median(cpu), 3),
        "trivial_view_cpu_ms": round(median(ping), 3),
        "statement_round_trip_ms": round(median(synchronous), 3),
        "statement_round_trip_without_commit_wait_ms": round(median(asynchronous), 3),
        "commit_wait_ms": round(median(synchronous) - median(asynchronous), 3),
        "postgresql_execution_ms": round(median(executions), 3),
        "wal_bytes": round(median(wal)),
        "device_indexes": indexes,
    }


def _statement_arguments(device_id: str, version) -> list:
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from bench.fleet import bench_key
    from devices.keys import key_hash
    from firmware import handshake

    now = timezone.now()
    values = {"key_hash": key_hash(bench_key(device_id)), "failure_limit": settings.DEVICE_AUTH_FAILURES,
              "window_start": now - timedelta(seconds=settings.DEVICE_AUTH_WINDOW_SECONDS),
              **handshake._proof_args(device_id=device_id, version=version, now=now)}
    return [values[name] for name in handshake._fast_statement().arg_names]


def handshake_throughput(bench, *, seconds: int, connections: int, workers: int) -> Result:
    from django.test import Client
    from django.urls import Resolver404, resolve

    from bench.fleet import issue_bench_keys

    result = Result(scenario=f"handshake throughput vs trivial JSON view ({workers} gunicorn workers, "
                             f"{connections} connections, {seconds} s each)", group="load")
    result.target_ratio = TARGET_RATIO
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, device_id, firmware_version FROM devices_device WHERE product_id = %s AND id %% 97 = 5"
            " ORDER BY id LIMIT 1000",
            [bench.product.id],
        )
        rows = cursor.fetchall()
        issue_bench_keys(cursor, bench.product.id, [row[0] for row in rows])  # a fleet from before keys
    devices = [(device_id, version) for _pk, device_id, version in rows]
    path = HANDSHAKE
    try:
        resolve(path)
    except Resolver404:
        result.status, result.detail = "not available", f"no URL {path}"
        return result

    # Queries of a common handshake (the device's first may create its pending update), in process.
    body = json.dumps({"firmware_version": devices[0][1]})
    try:
        Client().post(path, data=body, content_type="application/json", HTTP_AUTHORIZATION=_authorization(devices[0][0]))
        with CaptureQueriesContext(connection) as captured:
            response = Client().post(path, data=body, content_type="application/json",
                                     HTTP_AUTHORIZATION=_authorization(devices[0][0]))
    except Exception as error:  # a half-built endpoint must not stop the run
        result.status, result.detail = "error", f"{type(error).__name__}: {error}"[:300]
        return result
    result.queries = len(captured.captured_queries)
    if response.status_code != 200 or "update" not in response.json():
        result.status, result.detail = "wrong answer", f"handshake answered HTTP {response.status_code}"
        return result

    parts = breakdown(devices)

    try:
        wrk = _ensure_wrk()
    except RuntimeError as error:
        result.status, result.detail = "not available", str(error)
        return result
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "console.wsgi:application", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, server)
        base = f"http://127.0.0.1:{port}"
        request = urllib.request.Request(base + path, data=body.encode(), method="POST", headers={
            "Authorization": _authorization(devices[0][0]), "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            json.loads(answer.read())
        # The port was free a moment ago; make sure it is our gunicorn that answers.
        with urllib.request.urlopen(base + "/bench/ping", timeout=10) as answer:
            if "gunicorn" not in answer.headers.get("Server", ""):
                raise RuntimeError(f"another server answers on port {port}")
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder, "handshake.lua")
            script.write_text(_lua_script(devices))
            # Warm every worker's connection and caches before either measurement.
            _run_wrk(wrk, base + "/bench/ping", seconds=2, connections=connections)
            _run_wrk(wrk, base + path, seconds=2, connections=connections, script=str(script))
            ping = _run_wrk(wrk, base + "/bench/ping", seconds=seconds, connections=connections)
            handshake = _run_wrk(wrk, base + path, seconds=seconds, connections=connections, script=str(script))
    except (RuntimeError, urllib.error.URLError, subprocess.TimeoutExpired) as error:
        result.status, result.detail = "error", str(error)
        return result
    finally:
        stop_server(server)

    if handshake["non_2xx"] or not handshake["requests_per_second"]:
        result.status = "wrong answer"
        result.detail = (f"{handshake['non_2xx']} handshakes answered non-2xx {handshake['socket_errors']}"
                         f" {handshake['output'][-300:]}")
        return result
    result.throughput_ratio = handshake["requests_per_second"] / ping["requests_per_second"]
    result.samples_ms = [_to_ms(handshake["latency"].get("50"))]
    result.detail = (f"handshake {handshake['requests_per_second']:.0f} req/s (p50 {handshake['latency'].get('50')}, "
                     f"p99 {handshake['latency'].get('99')}); trivial view {ping['requests_per_second']:.0f} req/s "
                     f"(p50 {ping['latency'].get('50')}); ratio {result.throughput_ratio:.2f}. In process, per "
                     f"handshake: {parts['python_cpu_ms']} ms CPU in Django/ninja/psycopg (trivial view "
                     f"{parts['trivial_view_cpu_ms']} ms), one statement {parts['statement_round_trip_ms']} ms "
                     f"round trip of which {parts['commit_wait_ms']} ms waiting for the commit, PostgreSQL executing "
                     f"{parts['postgresql_execution_ms']} ms and writing {parts['wal_bytes']} B of WAL "
                     f"({parts['device_indexes']} indexes on devices)")
    result.extra = {
        "handshake_rps": handshake["requests_per_second"],
        "ping_rps": ping["requests_per_second"],
        "handshake_latency": handshake["latency"],
        "ping_latency": ping["latency"],
        "workers": workers,
        "connections": connections,
        "seconds": seconds,
        "breakdown": parts,
    }
    return result


def stop_server(server: subprocess.Popen) -> None:
    """Stop gunicorn: politely, then for good after 15 s."""
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
