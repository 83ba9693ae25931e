"""The example DAGs in a real deployment, driven and read back through the REST API v2."""

from __future__ import annotations

import functools
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import deployment as deploy
import pendulum
from live import sqlite_watcher_memory

from airflow_provider_browsersessions.triggers import events

if TYPE_CHECKING:
    from collections.abc import Callable

GATE = "example_brightdata_zone_gate"
REPORT = "example_brightdata_daily_report"
TRIAGE = "example_brightdata_failed_session_watcher"
AUDIT = "example_brightdata_session_audit"
WATCH_INTERVAL = 30  # the example watchers' poll_interval
WATCHED_ASSETS = ("brightdata_failed_sessions", "brightdata_ended_sessions")  # the sibling watchers' assets


def test_the_gate_defers_to_the_triggerer_and_resumes_when_the_zone_is_idle(api, live_emulator):
    zone = "checkout_monitor"
    for record in live_emulator.sessions("brightdata"):
        if record["status"] == "running" and record["api_name"] == zone:
            live_emulator.end_session("brightdata", record["session_id"])
    # Long enough that the sensor is certainly deferred before they end: a task starts in about 5 s here,
    # and a loaded CI machine may take several times that.
    waited = [live_emulator.add_session("brightdata", duration=d, api_name=zone)["session_id"] for d in (40, 45)]
    failing = live_emulator.add_session("brightdata", duration=42, api_name=zone, outcome="failed")["session_id"]
    api.unpause(GATE)

    run_id = api.trigger(GATE)
    run, states = api.wait_for_run(GATE, run_id, timeout=300, watch_task="wait_for_zone_idle")

    assert run["state"] == "success", states
    # Deferred, then handed back by the triggerer (scheduled to resume on a worker), then done.
    assert "deferred" in states, states
    assert states.index("deferred") < states.index("success"), states
    ended = api.xcom(GATE, run_id, "wait_for_zone_idle")
    assert {s["session_id"]: s["status"] for s in ended} == {
        **{session_id: "finished" for session_id in waited},
        failing: "failed",
    }
    assert api.xcom(GATE, run_id, "export") == {"ended": 3, "failed": 1}
    ti = api.task_instance(GATE, run_id, "wait_for_zone_idle")
    log = api.call("GET", f"/dags/{GATE}/dagRuns/{run_id}/taskInstances/wait_for_zone_idle/logs/{ti['try_number']}")
    sources = " ".join(str(line.get("event")) for line in log["content"][:6])
    assert ".trigger." in sources, sources  # the triggerer wrote its part of this task's log


def test_the_list_example_pushes_what_the_emulator_holds(api, live_emulator):
    api.unpause(REPORT)
    run_id = api.trigger(REPORT)
    run, _ = api.wait_for_run(REPORT, run_id, timeout=300)
    assert run["state"] == "success"

    end = pendulum.parse(run["data_interval_end"] or run["run_after"])
    assert isinstance(end, datetime)
    zone = [
        r
        for r in live_emulator.sessions("brightdata")
        if r["api_name"] == "scraping_browser1" and end - timedelta(days=1) <= pendulum.parse(r["timestamp"]) <= end  # type: ignore[operator]
    ]
    failed = {r["session_id"]: r for r in zone if r["status"] == "failed"}
    assert failed, "the seeded data has failed sessions in the last 24 hours"
    rows = api.xcom(REPORT, run_id, "list_failed_sessions")
    assert sorted(row["session_id"] for row in rows) == sorted(failed)
    for row in rows:
        record = failed[row["session_id"]]
        assert set(row) == {"session_id", "started_at", "target_url", "error_code", "error_message"}
        assert row["target_url"] == record["target_url"]
        assert row["error_code"] == record["error"]["code"]
        assert pendulum.parse(row["started_at"]) == pendulum.parse(record["timestamp"])
    report = api.xcom(REPORT, run_id, "report")
    assert report["sessions"] == len(zone)
    assert report["failed"] == len(failed)
    assert report["bandwidth_bytes"] == sum(r["bandwidth"] or 0 for r in zone)


def _events_for(api, dag_id: str, session_id: str) -> tuple[int, list[dict]]:
    """(runs of dag_id started by an event about session_id, those events' payloads)."""
    runs, payloads = 0, []
    for run in api.runs(dag_id):
        events = api.asset_events(f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
        mine = [e["extra"]["payload"] for e in events if e["extra"]["payload"]["session_id"] == session_id]
        runs += bool(mine)
        payloads += mine
    return runs, payloads


def _wait_for_triage_run(api, session_id: str, *, intervals: int) -> None:
    """Wait up to that many watch intervals for a triage run started by an event about session_id."""
    deadline = time.monotonic() + intervals * WATCH_INTERVAL
    while time.monotonic() < deadline and _events_for(api, TRIAGE, session_id)[0] == 0:
        time.sleep(2)


def _polls(log: list[dict], *, api_name: str | None = None) -> list[float]:
    """
    Times of the Bright Data running-list polls (first pages only) of one zone, or (no ``api_name``) of the
    unfiltered list, where each poll of the watchers starts.
    """
    return [
        entry["time"]
        for entry in log
        if entry["path"] == "/browser_sessions"
        and entry["query"].get("status") == ["running"]
        and entry["query"].get("api_name") == (None if api_name is None else [api_name])
        and entry["query"].get("offset", ["0"]) == ["0"]
    ]


def _wait_for_polls(live_emulator, *, since: float, polls: int, what: str) -> None:
    """
    Wait (up to two intervals more than that many) until the watchers' running-list poll has happened ``polls``
    times after ``since`` (epoch seconds): evidence of what they saw, in place of a fixed sleep.
    """
    deadline = time.monotonic() + (polls + 2) * WATCH_INTERVAL
    while True:
        seen = sum(1 for t in _polls(live_emulator.request_log(platform="brightdata")) if t > since)
        if seen >= polls:
            return
        assert time.monotonic() < deadline, f"still waiting for {what}: {seen} of {polls} polls"
        time.sleep(2)


def remembered(memory: Callable[[str], dict], part: str, session_ids: set[str], *, what: str) -> None:
    """
    Wait until both sibling watchers keep ``session_ids`` in that part of their stored memory (evidence of what
    they saw, in place of a fixed sleep).

    :param memory: Reads a watcher's memory, by its asset's name, from the deployment's metadata DB.
    """
    deadline = time.monotonic() + 4 * WATCH_INTERVAL
    while not all(session_ids <= set(memory(asset).get(part) or {}) for asset in WATCHED_ASSETS):
        assert time.monotonic() < deadline, f"still waiting for the watchers' memory of {what}"
        time.sleep(2)


def _asset_events(api, asset: str, session_id: str) -> int:
    """How many events the asset received about session_id (what the watcher emitted, before any run)."""
    events = api.asset_events("/assets/events", limit=1000)
    return sum(1 for e in events if e["name"] == asset and e["extra"]["payload"]["session_id"] == session_id)


def test_a_failed_session_starts_the_triage_dag_once_and_sibling_watchers_share_one_poll(api, live, live_emulator):
    # A quiet start: the seeded sessions still running end now, and are reported (or not) before we look.
    for record in live_emulator.sessions("brightdata"):
        if record["status"] == "running":
            live_emulator.end_session("brightdata", record["session_id"])
    watched = live_emulator.add_session("brightdata", duration=None, api_name="e2e_watch")
    finished = live_emulator.add_session("brightdata", duration=None, api_name="e2e_watch")
    api.unpause(TRIAGE)
    api.unpause(AUDIT)
    # The triggerer starts the watchers within a few seconds of the unpause; they have seen both sessions
    # running once both keep them in their memory (the per-asset state store, in the metadata DB).
    memory = functools.partial(sqlite_watcher_memory, live, key=events.STATE_KEY)
    remembered(memory, "tracked", {watched["session_id"], finished["session_id"]}, what="both sessions running")
    live_emulator.clear_log()
    window_start = time.time()
    error = {"code": "timeout", "message": "Navigation timed out"}
    live_emulator.end_session("brightdata", watched["session_id"], status="failed", error=error)
    live_emulator.end_session("brightdata", finished["session_id"], status="finished")

    _wait_for_triage_run(api, watched["session_id"], intervals=4)
    # Two more polls: a duplicate would show up by now.
    _wait_for_polls(live_emulator, since=time.time(), polls=2, what="two polls after the report")
    window = time.time() - window_start
    polls = _polls(live_emulator.request_log(platform="brightdata"))

    runs, payloads = _events_for(api, TRIAGE, watched["session_id"])
    assert runs == 1, f"the triage DAG ran {runs} times for the failed session"
    (payload,) = payloads
    assert payload["status"] == "failed"
    assert payload["error_code"] == "timeout"
    assert payload["error_message"] == "Navigation timed out"
    assert payload["api_name"] == "e2e_watch"
    assert _events_for(api, TRIAGE, finished["session_id"])[0] == 0  # finished: not the triage watcher's `on`
    # Each watcher emitted one event per session in its own `on`, from the same polls. (Airflow may fold
    # events that arrive together into one run of the audit DAG, or into its next run: that is Airflow's
    # batching of asset events, so the audit side is counted in events, not runs.)
    assert _asset_events(api, "brightdata_failed_sessions", watched["session_id"]) == 1
    assert _asset_events(api, "brightdata_failed_sessions", finished["session_id"]) == 0
    assert _asset_events(api, "brightdata_ended_sessions", watched["session_id"]) == 1
    assert _asset_events(api, "brightdata_ended_sessions", finished["session_id"]) == 1
    # One poll per interval serves both watchers; two unshared loops would make at least twice as many.
    intervals = window / WATCH_INTERVAL
    print(f"{len(polls)} polls in {window:.0f} s ({intervals:.1f} intervals) for 2 sibling watchers")
    assert len(polls) <= int(intervals) + 1, (len(polls), window)
    assert len(polls) >= int(intervals) - 1, (len(polls), window)


def test_a_triggerer_restart_loses_no_session_end_and_repeats_none(api, live, live_emulator):
    api.unpause(TRIAGE)
    api.unpause(AUDIT)
    error = {"code": "blocked", "message": "Blocked by the target"}
    before = live_emulator.add_session("brightdata", duration=None, api_name="e2e_restart")["session_id"]
    during = live_emulator.add_session("brightdata", duration=None, api_name="e2e_restart")["session_id"]
    memory = functools.partial(sqlite_watcher_memory, live, key=events.STATE_KEY)
    remembered(memory, "tracked", {before, during}, what="both sessions running")
    live_emulator.end_session("brightdata", before, status="failed", error=error)
    _wait_for_triage_run(api, before, intervals=4)
    assert _events_for(api, TRIAGE, before)[0] == 1

    # Stop the triggerer (SIGTERM, as a service manager does), fail a session while it is down, start it again.
    deploy.restart(
        live,
        "triggerer",
        while_stopped=lambda: live_emulator.end_session("brightdata", during, status="failed", error=error),
    )

    _wait_for_triage_run(api, during, intervals=8)
    # Two more polls of the restarted watchers: a repeat of `before` would show up by now.
    _wait_for_polls(live_emulator, since=time.time(), polls=2, what="two polls after the restart's report")
    # On 3.3 the restarted watchers resume from their memory in the per-asset state store: the session that
    # failed during the downtime is reported once, and the one reported before the restart is not again.
    assert _events_for(api, TRIAGE, during)[0] == 1
    assert _events_for(api, TRIAGE, before)[0] == 1
    for session_id in (before, during):
        assert _asset_events(api, "brightdata_failed_sessions", session_id) == 1
        assert _asset_events(api, "brightdata_ended_sessions", session_id) == 1
