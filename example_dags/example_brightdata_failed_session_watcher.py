"""
Event-driven triage: one DAG run per Bright Data session that fails (Airflow 3 asset watchers).

Instead of a daily sweep, an asset watches the connection: ``BrowserSessionEventTrigger`` runs in the
triggerer, polls once per interval (shared with any sibling watcher on the same connection and filters),
and fires one event per session that ended ``failed``. Each event updates the asset and starts this DAG;
the task finds the session in ``triggering_asset_events``. Airflow 3 only.

A second asset in this file watches the same connection for every ended session and feeds an audit DAG:
the two watchers are siblings (same connection, filters and interval), so the triggerer polls the API
once per interval for both of them, and each keeps to its own ``on`` states.

Connection: ``brightdata_default`` (type ``brightdata``).
"""

from __future__ import annotations

# [START howto_event_watcher]
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_browsersessions.triggers.events import BrowserSessionEventTrigger

failed_sessions = Asset(
    "brightdata_failed_sessions",
    watchers=[
        AssetWatcher(
            name="brightdata_failed_sessions_watcher",
            trigger=BrowserSessionEventTrigger(conn_id="brightdata_default", on=["failed"], poll_interval=30),
        )
    ],
)

with DAG(
    dag_id="example_brightdata_failed_session_watcher",
    schedule=[failed_sessions],
    catchup=False,
    tags=["example", "browsersessions", "brightdata"],
    doc_md=__doc__,
) as dag:

    @task
    def triage(triggering_asset_events: Any = None) -> list[str]:
        """Classify each failed session that started this run."""
        verdicts = []
        for event in (triggering_asset_events or {}).get(failed_sessions, []):
            session = event.extra["payload"]
            verdict = "retry" if session["error_code"] in {"timeout", "proxy_error"} else "investigate"
            print(f"{session['session_id']} on {session['api_name']}: {session['error_code']} -> {verdict}")
            verdicts.append(verdict)
        return verdicts

    triage()
# [END howto_event_watcher]

# [START howto_event_sibling_watcher]
ended_sessions = Asset(
    "brightdata_ended_sessions",
    watchers=[
        AssetWatcher(
            name="brightdata_ended_sessions_watcher",
            # Same connection, filters and interval as the watcher above: one shared poll serves both.
            trigger=BrowserSessionEventTrigger(
                conn_id="brightdata_default", on=["finished", "failed"], poll_interval=30
            ),
        )
    ],
)

with DAG(
    dag_id="example_brightdata_session_audit",
    schedule=[ended_sessions],
    catchup=False,
    tags=["example", "browsersessions", "brightdata"],
    doc_md=__doc__,
) as audit_dag:

    @task
    def audit(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """One audit line per ended session: what a compliance log or a cost report would keep."""
        lines = []
        for event in (triggering_asset_events or {}).get(ended_sessions, []):
            session = event.extra["payload"]
            line = {key: session[key] for key in ("session_id", "api_name", "status", "duration", "bandwidth")}
            print(f"audit: {line}")
            lines.append(line)
        return lines

    audit()
# [END howto_event_sibling_watcher]
