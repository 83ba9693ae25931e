"""Poke-mode sensors and list tasks on one Cloudflare token at once: the cluster e2e suite's rate budget."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

CONN_ID = "cloudflare_browser_rendering_default"
SENSORS = 6
LISTS = 6

with DAG(
    dag_id="cluster_rate_budget",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=SENSORS + LISTS,
    tags=["e2e-cluster"],
) as dag:
    # Each sensor pokes every second for a session of its own (the run's conf names them): together
    # they would spend the scaled-down budget (120 requests per 30 s, 4 a second) within seconds.
    for index in range(SENSORS):
        BrowserSessionsSensor(
            task_id=f"poke_until_closed_{index}",
            conn_id=CONN_ID,
            session_ids=f"{{{{ dag_run.conf['sessions'][{index}] }}}}",
            mode="poke",
            poke_interval=1,
            timeout=15 * 60,
        )
    for index in range(LISTS):
        ListBrowserSessionsOperator(task_id=f"list_sessions_{index}", conn_id=CONN_ID, fields=["session_id"])
