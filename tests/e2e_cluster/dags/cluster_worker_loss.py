"""A reschedule-mode sensor and a list task, each with one retry: the cluster e2e suite kills their worker."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

ZONE = "cluster_worker_loss"
SENSOR = "wait_in_reschedule_mode"
LIST = "list_running_sessions"

with DAG(
    dag_id="cluster_worker_loss",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
    tags=["e2e-cluster"],
) as dag:
    BrowserSessionsSensor(
        task_id=SENSOR,
        conn_id="brightdata_default",
        api_name=ZONE,
        mode="reschedule",
        poke_interval=5,
        timeout=30 * 60,
        fail_on_failed=False,
    )
    ListBrowserSessionsOperator(
        task_id=LIST,
        conn_id="cloudflare_browser_rendering_default",
        status="running",
        fields=["session_id"],
    )
