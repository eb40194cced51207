# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,redis,postgres,google,outlook]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/steadyhand demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check worker connectors tests bench
	$(BIN)/ruff format --check worker connectors tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.installed-test
	$(BIN)/python bench/analysis.py
	$(BIN)/python bench/planning.py
	$(BIN)/python bench/emails.py
	$(BIN)/python bench/hostile.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/serve.py --repeat 3
	$(BIN)/python bench/dashboard.py

clean:
	rm -rf $(VENV) var build dist .pytest_cache .mypy_cache .ruff_cache
