"""DAGs for what a user sees: errors naming the connection, XCom size warnings and caps, a cut summary."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

START = pendulum.datetime(2025, 1, 1, tz="UTC")

# The wrong-key and unreachable connections come from the environment the test sets.
with DAG(dag_id="errors_wrong_key", schedule=None, start_date=START, catchup=False) as errors_wrong_key:
    ListBrowserSessionsOperator(task_id="list", conn_id="brightdata_wrong_key")
    BrowserSessionsSensor(
        task_id="wait", conn_id="brightdata_wrong_key", session_ids=["a"], poke_interval=1, timeout=30
    )

with DAG(dag_id="errors_unreachable", schedule=None, start_date=START, catchup=False) as errors_unreachable:
    ListBrowserSessionsOperator(task_id="list", conn_id="brightdata_unreachable")

with DAG(dag_id="xcom_size", schedule=None, start_date=START, catchup=False) as xcom_size:
    ListBrowserSessionsOperator(task_id="everything", conn_id="brightdata_default")
    ListBrowserSessionsOperator(task_id="capped_bytes", conn_id="brightdata_default", max_xcom_bytes=50_000)
    ListBrowserSessionsOperator(task_id="summary_only", conn_id="brightdata_default", do_xcom_push=False)
    ListBrowserSessionsOperator(task_id="cut", conn_id="brightdata_default", max_results=50)
