# The registry's commands. `make run` serves it; `make test` checks it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST    ?= 127.0.0.1
PORT    ?= 5000
WORKERS ?= 2
THREADS ?= 1
# Seconds a worker may spend on one request before gunicorn kills it: kept above the
# database's own bounds (registry/config.py: a hung database is a 503 within 15 s).
TIMEOUT ?= 30
POSTGRES_URL ?= $(or $(DATABASE_URL),postgresql://postgres@127.0.0.1:5432/postgres)

.PHONY: run test lint typecheck security pytest pytest-sqlite pytest-postgres bench soak fuzz shell-tools go-tools \
	openapi lock migrate clean browser-tools screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime dependencies only, pinned by constraints.txt.
$(VENV)/.run: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e .
	touch $@

# Everything the tests need as well.
$(VENV)/.dev: $(VENV)/.run
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

run: $(VENV)/.run
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi registry seed
	@echo "registry: serving on http://$(HOST):$(PORT)/ (API docs at /docs)."
	@echo "registry: create the first admin with"
	@echo "  $(BIN)/flask --app wsgi registry create-user you@example.org --role admin --organisation 'Your organisation' --password-stdin"
	@echo "registry: the delivery worker (webhooks, mail) runs beside it and stops with it."
	@export REGISTRY_PUBLIC_URL=$${REGISTRY_PUBLIC_URL:-http://$(HOST):$(PORT)}; \
	$(BIN)/flask --app wsgi registry deliver & deliver=$$!; \
	trap 'kill $$deliver 2>/dev/null; wait $$deliver' EXIT INT TERM; \
	REGISTRY_SESSION_COOKIE_SECURE=$${REGISTRY_SESSION_COOKIE_SECURE:-0} \
	$(BIN)/gunicorn --workers $(WORKERS) --threads $(THREADS) --bind $(HOST):$(PORT) \
		--timeout $(TIMEOUT) --no-control-socket --access-logfile - --access-logformat '' --worker-tmp-dir /dev/shm wsgi:app

migrate: $(VENV)/.run
	$(BIN)/flask --app wsgi db upgrade

test: lint typecheck security pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# bandit: no finding of high severity; pip-audit: no known vulnerability in the locked
# dependencies (an advisory database that cannot be reached is reported, not hidden).
security: $(VENV)/.dev
	$(BIN)/bandit -q -r registry --severity-level high
	$(BIN)/python -m tests.support.audit_dependencies constraints.txt

# The two databases' passes run side by side (a core each); each pass's output is printed
# whole when it ends, and the run fails if either does.
pytest: $(VENV)/.dev browser-tools shell-tools go-tools
	@echo "pytest: the SQLite and PostgreSQL passes run side by side; each prints when it ends"
	@$(MAKE) --no-print-directory -j2 --output-sync=target pytest-sqlite pytest-postgres

pytest-sqlite: $(VENV)/.dev browser-tools shell-tools go-tools
	REGISTRY_TEST_DB=sqlite $(BIN)/pytest $(PYTEST_ARGS)

# On PostgreSQL when one answers; with REQUIRE_POSTGRES=1 a missing one fails the run.
pytest-postgres: $(VENV)/.dev browser-tools shell-tools go-tools
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(POSTGRES_URL)" 2>/dev/null; then \
		REGISTRY_TEST_DB=postgresql REGISTRY_TEST_POSTGRES_URL="$(POSTGRES_URL)" $(BIN)/pytest $(PYTEST_ARGS); \
	elif [ "$(REQUIRE_POSTGRES)" = "1" ]; then \
		echo "PostgreSQL is required (REQUIRE_POSTGRES=1) but $(POSTGRES_URL) does not answer" >&2; exit 1; \
	else \
		echo "PostgreSQL not reachable at $(POSTGRES_URL): the PostgreSQL pass was skipped"; \
	fi

# Browser tests: Debian's Chromium and axe-core (pinned in package-lock.json). Where they
# cannot be installed the tests skip and say why; REQUIRE_BROWSER=1 makes that a failure.
browser-tools: node_modules/.package-lock.json
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core) >/dev/null \
	    || echo "Chromium could not be installed: the browser tests will be skipped"; \
	  else echo "Chromium is not installed (apt-get install chromium): the browser tests will be skipped"; fi; }

# The README's walkthrough, which tests/test_readme.py runs as written, uses curl and jq.
shell-tools:
	@for tool in curl jq; do command -v $$tool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$tool) >/dev/null \
	    || echo "$$tool could not be installed: tests/test_readme.py will fail"; \
	  else echo "$$tool is not installed (apt-get install $$tool): tests/test_readme.py will fail"; fi; }; \
	done

# The independent log verifier (tests/test_independent_verifier.py) is Go around Go's
# checksum database packages, golang.org/x/mod/sumdb, from Debian's packages.
go-tools:
	@command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-golang-x-mod-dev) >/dev/null \
	    || echo "Go could not be installed: tests/test_independent_verifier.py will fail"; \
	  else echo "Go is not installed (apt-get install golang-go golang-golang-x-mod-dev): tests/test_independent_verifier.py will fail"; fi; }

node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --silent; \
	else echo "npm is not installed: the browser tests will be skipped"; fi

# Refresh docs/screenshots/ from the browser tests.
screenshots: $(VENV)/.dev browser-tools
	REGISTRY_DOCS_SCREENSHOTS=1 REGISTRY_TEST_DB=sqlite $(BIN)/pytest -q tests/browser

bench: $(VENV)/.dev
	$(BIN)/python -m bench $(BENCH_ARGS)

# A mixed load against gunicorn on PostgreSQL: readers, voters, editors, decision-makers.
SOAK_SECONDS ?= 120
soak: $(VENV)/.dev
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

# schemathesis over every operation as every role, with many more examples than make test
# gives it (a random seed each run; the failure says how to replay it).
FUZZ_EXAMPLES ?= 200
FUZZ_DB ?= postgresql
fuzz: $(VENV)/.dev
	REGISTRY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) REGISTRY_TEST_DB=$(FUZZ_DB) \
	REGISTRY_TEST_POSTGRES_URL="$(POSTGRES_URL)" $(BIN)/pytest -q tests/test_schemathesis.py $(PYTEST_ARGS)

openapi: $(VENV)/.run
	$(BIN)/flask --app wsgi openapi write --format yaml openapi/openapi.yaml

# Re-resolve the pinned versions from pyproject.toml's bounds.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable --disable-pip-version-check | sort > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) instance .mypy_cache .ruff_cache node_modules test-output
