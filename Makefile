# Weekly Trends. Quick start: `make run`, `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install install-test run migrate demo test test-fast lint format bench lock freeze-sql schema clean-db catalogs axe oidc-provider

# Running needs only requirements/run.txt; the tests add requirements/test.txt. Both are locks of
# the exact versions CI tested (`make lock` rewrites them); pyproject.toml keeps lower bounds.
$(RUN_STAMP): pyproject.toml requirements/run.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/run.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP) requirements/test.txt
	$(BIN)/pip install --quiet -r requirements/test.txt
	touch $@

install: $(RUN_STAMP)

install-test: $(TEST_STAMP)

## Re-resolves the locks from pyproject.toml (newest versions within its bounds); commit both files.
lock: $(RUN_STAMP)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 --no-header -q -o requirements/test.txt
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --no-header -q -c requirements/test.txt -o requirements/run.txt

migrate: install
	$(BIN)/weekly-trends migrate

## Starts the embedded server (or uses DATABASE_URL), migrates, loads the demo school, leaves a demo invite and
## digest in ./maildir (never sent anywhere) and serves. WEEKLY_TRENDS_EMBEDDED_DB=1: only here does a missing
## DATABASE_URL start the bundled PostgreSQL; elsewhere it is exit status 2 (the tests start servers of their own).
run: export WEEKLY_TRENDS_EMBEDDED_DB = 1
run: install
	$(BIN)/weekly-trends migrate
	$(BIN)/weekly-trends demo-data --port $${PORT:-5000}
	$(BIN)/weekly-trends demo-mail --port $${PORT:-5000}
	WEEKLY_TRENDS_METRICS_ALLOW_FROM=$${WEEKLY_TRENDS_METRICS_ALLOW_FROM:-127.0.0.1} $(BIN)/flask --app web run --port $${PORT:-5000}

test: install-test
	@[ -f $(AXE) ] || ! command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory axe || echo "axe-core could not be installed: the browser tests will skip (fail under CI=true)"
	@[ -f $(OIDC_PROVIDER) ] || ! command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory oidc-provider || echo "oidc-provider could not be installed: the staff sign-in tests will skip (fail under CI=true)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ruff: the lint rules and the format pyproject.toml sets, over the whole tree; lint-imports: the import
## contracts of web/ ([tool.importlinter] in pyproject.toml). CI runs it first.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo

## Rewrites the tree in ruff's format and applies its safe fixes.
format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-fast: install-test
	$(BIN)/python -m pytest -x -q -m "not slow" $(PYTEST_ARGS)

## The district benchmark (18 min on 2 quiet cores, 37 min on a busy day; BENCH_ARGS="--students 2000": under 2 min). The HTTP
## section needs wrk: installed here from Debian when missing and run as root, else skipped by the bench.
bench: install-test
	@command -v wrk >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || apt-get install -y -qq wrk >/dev/null 2>&1 \
	  || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null 2>&1) || echo "wrk could not be installed"
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## Copies FILES (default: every db/functions/*.sql) into the revision REV, freezing what it installs:
## make freeze-sql REV=0002 FILES=db/functions/410_staff_tokens.sql
FILES ?= $(wildcard db/functions/*.sql)
freeze-sql:
	test -n "$(REV)" && test -d db/migrations/versions/$(REV)
	cp $(FILES) db/migrations/versions/$(REV)/

## Rewrites db/schema.sql, the whole schema at head, from a scratch database migrated on a private embedded
## server (tests/test_schema_file.py fails when a migration changes the schema and this was not run).
schema: install
	$(BIN)/python -m db.schema_dump

## Stops the embedded server if it runs (never starts one), then deletes its data, saying what it did.
clean-db: install
	$(BIN)/weekly-trends stop-db --delete

## Extracts the parents' strings (views, templates) into web/translations/messages.pot, updates every
## language's catalog from it and compiles the .mo files (committed, so a fresh clone runs as is).
## A new language: $(BIN)/pybabel init -i web/translations/messages.pot -d web/translations -l <code>
LOCALES_DIR := web/translations
catalogs: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
	  --project weekly-trends --omit-header -o $(LOCALES_DIR)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALES_DIR)/messages.pot -d $(LOCALES_DIR) --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d $(LOCALES_DIR) --statistics

## axe-core (the npm package) for the browser tests' accessibility checks, in a git-ignored directory.
AXE := tests/.node/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE):
	npm install --silent --no-audit --no-fund --prefix tests/.node axe-core@4

## npm's oidc-provider (OpenID Certified), the OpenID provider the staff sign-in tests start (tests/oidc/provider.js),
## at the version tests/oidc/package-lock.json locks, in tests/oidc/node_modules (git-ignored).
OIDC_PROVIDER := tests/oidc/node_modules/oidc-provider/package.json
oidc-provider: $(OIDC_PROVIDER)
$(OIDC_PROVIDER): tests/oidc/package.json tests/oidc/package-lock.json
	npm ci --silent --no-audit --no-fund --prefix tests/oidc
	touch $@
