# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# OpenCode (npm package opencode-ai), driven by `orch agent run --executor opencode` and its tests.
OPENCODE_VERSION := 1.18.33
OPENCODE_DIR := .opencode
OPENCODE_STAMP := $(OPENCODE_DIR)/.installed-$(OPENCODE_VERSION)

.PHONY: install run test lint proto proto-check bench clean

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

install: $(STAMP) $(OPENCODE_STAMP)

run: install
	$(BIN)/orch up

test: install
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
	rm -rf $(VENV) $(OPENCODE_DIR) .mypy_cache .ruff_cache
