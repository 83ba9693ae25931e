"""The shipped example DAGs, run with real Airflow against the emulator, checked against the data they were given.

``make demo`` runs the same files with ``airflow dags test``; these tests pin down what each one computes.
The daily examples look at the 24 hours ending at the run's ``data_interval_end``; the runs here get a
logical date of today's midnight, which Airflow 2.11 and 3 both turn into that same ``data_interval_end``,
and sessions are placed at known offsets before it, so the window selects a known set.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pendulum
import pytest
from airflow_harness import run_dag

from airflow_provider_browsersessions.compat import AIRFLOW_V_3_0_PLUS

pytestmark = pytest.mark.system

EXAMPLES = Path(__file__).parents[2] / "example_dags"
HOUR = 3600.0


@pytest.fixture
def emulator(airflow_db, browsersessions_connections):
    return browsersessions_connections.emulator


WINDOW_END = pendulum.today("UTC")


def add_ended(emulator, platform, *, hours_ago, outcome="finished", **fields):
    """A session that started ``hours_ago`` before the window's end and ended a minute later."""
    started_at = WINDOW_END.timestamp() - hours_ago * HOUR
    return emulator.add_session(platform, started_at=started_at, duration=60, outcome=outcome, **fields)


def run_daily(name):
    result = run_dag(EXAMPLES / f"{name}.py", name, logical_date=WINDOW_END)
    assert result.data_interval_end == WINDOW_END
    return result


def failed_with(code):
    return {"code": code, "message": f"{code} happened"}


def test_daily_report_counts_the_zones_last_24_hours(emulator):
    zone = "scraping_browser1"
    in_window = [
        add_ended(emulator, "brightdata", hours_ago=2, outcome="failed", api_name=zone, error=failed_with("timeout")),
        add_ended(emulator, "brightdata", hours_ago=3, outcome="failed", api_name=zone, error=failed_with("timeout")),
        add_ended(emulator, "brightdata", hours_ago=4, outcome="failed", api_name=zone, error=failed_with("proxy")),
        *(add_ended(emulator, "brightdata", hours_ago=h, api_name=zone, bandwidth=1000 * h) for h in (1, 5, 6, 7)),
    ]
    # Outside the window or the zone: never counted.
    add_ended(emulator, "brightdata", hours_ago=30, outcome="failed", api_name=zone, error=failed_with("timeout"))
    add_ended(emulator, "brightdata", hours_ago=1, outcome="failed", api_name="other_zone", error=failed_with("x"))

    result = run_daily("example_brightdata_daily_report")

    assert result.state == "success", result.task_states
    report = result.xcom("report")
    assert report["sessions"] == len(in_window)
    assert report["failed"] == 3
    assert report["failed_by_error"] == {"timeout": 2, "proxy": 1}
    assert report["bandwidth_bytes"] == sum(record["bandwidth"] for record in in_window)
    failed_ids = {row["session_id"] for row in result.xcom("list_failed_sessions")}
    assert failed_ids == {record["session_id"] for record in in_window[:3]}


def test_failed_triage_maps_one_task_per_failed_session(emulator):
    retryable = add_ended(emulator, "brightdata", hours_ago=2, outcome="failed", error=failed_with("timeout"))
    other = add_ended(emulator, "brightdata", hours_ago=5, outcome="failed", error=failed_with("blocked"))
    add_ended(emulator, "brightdata", hours_ago=3)  # finished: not triaged
    add_ended(emulator, "brightdata", hours_ago=40, outcome="failed", error=failed_with("timeout"))  # too old

    result = run_daily("example_brightdata_failed_triage")

    assert result.state == "success", result.task_states
    assert sorted(name for name in result.task_states if name.startswith("triage[")) == ["triage[0]", "triage[1]"]
    assert result.xcom("tally") == {"retry": 1, "investigate": 1}
    listed = [row["session_id"] for row in result.xcom("list_failed_sessions")]
    assert sorted(listed) == sorted([retryable["session_id"], other["session_id"]])


def test_zone_gate_waits_for_the_zones_running_sessions(emulator):
    zone = "checkout_monitor"
    running = [emulator.add_session("brightdata", duration=d, api_name=zone, outcome="finished") for d in (2, 4)]
    failing = emulator.add_session("brightdata", duration=3, api_name=zone, outcome="failed")
    emulator.add_session("brightdata", duration=3600, api_name="another_zone")  # still running, not waited for

    result = run_dag(EXAMPLES / "example_brightdata_zone_gate.py", "example_brightdata_zone_gate")

    assert result.state == "success", result.task_states
    ended = result.xcom("wait_for_zone_idle")
    assert {s["session_id"] for s in ended} == {s["session_id"] for s in [*running, failing]}
    assert result.xcom("export") == {"ended": 3, "failed": 1}


def test_cloudflare_housekeeping_closes_only_the_long_running_sessions(emulator):
    now = emulator.now()
    old = [emulator.add_session("cloudflare", started_at=now - age) for age in (900, 600)]
    young = emulator.add_session("cloudflare", started_at=now - 30)

    result = run_dag(EXAMPLES / "example_cloudflare_housekeeping.py", "example_cloudflare_housekeeping")

    assert result.state == "success", result.task_states
    assert sorted(r["session_id"] for r in result.xcom("close_long_running")) == sorted(s["sessionId"] for s in old)
    records = {r["sessionId"]: r for r in emulator.sessions("cloudflare")}
    assert all(records[s["sessionId"]].get("endTime") for s in old)
    assert not records[young["sessionId"]].get("endTime")
    closes = emulator.request_count(platform="cloudflare", method="DELETE")
    assert closes == len(old)


def test_browserbase_example_waits_for_exactly_the_sessions_its_run_started(emulator):
    emulator.set_speed(10)  # the plan's 20-40 emulator seconds pass in 2-4 real ones
    emulator.add_session("browserbase", duration=None, userMetadata={"airflow_run_id": "an-older-run"})

    result = run_dag(EXAMPLES / "example_browserbase_run_sessions.py", "example_browserbase_run_sessions")

    assert result.state == "success", result.task_states
    started = result.xcom("start_sessions")
    listed = result.xcom("list_this_runs_sessions")
    assert sorted(row["session_id"] for row in listed) == sorted(started)  # this run's, not the others
    assert result.xcom("report") == {"finished": 2, "failed": 1}
    (run_id,) = {r["userMetadata"]["airflow_run_id"] for r in emulator.sessions("browserbase") if r["id"] in started}
    assert run_id not in ("an-older-run", "someone-else")
    waits = [e for e in emulator.request_log(platform="browserbase") if e["path"] == "/v1/sessions"]
    assert waits
    assert all(e["query"]["q"] == [f"user_metadata['airflow_run_id']:'{run_id}'"] for e in waits)


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="asset watchers are Airflow 3 only")
def test_the_watcher_example_declares_an_asset_watched_by_our_trigger(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES / "example_brightdata_failed_session_watcher.py"))
    assert bag.import_errors == {}
    assert bag.get_dag("example_brightdata_failed_session_watcher") is not None
    module = runpy.run_path(str(EXAMPLES / "example_brightdata_failed_session_watcher.py"))
    (watcher,) = module["failed_sessions"].watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "airflow_provider_browsersessions.triggers.events.BrowserSessionEventTrigger"
    assert kwargs["on"] == ["failed"]
    assert bag.get_dag("example_brightdata_session_audit") is not None
    # The audit watcher is a sibling of the triage one: same poll, different `on`.
    (sibling,) = module["ended_sessions"].watchers
    assert sibling.trigger.serialize()[1]["on"] == ["failed", "finished"]
    assert sibling.trigger.shared_stream_key() == watcher.trigger.shared_stream_key()
