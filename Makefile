# Every target sets itself up: a fresh clone needs only python3 (3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install run test test-sqlite test-postgres lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## run: the product on the embedded SQLite default at http://127.0.0.1:8000
run: install
	$(BIN)/krsync migrate
	$(BIN)/krsync serve

## test: lint, then the whole suite on SQLite and, when reachable, PostgreSQL
test: install lint test-sqlite test-postgres

test-sqlite: install
	$(BIN)/pytest -q -n 2

test-postgres: install
	KRSYNC_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q -n 2

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
