"""A DAG whose list operator and sensor name sessions in XCom, for the view's links between sessions and runs."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

with DAG(
    dag_id="ui_links",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    params={"ids": []},
) as ui_links:
    failed = ListBrowserSessionsOperator(task_id="list_failed", conn_id="brightdata_default", status="failed")
    wait = BrowserSessionsSensor(
        task_id="wait",
        conn_id="brightdata_default",
        session_ids="{{ params.ids }}",
        fail_on_failed=False,
        poke_interval=1,
        timeout=60,
        mode="poke",
    )
    failed >> wait
