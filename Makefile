# The two commands of the README. Each installs what it needs first (idempotent: pip runs again
# only when pyproject.toml changes).
PY ?= python3
PYTEST_ARGS ?=

.PHONY: bench test lint

.setup-stamp: pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	touch .setup-stamp

bench: .setup-stamp  ## the default suite (quick) on the built-in synthetic data; CUDA if present
	$(PY) run_bench.py

test: .setup-stamp  ## lint + the fast test selection (slow tests: make test PYTEST_ARGS="-m slow")
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: .setup-stamp
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
