"""DAGs whose runs send the provider's metrics: a listing, waits in poke and deferrable mode, a close."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import (
    CloseBrowserSessionsOperator,
    ListBrowserSessionsOperator,
)
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

START = pendulum.datetime(2025, 1, 1, tz="UTC")
CF = "cloudflare_browser_rendering_default"

with DAG(dag_id="metrics_list", schedule=None, start_date=START, catchup=False) as metrics_list:
    ListBrowserSessionsOperator(task_id="list", conn_id="brightdata_default", page_size=2)

with DAG(
    dag_id="metrics_waits", schedule=None, start_date=START, catchup=False, params={"poke": [], "deferred": []}
) as metrics_waits:
    BrowserSessionsSensor(
        task_id="poke", conn_id=CF, session_ids="{{ params.poke }}", poke_interval=1, timeout=120, mode="poke"
    ) >> BrowserSessionsSensor(
        task_id="deferred",
        conn_id=CF,
        session_ids="{{ params.deferred }}",
        poke_interval=1,
        timeout=120,
        deferrable=True,
    )

with DAG(dag_id="metrics_close", schedule=None, start_date=START, catchup=False, params={"ids": []}) as metrics_close:
    CloseBrowserSessionsOperator(task_id="close", conn_id=CF, session_ids="{{ params.ids }}")
