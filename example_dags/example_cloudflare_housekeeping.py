"""
Cloudflare housekeeping: close browser sessions that have run too long, and wait until they are gone.

Close every active Browser Rendering session that has been running longer than a threshold
(``CloseBrowserSessionsOperator``: one list walk, then ``DELETE /devtools/browser/{id}`` per session),
then wait until the closed ones have left the active list. Cloudflare forgets closed sessions after a
while, so an id it no longer knows counts as finished (``missing="finished"``).

Connection: ``cloudflare_browser_rendering_default`` (type ``cloudflare_browser_rendering``, extra
``account_id``).
"""

from __future__ import annotations

import pendulum

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11: see "Example DAGs on Airflow 2.11" in docs/compatibility.md
    from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.operators.sessions import CloseBrowserSessionsOperator
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
    # [START howto_close_long_running]
    closed = CloseBrowserSessionsOperator(
        task_id="close_long_running",
        conn_id=CONN_ID,
        min_duration="{{ params.max_age_minutes * 60 }}",  # running for at least this many seconds
        dry_run=False,  # True: log what would be closed, send no DELETE
    )
    # [END howto_close_long_running]

    # [START howto_wait_until_closed]
    gone = BrowserSessionsSensor(
        task_id="wait_until_closed",
        conn_id=CONN_ID,
        session_ids=closed.output,
        missing="finished",
        poke_interval=5,
        timeout=10 * 60,
    )
    # [END howto_wait_until_closed]
