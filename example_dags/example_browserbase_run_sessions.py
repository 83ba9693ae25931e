"""
Wait for exactly the Browserbase sessions this run started, then report how each one ended.

A Browserbase project runs many browsers at once: other DAGs' sessions, a colleague's notebook, yesterday's
run still closing. Waiting for "no running session" would wait for all of them. Instead, every session
this run starts is tagged with user metadata ``{"airflow_run_id": "<run id>"}``, and the sensor's
``metadata`` filter waits for those only: Browserbase filters by it on its side (its ``q`` query), so one
poll is one small answer however busy the project is.

The ``start_sessions`` task stands in for your own browsing task. In production it creates sessions with the
Browserbase SDK, ``Browserbase().sessions.create(project_id=..., user_metadata={"airflow_run_id": run_id})``;
here it starts them on the provider's emulator (``make demo`` wires ``browserbase_default`` to it).

Connection: ``browserbase_default`` (type ``browserbase``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pendulum

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11: see "Example DAGs on Airflow 2.11" in docs/compatibility.md
    from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

CONN_ID = "browserbase_default"
#: How each emulated session of the run goes: seconds it runs, and how it ends.
PLAN = ((20, "finished"), (30, "finished"), (40, "failed"))

with DAG(
    dag_id="example_browserbase_run_sessions",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "browsersessions", "browserbase"],
    doc_md=__doc__,
) as dag:

    @task
    def start_sessions(run_id: str | None = None) -> list[str]:
        """Start this run's sessions, each tagged with the run id (on the emulator: see the DAG's doc)."""
        from airflow_provider_browsersessions.hooks.browserbase import BrowserbaseHook
        from airflow_provider_browsersessions.testing.emulator import EmulatorClient

        emulator = EmulatorClient(BrowserbaseHook(conn_id=CONN_ID).connection.host or "")
        tag = {"airflow_run_id": run_id}
        ids = [
            emulator.add_session("browserbase", duration=seconds, outcome=outcome, userMetadata=tag)["id"]
            for seconds, outcome in PLAN
        ]
        # Someone else's session on the same project: running for an hour, never waited for.
        emulator.add_session("browserbase", duration=3600, userMetadata={"airflow_run_id": "someone-else"})
        return ids

    # [START howto_wait_for_this_runs_sessions]
    wait = BrowserSessionsSensor(
        task_id="wait_for_this_runs_sessions",
        conn_id=CONN_ID,
        metadata={"airflow_run_id": "{{ run_id }}"},
        deferrable=True,
        poke_interval=5,
        timeout=15 * 60,
        fail_on_failed=False,  # the report below says which failed
    )
    # [END howto_wait_for_this_runs_sessions]

    outcomes = ListBrowserSessionsOperator(
        task_id="list_this_runs_sessions",
        conn_id=CONN_ID,
        metadata={"airflow_run_id": "{{ run_id }}"},
        fields=["session_id", "status", "duration", "error_code"],
    )

    @task
    def report(sessions: list[dict[str, Any]]) -> dict[str, int]:
        """One line per session of this run, and the count by outcome."""
        for session in sessions:
            print(f"{session['session_id']}: {session['status']} {session['error_code'] or ''}".rstrip())
        counts = dict(Counter(session["status"] for session in sessions))
        print(f"This run's sessions: {counts}")
        return counts

    start_sessions() >> wait >> outcomes
    report(outcomes.output)
