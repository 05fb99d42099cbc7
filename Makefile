# Every target sets itself up: a fresh clone needs only python3 (3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install browser run test test-sqlite test-postgres lint example-plugin bench bench-sync bench-crm clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## browser: Debian's chromium for the dashboard's browser test (Playwright drives it; no download)
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing Debian's chromium for tests/web/test_browser.py"; \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium \
		|| { $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; } \
		|| echo "WARNING: chromium could not be installed; the browser test will be skipped"; \
	fi

## run: the demo on the embedded SQLite default at http://127.0.0.1:8000 (migrates, seeds, serves)
run: install
	$(BIN)/krsync demo

## test: lint, then the whole suite on SQLite and, when reachable, PostgreSQL
test: install browser lint test-sqlite test-postgres

test-sqlite: install browser
	$(BIN)/pytest -q -n 2

## test-postgres: the tests that use the app's database, on PostgreSQL (the others gave their
## answer in test-sqlite; `KRSYNC_TEST_DATABASE_URL=... pytest` alone runs every test)
test-postgres: install browser
	KRSYNC_TEST_DATABASE_URL=$(PG_TEST_URL) KRSYNC_TEST_DATABASE_TESTS_ONLY=1 $(BIN)/pytest -q -n 2

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## example-plugin: examples/krsync-webinars' tests (krsync's contract suite) in a fresh venv
## outside the repository, krsync installed from this checkout as a wheel (examples/check-plugin.sh)
example-plugin:
	PYTHON=$(PYTHON) examples/check-plugin.sh

bench: install
	$(BIN)/python bench/api.py

bench-sync: install
	$(BIN)/python bench/sync.py

## bench-crm: krsync's hubspot connector against dlt's rest_api on a HubSpot-shaped local server
bench-crm: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/crm.py --sweep 0.05,0.10,0.20,0.40

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
