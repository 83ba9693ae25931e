"""
Triage with dynamic task mapping: one task per failed Bright Data session.

List yesterday's failed sessions on every zone, then map a triage task over them: each mapped task
instance receives one session's record (its id, zone, URLs and error) and decides what to do — here,
classify it as retryable or not. The Airflow grid shows one box per failed session.

Connection: ``brightdata_default`` (type ``brightdata``).
"""

from __future__ import annotations

from typing import Any

import pendulum

try:
    from airflow.sdk import DAG, get_current_context, task
except ImportError:  # Airflow 2.11: see "Example DAGs on Airflow 2.11" in docs/compatibility.md
    from airflow.providers.common.compat.sdk import DAG, get_current_context, task

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator

RETRYABLE = {"timeout", "proxy_error", "navigation_failed"}

# The end of the 24-hour window. A run triggered on Airflow 3 without a logical date (the REST API's
# `"logical_date": null`) has no data interval at all: it reports the 24 hours before it was triggered.
WINDOW_END = "(data_interval_end if data_interval_end is defined else dag_run.run_after)"

with DAG(
    dag_id="example_brightdata_failed_triage",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "browsersessions", "brightdata"],
    doc_md=__doc__,
) as dag:
    failed = ListBrowserSessionsOperator(
        task_id="list_failed_sessions",
        conn_id="brightdata_default",
        status="failed",
        started_after="{{ " + WINDOW_END + " - macros.timedelta(days=1) }}",
        started_before="{{ " + WINDOW_END + " }}",
        fields=["session_id", "api_name", "target_url", "error_code", "error_message"],
        max_results=50,
    )

    # [START howto_triage_mapped]
    @task(map_index_template="{{ session_id }}")
    def triage(session: dict[str, Any]) -> str:
        """Classify one failed session."""
        get_current_context()["session_id"] = session["session_id"]  # type: ignore[typeddict-unknown-key]
        verdict = "retry" if session["error_code"] in RETRYABLE else "investigate"
        print(f"{session['session_id']} on {session['api_name']}: {session['error_code']} -> {verdict}")
        return verdict

    verdicts = triage.expand(session=failed.output)
    # [END howto_triage_mapped]

    @task
    def tally(all_verdicts: list[str]) -> dict[str, int]:
        """Count the verdicts."""
        counts = {verdict: list(all_verdicts).count(verdict) for verdict in set(all_verdicts)}
        print(f"Triage: {counts}")
        return counts

    tally(verdicts)
