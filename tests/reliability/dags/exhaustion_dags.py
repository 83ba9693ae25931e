"""A list task on a connection whose retry budget (extra max_retries=2) the emulator exhausts."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator

with DAG(
    dag_id="exhausted_retries",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    ListBrowserSessionsOperator(task_id="list", conn_id="brightdata_few_retries", retries=0)
