# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# OpenCode (npm package opencode-ai), driven by `orch agent run --executor opencode` and its tests.
OPENCODE_VERSION := 1.18.33
OPENCODE_DIR := .opencode
OPENCODE_STAMP := $(OPENCODE_DIR)/.installed-$(OPENCODE_VERSION)
# The browser dashboard: npm ci from the committed lock, then a Vite build the gateway serves.
DASHBOARD := dashboard
DASHBOARD_STAMP := $(DASHBOARD)/node_modules/.installed
DASHBOARD_BUILD := $(DASHBOARD)/dist/index.html
DASHBOARD_SOURCES := $(shell find $(DASHBOARD)/src $(DASHBOARD)/public -type f 2>/dev/null) \
	$(wildcard $(DASHBOARD)/*.html $(DASHBOARD)/*.ts $(DASHBOARD)/*.js $(DASHBOARD)/*.json)
# The browser tests drive Debian's chromium (no browser download); apt needs root.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install run test lint proto proto-check bench clean dashboard chromium

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# --no-save and --no-package-lock: nothing that records registry URLs is written.
$(OPENCODE_STAMP):
	@command -v npm >/dev/null || (echo "npm (Node.js 18+) is needed to install OpenCode" && exit 1)
	npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
		--prefix $(OPENCODE_DIR) opencode-ai@$(OPENCODE_VERSION)
	@test -x $(OPENCODE_DIR)/node_modules/.bin/opencode
	@touch $@

$(DASHBOARD_STAMP): $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	@command -v npm >/dev/null || (echo "npm (Node.js 20.19+) is needed to build the dashboard" && exit 1)
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(DASHBOARD_BUILD): $(DASHBOARD_STAMP) $(DASHBOARD_SOURCES)
	cd $(DASHBOARD) && npm run build --silent
	@touch $@

dashboard: $(DASHBOARD_BUILD)

chromium:
	@command -v chromium >/dev/null || ( $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium )

install: $(STAMP) $(OPENCODE_STAMP) dashboard

run: install
	$(BIN)/orch up

test: install chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd protos && ../$(BIN)/buf lint

proto: install
	$(BIN)/python protos/generate.py

# Fails when the committed stubs differ from what `make proto` generates.
proto-check: proto
	@git diff --exit-code --stat -- services/common/orchestrator/api || \
		(echo "generated protos are stale: run 'make proto' and commit" && exit 1)
	@test -z "$$(git status --porcelain -- services/common/orchestrator/api)" || \
		(echo "generated protos are untracked: run 'make proto' and commit" && exit 1)

bench: install
	$(BIN)/python -m orchestrator.bench

clean:
	rm -rf $(VENV) $(OPENCODE_DIR) .mypy_cache .ruff_cache $(DASHBOARD)/node_modules $(DASHBOARD)/dist
