# Weekly Trends. Quick start: `make run`, `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run migrate demo test test-fast bench freeze-sql clean-db

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/weekly-trends migrate

## Starts the embedded server (or uses DATABASE_URL), migrates, loads the demo school, leaves a demo invite and
## digest in ./maildir (never sent anywhere) and serves.
run: install
	$(BIN)/weekly-trends migrate
	$(BIN)/weekly-trends demo-data --port $${PORT:-5000}
	$(BIN)/weekly-trends demo-mail --port $${PORT:-5000}
	$(BIN)/flask --app web run --port $${PORT:-5000}

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -x -q -m "not slow" $(PYTEST_ARGS)

## The district benchmark (~15 min on 2 cores; BENCH_ARGS="--students 2000": under 2 min). The HTTP
## section needs wrk: installed here from Debian when missing and run as root, else skipped by the bench.
bench: install
	@command -v wrk >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || apt-get install -y -qq wrk >/dev/null 2>&1 \
	  || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null 2>&1) || echo "wrk could not be installed"
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## Copies FILES (default: every db/functions/*.sql) into the revision REV, freezing what it installs:
## make freeze-sql REV=0002 FILES=db/functions/410_staff_tokens.sql
FILES ?= $(wildcard db/functions/*.sql)
freeze-sql:
	test -n "$(REV)" && test -d db/migrations/versions/$(REV)
	cp $(FILES) db/migrations/versions/$(REV)/

## Stops the embedded server and deletes its data.
clean-db:
	-$(BIN)/python -c "from web.embedded import start_server; start_server().cleanup()" 2>/dev/null
	rm -rf .pgdata
