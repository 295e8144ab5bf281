# Zida — the two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
DATABASE ?= sqlite:///var/zida.db
TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
# Every `zida` command and test server compiles the sources once, not at each start (some machines set this).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint typecheck test-sqlite test-postgres reliability reliability-short clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Debian's Chromium, which the console's browser tests drive through Playwright (no `playwright install`, no
# browser download); skipped when it is there already.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$$([ "$$(id -u)" = 0 ] || echo sudo) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium'

# --no-compile: pip would compile every module of every package (half the install's time); the tests compile, once,
# only what they import.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python $(CHROMIUM)
	$(BIN)/pip install --quiet --no-compile -e '.[dev]'
	touch $(VENV)/.installed $@

# The real WeDa clients the conformance tests drive (npm registry, versions pinned by package-lock.json).
WEDA_JS := tests/conformance/weda/js
$(WEDA_JS)/node_modules/.installed: $(WEDA_JS)/package-lock.json
	npm ci --prefix $(WEDA_JS) --no-audit --no-fund --loglevel=error
	touch $@

# The official Node Stream SDK the events conformance tests drive (npm registry, pinned by package-lock.json).
EVENTS_JS := tests/conformance/events/js
$(EVENTS_JS)/node_modules/.installed: $(EVENTS_JS)/package-lock.json
	npm ci --prefix $(EVENTS_JS) --no-audit --no-fund --loglevel=error
	touch $@

## make run: virtualenv, install, migrate the embedded SQLite database, load the demo, serve on 127.0.0.1:8080
run: $(VENV)/.installed
	$(BIN)/zida migrate --database $(DATABASE)
	$(BIN)/zida load --database $(DATABASE) demo/bundle.yaml
	$(BIN)/zida serve --database $(DATABASE) --host $(HOST) --port $(PORT) --example demo/bundle.yaml

## make test: dev dependencies, lint, types, the whole suite on SQLite and on PostgreSQL (all at once, each one's
## output shown when it ends, with its 15 slowest steps; modules that never touch the database run once, in the
## SQLite suite: DATABASE_FREE in tests/conftest.py)
test: $(VENV)/.installed-dev $(WEDA_JS)/node_modules/.installed $(EVENTS_JS)/node_modules/.installed
	$(MAKE) --no-print-directory -j4 --output-sync=target lint typecheck test-sqlite test-postgres

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

test-sqlite: $(VENV)/.installed-dev $(WEDA_JS)/node_modules/.installed $(EVENTS_JS)/node_modules/.installed
	ZIDA_TEST_DATABASE=sqlite $(BIN)/pytest --durations=15

test-postgres: $(VENV)/.installed-dev $(WEDA_JS)/node_modules/.installed $(EVENTS_JS)/node_modules/.installed
	ZIDA_TEST_DATABASE=$(TEST_PG_URL) $(BIN)/pytest --durations=15

## make reliability: the proofs of README "Reliability" at full size (kill -9 x 20 rounds per database, PostgreSQL
## restarted under load, >= 20,000 fuzzed requests, upgrade from the previous release, a 10-minute soak); ~15 min
reliability: $(VENV)/.installed-dev
	RELIABILITY_SIZE=long RELIABILITY_PG_URL=$(TEST_PG_URL) $(BIN)/pytest -m reliability tests/reliability

## make reliability-short: the same proofs, CI-sized (3 rounds, >= 10,000 fuzzed requests, a 1-minute soak); ~5 min
reliability-short: $(VENV)/.installed-dev
	RELIABILITY_SIZE=short RELIABILITY_PG_URL=$(TEST_PG_URL) $(BIN)/pytest -m reliability tests/reliability

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache $(WEDA_JS)/node_modules $(EVENTS_JS)/node_modules
