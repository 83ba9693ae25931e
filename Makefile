# The two commands: `make demo` (example DAGs against the embedded emulator) and `make test` (what CI runs).
# Everything installs from PyPI into local virtualenvs, with uv (bootstrapped by pip) for speed.

PYTHON ?= python3
AIRFLOW3_VERSION ?= 3.3.2
AIRFLOW2_VERSION ?= 2.11.2
PYTEST_ARGS ?=

TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
VENV := .venv
VENV2 := .venv-airflow2

.PHONY: help demo test lint test-airflow3 test-airflow2 docs bench bench-smoke clean

help:
	@echo "make demo           run every example DAG against the embedded emulator (Airflow $(AIRFLOW3_VERSION))"
	@echo "make test           ruff, mypy, docs, pytest on Airflow $(AIRFLOW3_VERSION), then pytest on Airflow $(AIRFLOW2_VERSION)"
	@echo "make lint           ruff check, ruff format --check, mypy"
	@echo "make docs           build the documentation site into docs/_build/html (warnings are errors)"
	@echo "make bench          benchmarks against the HTTP provider on the emulator (about 6 minutes); bench-smoke: tiny sizes (under a minute)"
	@echo "make test-airflow3  pytest on Airflow 3 only; make test-airflow2: on Airflow 2.11 only"
	@echo "make clean          remove the virtualenvs and build output"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv

# A stamp per environment: reinstalled when pyproject.toml changes, otherwise free.
$(VENV)/.installed: pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(VENV)/bin/python -e ".[dev,docs,bench]" "apache-airflow==$(AIRFLOW3_VERSION)"
	touch $@

$(VENV2)/.installed: pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV2)
	$(UV) pip install --quiet --python $(VENV2)/bin/python -e ".[dev,bench]" "apache-airflow==$(AIRFLOW2_VERSION)"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/python scripts/demo.py

lint: $(VENV)/.installed
	@echo "== ruff, mypy =="
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-airflow3: $(VENV)/.installed
	@echo "== pytest on Airflow $(AIRFLOW3_VERSION) =="
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-airflow2: $(VENV2)/.installed
	@echo "== pytest on Airflow $(AIRFLOW2_VERSION) =="
	$(VENV2)/bin/python -m pytest $(PYTEST_ARGS)

# Warnings are errors; then every public class must be in the API reference.
docs: $(VENV)/.installed
	@echo "== docs =="
	rm -rf docs/_build
	$(VENV)/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	$(VENV)/bin/python scripts/check_docs_reference.py docs/_build/html

bench: $(VENV)/.installed
	$(VENV)/bin/python -m bench

bench-smoke: $(VENV)/.installed
	$(VENV)/bin/python -m bench --smoke

test: lint docs test-airflow3 test-airflow2

clean:
	rm -rf $(TOOLS) $(VENV) $(VENV2) .demo build dist docs/_build .mypy_cache .ruff_cache .pytest_cache
