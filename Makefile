# Fleet Console. Quick start: `make run` serves the demo, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test test-fast venv clients bench soak clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --editable '.[test]'
	touch $@

# Particle's own clients, particle-api-js and particle-cli (pinned to 3.43.1, the newest release
# whose engines allow the Node.js 20 of Debian and CI), for the compatibility tests (which fail without them).
clients:
	@lock=tests/clients/package-lock.json; stamp=tests/clients/node_modules/.installed; \
	if [ -f $$lock ] && [ ! $$stamp -nt $$lock ]; then \
		if command -v npm >/dev/null 2>&1; then \
			npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error && touch $$stamp; \
		else echo "npm not found: the Particle client compatibility tests cannot run"; fi; \
	fi

# The console and, beside it, the task queue's worker (rollout checks, webhook deliveries), stopped together.
run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Fleet Console on http://127.0.0.1:$(PORT)/ (sign in with a user above); task worker running beside it"
	$(PY) manage.py db_worker --no-reload --interval 1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

test: venv clients
	$(VENV)/bin/pytest

# The quick local loop: everything but the schemathesis run (CI runs it, through make test).
test-fast: venv clients
	$(VENV)/bin/pytest -m "not schema"

bench: venv
	$(PY) -m bench $(BENCH_ARGS)

# Handshakes, batch edits and releases against gunicorn with faults, then a full account (database fleet_soak).
soak: venv
	$(PY) -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) tests/clients/node_modules db.sqlite3 media staticfiles test-artifacts
