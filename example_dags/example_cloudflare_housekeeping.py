"""
Cloudflare housekeeping: close browser sessions that have run too long, and wait until they are gone.

List the account's active Browser Rendering sessions, close every one that has been running longer
than a threshold (``DELETE /devtools/browser/{id}``), then wait until the closed ones have left the
active list. Cloudflare forgets closed sessions after a while, so an id it no longer knows counts as
finished (``missing="finished"``).

Connection: ``cloudflare_browser_rendering_default`` (type ``cloudflare_browser_rendering``, extra
``account_id``).
"""

from __future__ import annotations

from typing import Any

import pendulum

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11: see "Example DAGs on Airflow 2.11" in docs/compatibility.md
    from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

CONN_ID = "cloudflare_browser_rendering_default"

with DAG(
    dag_id="example_cloudflare_housekeeping",
    schedule="*/30 * * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={"max_age_minutes": 3},
    tags=["example", "browsersessions", "cloudflare"],
    doc_md=__doc__,
) as dag:
    # [START howto_list_active_sessions]
    active = ListBrowserSessionsOperator(
        task_id="list_active_sessions",
        conn_id=CONN_ID,
        status="running",
        sort="timestamp",
        order="asc",
        fields=["session_id", "started_at"],
    )
    # [END howto_list_active_sessions]

    # [START howto_close_long_running]
    @task
    def close_long_running(sessions: list[dict[str, Any]], params: dict[str, Any]) -> list[str]:
        """Close every session older than the threshold; return the ids it closed."""
        cutoff = pendulum.now("UTC").subtract(minutes=int(params["max_age_minutes"]))
        hook = CloudflareBrowserRenderingHook(conn_id=CONN_ID)
        closed = []
        for record in sessions:
            started = record["started_at"] and pendulum.parse(record["started_at"])
            if started and started < cutoff:
                answer = hook.close_session(record["session_id"])
                print(f"Closed {record['session_id']} (started {record['started_at']}): {answer}")
                closed.append(record["session_id"])
        print(f"{len(closed)} of {len(sessions)} active session(s) ran longer than {params['max_age_minutes']} min")
        return closed

    closed_ids = close_long_running(active.output)
    # [END howto_close_long_running]

    # [START howto_wait_until_closed]
    gone = BrowserSessionsSensor(
        task_id="wait_until_closed",
        conn_id=CONN_ID,
        session_ids=closed_ids,
        missing="finished",
        poke_interval=5,
        timeout=10 * 60,
    )
    # [END howto_wait_until_closed]
