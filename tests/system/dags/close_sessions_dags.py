"""DAGs exercising CloseBrowserSessionsOperator against the emulator (connection ids from the environment)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import (
    CloseBrowserSessionsOperator,
    ListBrowserSessionsOperator,
)

START = pendulum.datetime(2025, 1, 1, tz="UTC")

with DAG(dag_id="close_listed", schedule=None, start_date=START, catchup=False) as close_listed:
    # [START howto_close_listed_dry_run]
    listed = ListBrowserSessionsOperator(
        task_id="list_running", conn_id="cloudflare_browser_rendering_default", status="running"
    )
    dry = CloseBrowserSessionsOperator(
        task_id="dry_run", conn_id="cloudflare_browser_rendering_default", session_ids=listed.output, dry_run=True
    )
    # [END howto_close_listed_dry_run]
    closed = CloseBrowserSessionsOperator(
        task_id="close_old",
        conn_id="cloudflare_browser_rendering_default",
        min_duration="{{ params.max_age_seconds }}",
        params={"max_age_seconds": 300},
    )
    listed >> dry >> closed

with DAG(dag_id="close_brightdata", schedule=None, start_date=START, catchup=False) as close_brightdata:
    CloseBrowserSessionsOperator(task_id="close", conn_id="brightdata_default", session_ids=["abc"])

with DAG(
    dag_id="close_given",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"ids": [], "dry_run": False, "conn_id": "cloudflare_browser_rendering_default"},
) as close_given:
    CloseBrowserSessionsOperator(
        task_id="close",
        conn_id="{{ params.conn_id }}",
        session_ids="{{ params.ids }}",
        dry_run="{{ params.dry_run }}",
    )
