# The two commands of the README: `make run` (embedded product) and `make test` (the suite).
# Both set up what they need on a fresh machine: the virtualenv and packages here; the tests
# start PostgreSQL and Kafka themselves (tests/infrastructure.py) unless SALDO_* points at some.

VENV    ?= .venv
PYTHON  ?= python3
STAMP   := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install run test lint infra-up infra-down bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/saldo embedded

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check libs services tests $(wildcard bench)
	$(VENV)/bin/mypy libs services

infra-up:
	@deploy/local/up.sh

infra-down:
	@deploy/local/down.sh

bench: install
	$(VENV)/bin/pip install --quiet -e '.[bench]'
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
