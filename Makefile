# KeyMedic — every target sets up what it needs first, so a fresh clone only needs `make run` or `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
PY        := $(BIN)/python
export PYTHONDONTWRITEBYTECODE := 1
# TensorFlow prints pages of C++ start-up chatter; keep warnings and errors only.
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_WARN_20 := 1
# endpoints.yml substitutes these; `keymedic run` and the tests set the same defaults (bot/launcher.py).
export RASA_PORT ?= 5005
export ACTIONS_PORT ?= 5055
export SANDBOX_PORT ?= 8765
export KEYMEDIC_TRACKER_DB ?= $(CURDIR)/var/tracker.db
export KEYMEDIC_TRACKER_STORE ?= rasa_plugins.tracker_store.WindowedSQLTrackerStore

.PHONY: help setup lock fmt lint validate train test test-unit test-integration test-e2e test-faults test-conversations run run-cluster chat bench clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

# The development venv: the production lock plus the tools (requirements-dev.lock is compiled under the
# production lock's pins, so both resolve every shared package to the same version).
$(STAMP): requirements-dev.lock pyproject.toml scripts/find-python
	@echo "setup: creating $(VENV) with $$(scripts/find-python)"
	@rm -rf $(VENV)
	@"$$(scripts/find-python)" -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24,<26"
	@$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@$(PY) -m pip check
	@touch $(STAMP)
	@echo "setup: done"

# The chat widget's npm packages (socket.io-client), from widget/package-lock.json; npm ci rewrites
# node_modules/.package-lock.json, so it doubles as the stamp.
WIDGET_STAMP := widget/node_modules/.package-lock.json
$(WIDGET_STAMP): widget/package.json widget/package-lock.json
	@command -v npm >/dev/null || { echo "setup: the chat widget needs Node.js 18+ and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	@echo "setup: npm ci in widget/"
	@cd widget && npm ci --no-audit --no-fund --loglevel=error
	@touch $(WIDGET_STAMP)

setup: $(STAMP) $(WIDGET_STAMP) ## create .venv from requirements-dev.lock and widget/node_modules (only when missing or stale)

lock: ## re-resolve the production (requirements.lock) and development (requirements-dev.lock) locks (needs PyPI)
	@test -x $(BIN)/uv || $(PY) -m pip install --quiet uv
	@# Production: what deploy/Dockerfile installs, without the dev extra (no pytest, playwright, ccxt, mypy).
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.10 \
		--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" -o requirements.lock
	@# Development: the dev extra on top, constrained to the production pins.
	$(BIN)/uv pip compile pyproject.toml --extra dev --constraint requirements.lock --generate-hashes \
		--python-version 3.10 --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" \
		-o requirements-dev.lock

fmt: $(STAMP) ## format and auto-fix
	$(BIN)/ruff format bot actions channels tests scripts
	$(BIN)/ruff check --fix bot actions channels tests scripts

lint: $(STAMP) ## ruff, mypy (strict on bot/) and the import layers (import-linter, .importlinter)
	$(BIN)/ruff format --check bot actions channels tests scripts rasa_plugins
	$(BIN)/ruff check bot actions channels tests scripts rasa_plugins
	$(BIN)/mypy --strict bot
	$(BIN)/mypy actions channels scripts rasa_plugins
	$(BIN)/lint-imports

validate: $(STAMP) ## rasa data validate, warnings are failures
	PYTHONWARNINGS=ignore::DeprecationWarning $(BIN)/rasa data validate --fail-on-warnings --quiet

train: $(STAMP) ## train the model when data, domain or config changed
	$(BIN)/keymedic train

test-unit: $(STAMP) ## fast tests: no sockets, no model
	$(BIN)/pytest tests/unit -q

test-integration: $(STAMP) $(WIDGET_STAMP) ## real servers and databases on this machine
	scripts/ensure-services
	$(BIN)/pytest tests/integration -q

test-e2e: train $(WIDGET_STAMP) ## the real Rasa and action servers over HTTP, with the held-out NLU set
	scripts/ensure-services
	scripts/ensure-chromium
	$(BIN)/pytest tests/e2e -q

test-faults: train ## break each process, the database and the input; what the user sees (docs/reliability.md)
	$(BIN)/pytest tests/faults -q -s

test-conversations: train ## Rasa conversation tests on the current model
	$(PY) -m scripts.conversation_tests

# Both tracker stores (issue 18): the e2e modules marked `both_stores` run on the windowed store and again on
# Rasa's own (the ones a store can change; tests/e2e/conftest.py says which and why, and why not all), and
# scripts.conversation_tests replays the conversation tests through both (scripts/conversation_stores.py).
test: lint validate train $(WIDGET_STAMP) ## everything CI runs
	scripts/ensure-services
	scripts/ensure-chromium
	$(BIN)/pytest -q
	$(PY) -m scripts.conversation_tests

run: train $(WIDGET_STAMP) ## start the whole assistant on local defaults
	$(BIN)/keymedic run

run-cluster: train ## several Rasa replicas behind HAProxy, on PostgreSQL and Redis (docs/deploy.md)
	scripts/ensure-services
	$(BIN)/keymedic cluster

chat: train ## talk to the assistant in this terminal
	@mkdir -p var
	@# Rasa calls the action server of `make run` with that run's token (endpoints.yml, var/keys/actions.token).
	KEYMEDIC_ACTIONS_TOKEN="$$(cat var/keys/actions.token 2>/dev/null)" $(BIN)/rasa shell --model "$$($(BIN)/keymedic train --print-path)" --endpoints endpoints.yml

bench: train ## measure speed and memory next to Rasa's starter bot
	$(PY) -m scripts.bench

clean: ## remove the virtualenv, models and local state
	rm -rf $(VENV) models/*.tar.gz var .pytest_cache .mypy_cache .ruff_cache
