# The two README commands: `make chat` (install + ingest the default corpus + start the chat)
# and `make test` (install with dev tools + the browser + run every check).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-dev browser chat test lint typecheck pytest eval bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# torch first and pinned: its CPU wheel lies on this machine's disk, and an unpinned torch
# pulled in by sentence-transformers would resolve a multi-GB CUDA build.
install: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core >/dev/null) \
	  || echo "chromium not installed: browser tests will be skipped"; }
	@# axe-core (npm) checks accessibility in the browser tests; kept inside the venv.
	@test -f $(VENV)/node_modules/axe-core/axe.min.js || \
	  npm install --prefix $(VENV) --no-save --no-audit --no-fund --silent axe-core@4.14.1

chat: install
	$(BIN)/assistant ingest
	$(BIN)/assistant serve

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest -q

test: install-dev browser lint typecheck pytest

eval:
	$(BIN)/assistant eval run --out eval-reports/latest

bench:
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/query.py

clean:
	rm -rf .assistant eval-reports
