"""
Daily report of Bright Data browser sessions.

Every day, list the sessions that started in the day before the run's data interval end on one
Bright Data zone (for a scheduled daily run that is exactly its data interval; a manual run, whose
interval is empty on Airflow 3, still gets the last 24 hours),
keep the failed ones (pushed to XCom, projected to a few fields), and summarise them downstream:
how many sessions ran, how many failed and why, bandwidth and duration figures. The status, zone
and time window are pushed down to the API; nothing is fetched that the report does not need.

Connection: ``brightdata_default`` (type ``brightdata``); the demo points it at the embedded emulator.
"""

from __future__ import annotations

from typing import Any

# [START howto_list_failed_sessions]
import pendulum

try:
    from airflow.sdk import DAG, XComArg, task
except ImportError:  # Airflow 2.11: see "Example DAGs on Airflow 2.11" in docs/compatibility.md
    from airflow.providers.common.compat.sdk import DAG, XComArg, task

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator

ZONE = "scraping_browser1"

# The end of the 24-hour window. A run triggered on Airflow 3 without a logical date (the REST API's
# `"logical_date": null`) has no data interval at all: it reports the 24 hours before it was triggered.
WINDOW_END = "(data_interval_end if data_interval_end is defined else dag_run.run_after)"

with DAG(
    dag_id="example_brightdata_daily_report",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "browsersessions", "brightdata"],
    doc_md=__doc__,
) as dag:
    failed_sessions = ListBrowserSessionsOperator(
        task_id="list_failed_sessions",
        conn_id="brightdata_default",
        api_name=ZONE,
        status="failed",
        started_after="{{ " + WINDOW_END + " - macros.timedelta(days=1) }}",
        started_before="{{ " + WINDOW_END + " }}",
        fields=["session_id", "started_at", "target_url", "error_code", "error_message"],
    )
    # [END howto_list_failed_sessions]

    all_sessions = ListBrowserSessionsOperator(
        task_id="summarise_all_sessions",
        conn_id="brightdata_default",
        api_name=ZONE,
        started_after="{{ " + WINDOW_END + " - macros.timedelta(days=1) }}",
        started_before="{{ " + WINDOW_END + " }}",
        fields=["session_id"],
    )

    @task
    def report(failed: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
        """Turn the figures into the lines a person reads."""
        by_code: dict[str, int] = {}
        for record in failed:
            code = record["error_code"] or "unknown"
            by_code[code] = by_code.get(code, 0) + 1
        lines = {
            "sessions": summary["count"],
            "failed": len(failed),
            "failed_by_error": by_code,
            "bandwidth_bytes": summary["total_bandwidth"],
            "duration_p95_seconds": summary["duration_seconds"]["p95"],
        }
        print(f"Zone {ZONE}: {lines}")
        return lines

    # The operator's return value is the rows; its "summary" XCom holds the figures.
    report(failed_sessions.output, XComArg(all_sessions, key="summary"))
