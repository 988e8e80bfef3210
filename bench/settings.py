"""Settings for benchmark runs: the project's settings on the benchmark's own database.

The database is `BENCH_DATABASE_URL` (default: fleet_bench on the local PostgreSQL; with
`--fleet customer`, the same name ending in `_customer`), never the one in DATABASE_URL, so a run
cannot touch a development or test database.
"""

import os

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fleet_bench"
# The customer-built fleet (`--fleet customer`) lives beside the generated one, in <name>_customer.
SUFFIX = "_customer" if os.environ.get("BENCH_FLEET") == "customer" else ""
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL) + SUFFIX

from console.settings import *  # noqa: E402,F403

DEBUG = False
ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
# Rows that a scenario reports as "not available" would otherwise log a warning per request.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "ERROR"},
    "loggers": {name: {"level": "CRITICAL"} for name in ("django.request", "django.server", "django.security")},
}
