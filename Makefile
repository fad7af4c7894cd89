# metrics-source: `make run` runs the whole system, `make test` the whole test suite.
# Both start an embedded PostgreSQL and Redis under $(DATA_DIR) where DATABASE_URL /
# REDIS_URL are not set, and use the given servers where they are.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_DIR ?= $(or $(METRICS_SOURCE_DATA_DIR),.data)
# The suite runs in two processes (pytest-xdist): each gets its own test database.
PYTEST_ARGS ?= -n 2
EMBEDDED := $(PY) -m metrics_source.runtime.embedded --

.DEFAULT_GOAL := help
.PHONY: help install run test bench bench-table-copy bench-forward bench-dashboard bench-slow-clients lint typecheck lock

help:
	@echo "make install    create $(VENV) and install the locked dependencies"
	@echo "make run        run the web server, a Celery worker and Celery beat"
	@echo "make test       run the test suite (PYTEST_ARGS=... to choose tests)"
	@echo "make bench      ingest throughput beside a COPY baseline (BENCH_ARGS=...)"
	@echo "make bench-table-copy  what the events table and each index cost to COPY into"
	@echo "make bench-forward  forwarding throughput beside the receiver's ceiling"
	@echo "make bench-dashboard  page times at 5 million events beside a raw GROUP BY"
	@echo "make bench-slow-clients  the web front against a bare gunicorn: ingest and /healthz under slow clients"
	@echo "make lint       ruff check, ruff format --check and mypy"
	@echo "make typecheck  mypy"
	@echo "make lock       regenerate requirements.lock (everything) and requirements-runtime.lock (the image's) from pyproject.toml"

install: $(STAMP)

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "error: $(PYTHON) not found; install Python 3.11+ or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: metrics-source needs Python 3.11+, $(PYTHON) is " + sys.version.split()[0] + "; run make PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when the lock or the project metadata changed (or the venv is new). The
# project itself is built with the locked setuptools, not whatever PyPI has that day.
$(STAMP): requirements.lock pyproject.toml | $(PY)
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: $(VENV) has Python " + sys.version.split()[0] + "; delete it and run make install with PYTHON=python3.11 (or newer)")'
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

run: install
	METRICS_SOURCE_DATA_DIR=$(DATA_DIR) $(EMBEDDED) $(PY) manage.py serve

# The suite gets its own data dir: its embedded Redis then never feeds tasks to the worker
# of a `make run` going on at the same time, nor the other way round.
test: install
	@scripts/ensure-chromium || echo "warning: no /usr/bin/chromium; the browser tests will be skipped" >&2
	METRICS_SOURCE_DATA_DIR=$(DATA_DIR)/test $(EMBEDDED) $(PY) -m pytest $(PYTEST_ARGS)

# Events per second through a live server beside a PostgreSQL COPY baseline (BENCH_ARGS=...).
bench: install
	METRICS_SOURCE_DATA_DIR=$(DATA_DIR) $(EMBEDDED) $(PY) bench/ingest.py $(BENCH_ARGS)

# What loading the events table costs, index by index, beside the same bare COPY baseline.
bench-table-copy: install
	METRICS_SOURCE_DATA_DIR=$(DATA_DIR) $(EMBEDDED) $(PY) bench/table_copy.py $(BENCH_ARGS)

# Events per second forwarded to a local receiver beside the receiver's own ceiling.
bench-forward: install
	METRICS_SOURCE_DATA_DIR=$(DATA_DIR) $(EMBEDDED) $(PY) bench/forward.py $(BENCH_ARGS)

# Page times with millions of demo events beside a GROUP BY over raw events (BENCH_ARGS=...).
bench-dashboard: install
	METRICS_SOURCE_DATA_DIR=$(DATA_DIR) $(EMBEDDED) $(PY) bench/dashboard.py $(BENCH_ARGS)

# The web front and a bare gunicorn in one run: ingest throughput and CPU per event, and
# /healthz answer times with 20 slow clients.
bench-slow-clients: install
	METRICS_SOURCE_DATA_DIR=$(DATA_DIR) $(EMBEDDED) $(PY) bench/slow_clients.py $(BENCH_ARGS)

lint: typecheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy loads the settings, which only need these to be well-formed; nothing is contacted.
typecheck: install
	DATABASE_URL=postgres://typecheck@127.0.0.1:5432/typecheck \
	REDIS_URL=redis://127.0.0.1:6379/0 \
	SECRET_KEY=typecheck-only-key-0123456789abcdefghijklmnopqrstuvwxyz \
	$(VENV)/bin/mypy metrics_source dashboard

lock: | $(PY)
	@test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip compile --quiet pyproject.toml --extra dev --extra embedded \
	  --generate-hashes --python-version 3.11 -o requirements.lock
	$(VENV)/bin/uv pip compile --quiet pyproject.toml --generate-hashes \
	  --python-version 3.11 -o requirements-runtime.lock
