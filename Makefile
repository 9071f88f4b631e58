PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test smoke lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tracker demo --dir .tracker-demo

test: $(STAMP)
	$(BIN)/pytest -q -n 2

# The built wheel, installed non-editable into a fresh virtualenv, run from an empty folder.
smoke:
	PY=$(PY) bash tests/smoke_installed.sh

lint: $(STAMP)
	$(BIN)/ruff check tracker jobs tests

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
