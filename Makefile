# `make run` and `make test` are all a fresh clone needs: each makes the virtualenv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
# Runs a command with DATABASE_URL / REDIS_URL set, starting embedded servers for unset ones.
LOCAL := $(PY) -m multica.localrun exec --

.PHONY: help run sweep test lint format bench install
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(INSTALLED): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(INSTALLED) ## create the virtualenv and install requirements.txt

run: $(INSTALLED) ## web (admin + WebSocket), worker and beat on 127.0.0.1:8000 (PORT)
	$(PY) -m multica.localrun run

sweep: $(INSTALLED) ## both sweeps now, on make run's database (ARGS="--dry-run", "--json", ...)
	$(LOCAL) $(PY) manage.py sweep $(ARGS)

# Local runs and tests use the debug defaults (a local SECRET_KEY); production sets its own.
run sweep test bench: export DEBUG ?= 1

test: $(INSTALLED) lint ## lint, migrations check and the test suite
	$(LOCAL) sh -c '$(PY) manage.py makemigrations --check --dry-run && $(PY) -m pytest $(PYTEST_ARGS)'

lint: $(INSTALLED) ## ruff check, format check and the import layers (pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(INSTALLED) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(INSTALLED) ## the benchmarks in bench/, each printing a table
	$(LOCAL) $(PY) -m bench.sweep
	$(LOCAL) $(PY) -m bench.events
	$(LOCAL) $(PY) -m bench.admin
	$(LOCAL) $(PY) -m bench.heartbeats
	$(LOCAL) $(PY) -m bench.board
