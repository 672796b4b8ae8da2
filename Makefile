# Two commands do all the set-up: `make run` (the app) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
ARGS ?=

.PHONY: run serve-lan test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# The pinned requirements first, then the project itself (editable, without resolving its
# dependencies again): the `sandbox` command, and `sandbox` importable from anywhere.
$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q -e . --no-deps
	touch $@

# The tests also install the optional Ray backend (requirements-ray.txt), so that its tests
# run against a real local cluster instead of being skipped, and the optional Hugging Face
# kind (requirements-hf.txt), so that its experiments are loaded by transformers in the tests.
$(DEV_STAMP): requirements.txt requirements-dev.txt requirements-ray.txt requirements-hf.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt -r requirements-ray.txt -r requirements-hf.txt
	$(BIN)/pip install -q -e . --no-deps
	touch $(STAMP) $@

## Start the app on the models shipped in models/ (localhost:8501). ARGS="--models-dir D" to change,
## ARGS="--ray ADDRESS|auto" for workers on a Ray cluster (pip install -r requirements-ray.txt).
run: $(STAMP)
	$(BIN)/streamlit run streamlit_app.py -- $(ARGS)

## Serve the app to the LAN (all interfaces). Set SANDBOX_TOKEN to ask visitors for a token.
serve-lan: $(STAMP)
	$(BIN)/streamlit run streamlit_app.py --server.address 0.0.0.0 -- $(ARGS)

## Run the linter, the import contracts (pyproject.toml, [tool.importlinter]) and the whole
## test suite (library, AppTest pages, browser tests).
test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .cache test-artifacts
