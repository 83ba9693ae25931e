"""Two hundred deferred waits on one Bright Data zone: mapped deferrable drain sensors (the cluster e2e suite)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

ZONE = "cluster_waits"
WAITS = 200
POLL_INTERVAL = 10

with DAG(
    dag_id="cluster_many_waits",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=WAITS,
    tags=["e2e-cluster"],
) as dag:
    # Every instance waits on the same connection and zone: one shared poll per triggerer serves them all.
    BrowserSessionsSensor.partial(
        task_id="wait_for_zone_idle",
        conn_id="brightdata_default",
        api_name=ZONE,
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=60 * 60,
        fail_on_failed=False,
        retries=0,
    ).expand(missing=["finished"] * WAITS)
