"""
Gate: wait until a Bright Data zone is idle, then run the export.

"Don't start the export until the scraping sessions are done." The sensor waits (deferred, so it
holds no worker slot) until no session of the zone is running, then hands the final state of every
session it saw end to the export task. One poll is one ``status=running`` list call for the zone,
however many sessions run; a session that ended ``failed`` fails the gate and names it.

Connection: ``brightdata_default`` (type ``brightdata``).
"""

from __future__ import annotations

from typing import Any

import pendulum

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11: see "Example DAGs on Airflow 2.11" in docs/compatibility.md
    from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

ZONE = "checkout_monitor"

with DAG(
    dag_id="example_brightdata_zone_gate",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "browsersessions", "brightdata"],
    doc_md=__doc__,
) as dag:
    # [START howto_wait_for_zone_idle]
    zone_idle = BrowserSessionsSensor(
        task_id="wait_for_zone_idle",
        conn_id="brightdata_default",
        api_name=ZONE,
        deferrable=True,
        poke_interval=5,
        timeout=15 * 60,
        fail_on_failed=False,  # report failed sessions to the export instead of failing the gate
    )
    # [END howto_wait_for_zone_idle]

    @task
    def export(ended: list[dict[str, Any]]) -> dict[str, int]:
        """Stand-in for the export the gate protects."""
        counts = {"ended": len(ended), "failed": sum(1 for s in ended if s["status"] == "failed")}
        print(f"Zone {ZONE} is idle: {counts}; starting the export")
        return counts

    export(zone_idle.output)
