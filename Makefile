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
VENV_LATEST := .venv-latest
VENV_LATEST2 := .venv-latest-airflow2
UV_VERSION ?= 0.13.9
LOCK3 := constraints/airflow-$(AIRFLOW3_VERSION)
LOCK2 := constraints/airflow-$(AIRFLOW2_VERSION)

API_PORT ?= 8080
EMULATOR_PORT ?= 8790

.PHONY: help demo test test-static test-bench-airflow3 test-bench-airflow2 test-both suite-airflow3-reliability suite-airflow3-rest suite-airflow2-reliability suite-airflow2-rest test-live check lint lock test-latest dist test-airflow3 test-airflow2 e2e e2e-cluster screenshots up up-cluster down docs bench bench-smoke clean

help:
	@echo "make demo           run every example DAG against the embedded emulator (Airflow $(AIRFLOW3_VERSION))"
	@echo "make test           all of it, in three stages: lint, docs, the built wheel; the Airflow $(AIRFLOW3_VERSION) and $(AIRFLOW2_VERSION) suites (four processes); the e2e and cluster suites beside the bench smoke test"
	@echo "make check          the inner loop: lint, then the unit, hook, trigger and emulator tests on Airflow $(AIRFLOW3_VERSION)"
	@echo "make lint           ruff check, ruff format --check, mypy"
	@echo "make docs           build the documentation site into docs/_build/html (warnings are errors)"
	@echo "make bench          benchmarks against the HTTP provider on the emulator (about 8 minutes); bench-smoke: tiny sizes (under a minute)"
	@echo "make test-airflow3  pytest on Airflow 3 only; make test-airflow2: on Airflow 2.11 only"
	@echo "make up             a real local Airflow 3 (UI on API_PORT=$(API_PORT)) with the emulator and both connections"
	@echo "make up-cluster     a distributed Airflow 3 on this machine: PostgreSQL, Redis, CeleryExecutor, 2 workers, 2 triggerers"
	@echo "make down           stop everything make up or make up-cluster started"
	@echo "make e2e            the end-to-end suite: its own deployment, REST API v2, a browser on the UI"
	@echo "make e2e-cluster    the cluster end-to-end suite: its own up-cluster, 200 deferred waits, triggerer and worker loss"
	@echo "make screenshots    refresh the docs' screenshots (connection forms, Browser sessions view: the e2e browser tests)"
	@echo "make lock           re-resolve the locked test environments (constraints/*.txt) from pyproject.toml and constraints/*.in"
	@echo "make test-latest    the suites on the newest releases the package allows (drift, on purpose; not in make test)"
	@echo "make dist           build the sdist and the wheel into dist/ and check their metadata"
	@echo "make test-dist      install the built wheel into a clean virtualenv and run the README's first DAG from it"
	@echo "make clean          remove the virtualenvs and build output"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# Each test environment is exactly its lock file (constraints/airflow-<version>.txt, written by `make lock`), plus
# this package in editable mode: an upstream release cannot change what `make test` installs. A stamp per
# environment: reinstalled when its lock or pyproject.toml changes, otherwise free.
$(VENV)/.installed: $(LOCK3).txt pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(VENV)/bin/python $(LOCK3).txt
	$(UV) pip install --quiet --python $(VENV)/bin/python --no-deps --build-constraint constraints/build.txt -e .
	touch $@

$(VENV2)/.installed: $(LOCK2).txt pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV2)
	$(UV) pip sync --quiet --python $(VENV2)/bin/python $(LOCK2).txt
	$(UV) pip install --quiet --python $(VENV2)/bin/python --no-deps --build-constraint constraints/build.txt -e .
	touch $@

# Re-resolve both locks from constraints/*.in and pyproject.toml (docs/development.md says when). The Airflow 3 lock
# holds every extra the Makefile's targets use; the 2.11 lock the ones its suite uses.
LOCK_FLAGS = --quiet --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --no-emit-package airflow-provider-browsersessions \
	--custom-compile-command "make lock"
lock: | $(UV)
	$(UV) pip compile $(LOCK_FLAGS) --upgrade constraints/build.in -o constraints/build.txt
	$(UV) pip compile $(LOCK_FLAGS) --upgrade pyproject.toml $(LOCK3).in --extra dev --extra docs --extra bench --extra e2e --extra cluster -o $(LOCK3).txt
	$(UV) pip compile $(LOCK_FLAGS) --upgrade pyproject.toml $(LOCK2).in --extra dev --extra bench -o $(LOCK2).txt

# The release artifacts: uv builds the sdist, then the wheel from that sdist alone (hatchling pinned by
# constraints/build.txt); twine checks both files' metadata. docs/release.md says how a release is cut.
dist: $(VENV)/.installed
	rm -rf dist
	$(UV) build --quiet --build-constraint constraints/build.txt --out-dir dist
	$(VENV)/bin/twine check --strict dist/*

# A user's install of that wheel, in a clean virtualenv (Airflow $(AIRFLOW3_VERSION), locked; no source tree on the
# path): `airflow providers list` shows it, and the README's first DAG runs against the installed emulator.
test-dist: dist
	@echo "== the built wheel, installed as a user installs it =="
	BROWSERSESSIONS_DIST=$(CURDIR)/dist $(VENV)/bin/python -m pytest tests/packaging $(PYTEST_ARGS)

# Drift, found on purpose (not part of make test): the newest releases the package's ranges allow, resolved today,
# in throwaway environments, then the Airflow 3 and Airflow 2.11 suites. Green: `make lock` may move the locks.
test-latest: | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV_LATEST)
	$(UV) pip install --quiet --refresh --upgrade --python $(VENV_LATEST)/bin/python -e ".[dev,bench]" "apache-airflow>=3"
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV_LATEST2)
	$(UV) pip install --quiet --refresh --upgrade --python $(VENV_LATEST2)/bin/python -e ".[dev,bench]" "apache-airflow>=2.11,<3"
	@rc=0; \
	echo "== pytest on the newest Airflow 3 and its newest dependencies =="; \
	$(VENV_LATEST)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) || rc=1; \
	echo "== pytest on the newest Airflow 2.11 and its newest dependencies =="; \
	$(VENV_LATEST2)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) || rc=1; \
	exit $$rc

demo: $(VENV)/.installed
	$(VENV)/bin/python scripts/demo.py

lint: $(VENV)/.installed
	@echo "== ruff, mypy =="
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The inner loop: lint, then the unit, hook, trigger and emulator tiers on Airflow 3 (tests are marked by folder:
# tests/conftest.py). make test stays complete.
check: lint
	@echo "== the inner loop: unit, hook, trigger and emulator tests on Airflow $(AIRFLOW3_VERSION) =="
	$(VENV)/bin/python -m pytest -p no:cacheprovider -m "unit or hook or trigger or emulator" $(PYTEST_ARGS)

test-airflow3: $(VENV)/.installed
	@echo "== pytest on Airflow $(AIRFLOW3_VERSION) =="
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-airflow2: $(VENV2)/.installed
	@echo "== pytest on Airflow $(AIRFLOW2_VERSION) =="
	$(VENV2)/bin/python -m pytest $(PYTEST_ARGS)

up: $(VENV)/.installed
	$(VENV)/bin/python scripts/deployment.py up --api-port $(API_PORT) --emulator-port $(EMULATOR_PORT)

up-cluster: $(VENV)/.installed
	bash scripts/install_cluster_services.sh
	$(VENV)/bin/python scripts/cluster.py up

down:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python scripts/deployment.py down; else echo "Nothing to stop."; fi

e2e: $(VENV)/.installed
	@echo "== end-to-end suite on a live Airflow $(AIRFLOW3_VERSION) =="
	bash scripts/install_chromium.sh
	BROWSERSESSIONS_E2E=1 $(VENV)/bin/python -m pytest tests/e2e $(PYTEST_ARGS)

e2e-cluster: $(VENV)/.installed
	@echo "== cluster end-to-end suite on a distributed Airflow $(AIRFLOW3_VERSION) =="
	bash scripts/install_cluster_services.sh
	BROWSERSESSIONS_E2E_CLUSTER=1 $(VENV)/bin/python -m pytest tests/e2e_cluster $(PYTEST_ARGS)

screenshots: $(VENV)/.installed
	bash scripts/install_chromium.sh
	BROWSERSESSIONS_E2E=1 BROWSERSESSIONS_SCREENSHOTS=$(CURDIR)/docs/_static/screenshots \
		$(VENV)/bin/python -m pytest tests/e2e/test_connection_forms.py tests/e2e/test_browser_sessions_view.py $(PYTEST_ARGS)

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

# make test runs in three stages, the parts of each side by side (scripts/side_by_side.sh: one log each in
# build/logs, printed whole once all end, then each part's outcome and wall time). Each stage's environments are
# installed before its parts start, so no two makes build one.

# Lint, the docs and the built wheel.
test-static: $(VENV)/.installed
	bash scripts/side_by_side.sh lint docs test-dist PYTEST_ARGS="-p no:cacheprovider $(PYTEST_ARGS)"

# The benchmarks' smoke test (tests/bench) on each Airflow version: over two minutes each, two thirds of it
# waiting, so test-live runs it beside the end-to-end suites rather than inside the suites.
test-bench-airflow3: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/bench $(PYTEST_ARGS)

test-bench-airflow2: $(VENV2)/.installed
	$(VENV2)/bin/python -m pytest tests/bench $(PYTEST_ARGS)

# The two Airflow versions' suites, less tests/bench (run in test-live), each as two pytest processes: the
# reliability tier, and the rest (about half of the suite's time each). A suite spends over half of its time
# waiting (servers, deadlines, Airflow's subprocesses), so four processes fill two cores without starving one.
test-both: $(VENV)/.installed $(VENV2)/.installed
	bash scripts/side_by_side.sh suite-airflow3-reliability suite-airflow3-rest suite-airflow2-reliability \
		suite-airflow2-rest PYTEST_ARGS="-p no:cacheprovider $(PYTEST_ARGS)"

SUITE_REST := --ignore=tests/reliability --ignore=tests/bench

suite-airflow3-reliability: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/reliability $(PYTEST_ARGS)

suite-airflow3-rest: $(VENV)/.installed
	$(VENV)/bin/python -m pytest $(SUITE_REST) $(PYTEST_ARGS)

suite-airflow2-reliability: $(VENV2)/.installed
	$(VENV2)/bin/python -m pytest tests/reliability $(PYTEST_ARGS)

suite-airflow2-rest: $(VENV2)/.installed
	$(VENV2)/bin/python -m pytest $(SUITE_REST) $(PYTEST_ARGS)

# The two end-to-end suites, each with its own deployment on free ports in its own temporary folder, and the
# benchmarks' smoke test: all mostly waiting. The Debian packages are installed first, one apt-get at a time.
test-live: $(VENV)/.installed $(VENV2)/.installed
	bash scripts/install_chromium.sh
	bash scripts/install_cluster_services.sh
	bash scripts/side_by_side.sh e2e e2e-cluster test-bench-airflow3 test-bench-airflow2 \
		PYTEST_ARGS="-p no:cacheprovider $(PYTEST_ARGS)"

test: test-static test-both test-live

clean:
	@if [ -f .deploy/state.json ]; then $(MAKE) down; fi
	rm -rf $(TOOLS) $(VENV) $(VENV2) $(VENV_LATEST) $(VENV_LATEST2) .test-airflow3.log .test-airflow2.log .demo .deploy build dist docs/_build .mypy_cache .ruff_cache .pytest_cache
