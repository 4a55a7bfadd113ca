# kefu — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test coverage lint conformance bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start kefu with a seeded demo app (SQLite file ./kefu.db, port 8080).
run: $(STAMP)
	$(BIN)/kefu demo

demo: run

## The whole test suite (PostgreSQL/Redis tests run when KEFU_TEST_PG / KEFU_TEST_REDIS are set).
test: $(STAMP)
	$(BIN)/pytest -q

## The delivery order (the Sans-I/O core of every connection) is covered branch for branch by its own tests.
coverage: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/domain/test_delivery.py --cov=kefu.domain.delivery --cov-branch \
		--cov-report=term-missing --cov-fail-under=100

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## The shared black-box checks of the public contract.
conformance: $(STAMP)
	../shared/conformance/run

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
