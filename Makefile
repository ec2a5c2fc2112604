# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint proto proto-check bench clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

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
	rm -rf $(VENV) .mypy_cache .ruff_cache
