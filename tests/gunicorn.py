"""gunicorn serving the project, as the README's production command runs it, against the test
database: for what only a production server shows (chunked request bodies, Particle's clients).

Use the `gunicorn_server` fixture (tests/conftest.py) in tests that commit their data
(`transactional_db`), so the server's own connections see it.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

PROJECT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(*, env: dict, port: int, log_path: Path, workers: int) -> subprocess.Popen:
    """gunicorn serving console.wsgi with `env`, once it listens on `port`."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "console.wsgi:application", "--workers", str(workers),
             "--bind", f"127.0.0.1:{port}", "--timeout", "60", "--log-level", "warning"],
            cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, f"gunicorn exited: {log_path.read_text(errors='replace')[-3000:]}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            assert time.monotonic() < deadline, "gunicorn did not start listening"
            time.sleep(0.1)


def stop(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class GunicornServer:
    def __init__(self, *, media_root: Path, log_path: Path):
        db = connection.settings_dict
        if connection.vendor != "postgresql":
            raise RuntimeError("gunicorn serves the PostgreSQL test database only (SQLite's is in memory)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "DEBUG": "0",
            "MEDIA_ROOT": str(media_root),
        }
        self.process = None

    def start(self) -> "GunicornServer":
        self.process = start(env=self.env, port=self.port, log_path=self.log_path, workers=2)
        return self

    def stop(self) -> None:
        stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
