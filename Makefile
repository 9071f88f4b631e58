PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-sdk smoke lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tracker demo --dir .tracker-demo

test: $(STAMP)
	$(BIN)/pytest -q -n 2

# The SageMaker Python SDK (the sdk extra) pins older packaging, attrs and rich than the dev
# tools: its test (a real Estimator(...).fit against a moto server) runs in a venv of its own.
test-sdk:
	$(PY) -m venv .venv-sdk
	.venv-sdk/bin/pip install --quiet --upgrade pip
	.venv-sdk/bin/pip install --quiet -e '.[dev,sdk]'
	# smdebug-rulesconfig (a dependency of the SDK) ships a top-level `tests` package that
	# would shadow this repository's tests/.
	rm -rf .venv-sdk/lib/python*/site-packages/tests
	.venv-sdk/bin/pytest -q -p no:cacheprovider tests/test_guard_sdk.py

# The built wheel, installed non-editable into a fresh virtualenv, run from an empty folder.
smoke:
	PY=$(PY) bash tests/smoke_installed.sh

lint: $(STAMP)
	$(BIN)/ruff check tracker jobs tests

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .venv-sdk .pytest_cache build *.egg-info
