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
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "console.wsgi", "--workers", "2",
                 "--bind", f"127.0.0.1:{self.port}", "--timeout", "60", "--log-level", "warning"],
                cwd=PROJECT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"gunicorn exited: {self.log()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                assert time.monotonic() < deadline, f"gunicorn did not start listening: {self.log()}"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
