"""A reschedule-mode gate, loaded by fresh worker processes in the restart test (ids rendered per run)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

with DAG(
    dag_id="restart_gate",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={"ids": []},
) as dag:
    BrowserSessionsSensor(
        task_id="wait",
        conn_id="brightdata_default",
        session_ids="{{ params.ids }}",
        mode="reschedule",
        poke_interval=1,
        timeout=600,
        fail_on_failed=False,  # report both final states, so a lost completion would show
    )
