"""Gates on a host that refuses every connection, in each sensor mode, and operators and sensors on a rejected key."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

START = pendulum.datetime(2025, 1, 1, tz="UTC")
MODES: dict[str, dict[str, object]] = {
    "poke": {"mode": "poke"},
    "reschedule": {"mode": "reschedule"},
    "deferrable": {"deferrable": True},
}

# The connections come from the environment the tests set: brightdata_refused points at a closed port.
with DAG(dag_id="unreachable_gates", schedule=None, start_date=START, catchup=False) as unreachable_gates:
    for _name, _mode in MODES.items():
        BrowserSessionsSensor(
            task_id=f"wait_{_name}",
            conn_id="brightdata_refused",
            session_ids=["a"],
            poke_interval=0.5,
            timeout=20,  # far past the bound below: a wait that ends by its timeout did not keep the bound
            unreachable_timeout=1,
            **_mode,  # type: ignore[arg-type]
        )

# Retries that a rejected key must not use: every task makes one try's requests, then fails.
with DAG(dag_id="wrong_key_no_retries", schedule=None, start_date=START, catchup=False) as wrong_key_no_retries:
    _retries = {"retries": 2, "retry_delay": timedelta(seconds=0)}
    ListBrowserSessionsOperator(task_id="list", conn_id="brightdata_wrong_key", **_retries)  # type: ignore[arg-type]
    for _name, _mode in MODES.items():
        BrowserSessionsSensor(
            task_id=f"wait_{_name}",
            conn_id="brightdata_wrong_key",
            session_ids=[_name],  # one read per poke, of a path naming the mode
            poke_interval=0.5,
            timeout=60,
            **_mode,  # type: ignore[arg-type]
            **_retries,  # type: ignore[arg-type]
        )
