"""A DAG file's parse imports our operators and sensors: the hooks, transports and HTTP clients wait for a task."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("requests", "httpx", "tenacity")
OURS_AT_RUN_TIME = (
    "airflow_provider_browsersessions.transport",
    "airflow_provider_browsersessions.hooks",
    "airflow_provider_browsersessions.platforms",
    "airflow_provider_browsersessions.paging",
    "airflow_provider_browsersessions.triggers",
)


def modules_after(code: str) -> set[str]:
    """The modules loaded in a fresh interpreter after running ``code``."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.timeout(300)
def test_operators_and_sensors_import_no_run_time_module():
    # What Airflow's own base classes load (Airflow itself imports some HTTP clients) is not ours to avoid.
    airflow_only = modules_after(
        "from airflow.providers.common.compat.sdk import BaseOperator, BaseSensorOperator, AirflowException"
    )
    ours = modules_after(
        "import airflow_provider_browsersessions.operators.sessions\n"
        "import airflow_provider_browsersessions.sensors.sessions"
    )
    assert "airflow_provider_browsersessions.operators.sessions" in ours
    assert "airflow_provider_browsersessions.sensors.sessions" in ours
    ours_loaded = sorted(name for name in ours if name.startswith(OURS_AT_RUN_TIME))
    assert ours_loaded == []
    heavy_added = sorted(name for name in ours - airflow_only if name.split(".")[0] in HEAVY)
    assert heavy_added == []


WATCHER_DAG = """
from airflow.sdk import DAG, Asset, AssetWatcher
from airflow_provider_browsersessions.triggers.events import BrowserSessionEventTrigger

trigger = BrowserSessionEventTrigger(conn_id="brightdata_default", filters={"api_name": "zone"})
asset = Asset("failed_sessions", watchers=[AssetWatcher(name="failed_sessions", trigger=trigger)])
"""


@pytest.mark.timeout(300)
def test_a_dag_with_an_asset_watcher_imports_no_run_time_module():
    pytest.importorskip("airflow.sdk", reason="asset watchers are Airflow 3 only")
    # The same DAG file without our trigger: what Airflow's asset and trigger classes load is not ours to avoid.
    airflow_only = modules_after(
        "from airflow.sdk import DAG, Asset, AssetWatcher\n"
        "from airflow.triggers.base import BaseEventTrigger, TriggerEvent\n"
        "from airflow.providers.common.compat.sdk import BaseHook"
    )
    ours = modules_after(WATCHER_DAG)
    assert "airflow_provider_browsersessions.triggers.events" in ours
    run_time = tuple(name for name in OURS_AT_RUN_TIME if name != "airflow_provider_browsersessions.triggers")
    ours_loaded = sorted(
        name
        for name in ours
        if name.startswith(
            (*run_time, "airflow_provider_browsersessions.triggers.shared", "airflow_provider_browsersessions.client")
        )
    )
    assert ours_loaded == []
    heavy_added = sorted(name for name in ours - airflow_only if name.split(".")[0] in HEAVY)
    assert heavy_added == []
