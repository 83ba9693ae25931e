"""A DAG that drives every task type through success and failure, for the secrets canary test."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

with DAG(
    dag_id="secrets_canary",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    ListBrowserSessionsOperator(task_id="list_brightdata", conn_id="brightdata_default", status="failed")
    ListBrowserSessionsOperator(task_id="list_cloudflare", conn_id="cloudflare_browser_rendering_default")
    ListBrowserSessionsOperator(task_id="list_legacy", conn_id="cloudflare_legacy")
    ListBrowserSessionsOperator(task_id="list_wrong_key", conn_id="brightdata_wrong_key", retries=0)
    BrowserSessionsSensor(task_id="wait", conn_id="brightdata_default", poke_interval=1, timeout=30)
    BrowserSessionsSensor(
        task_id="wait_deferred", conn_id="cloudflare_browser_rendering_default", deferrable=True, poke_interval=1
    )
    ListBrowserSessionsOperator(task_id="list_browserbase", conn_id="browserbase_default")
    # By id, deferred: its read answers connectUrl, seleniumRemoteUrl and signingKey, none of which may go on.
    BrowserSessionsSensor(
        task_id="wait_browserbase",
        conn_id="browserbase_default",
        session_ids=["bb-canary-session"],
        deferrable=True,
        poke_interval=1,
    )
