"""Repository-wide test harness: a throwaway Airflow home, set before anything imports Airflow."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Airflow reads its configuration when first imported, so this must run at conftest import time.
_HOME = Path(tempfile.mkdtemp(prefix="browsersessions-airflow-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
(_HOME / "dags").mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_HOME / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # Deferrable by default is the users' choice; tests say which mode they want.
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
    }
)

AIRFLOW_HOME = _HOME
DAGS_FOLDER = _HOME / "dags"

# The end-to-end suite starts a whole Airflow deployment: it has its own command (`make e2e`), which sets this.
collect_ignore = [] if os.environ.get("BROWSERSESSIONS_E2E") == "1" else ["e2e"]
# The distributed one (PostgreSQL, Redis, Celery, two triggerers) too: `make e2e-cluster` sets this.
if os.environ.get("BROWSERSESSIONS_E2E_CLUSTER") != "1":
    collect_ignore.append("e2e_cluster")
# The clean-install check of the built wheel: `make test-dist` builds it first and says where.
if not os.environ.get("BROWSERSESSIONS_DIST"):
    collect_ignore.append("packaging")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the SQLite metadata DB once per session; only tests that run DAGs ask for it."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ.copy()
    )
    return AIRFLOW_HOME


@pytest.fixture
def frozen_emulator(browsersessions_connections):  # type: ignore[no-untyped-def]
    """The session's emulator with its clock stopped: sessions end only when a test ends them."""
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)
    return emulator


# Each test folder is a tier, marked by where the test lives, so a run can select tiers (`make check`: the inner loop).
TIERS = {
    "unit": "unit",
    "hooks": "hook",
    "triggers": "trigger",
    "testing": "emulator",
    "system": "system",
    "plugins": "system",
    "reliability": "reliability",
    "metrics": "system",
    "docs": "docs",
    "bench": "bench",
    "packaging": "packaging",
}
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier (its folder); run long trials (``slow``) only if ``BROWSERSESSIONS_LONG=1``."""
    for item in items:
        folder = Path(item.path).resolve().relative_to(_TESTS).parts[0]
        if folder in TIERS:
            item.add_marker(TIERS[folder])
    if os.environ.get("BROWSERSESSIONS_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long trial: set BROWSERSESSIONS_LONG=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
