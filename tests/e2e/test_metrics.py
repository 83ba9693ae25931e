"""
The provider's metrics on the live deployment: StatsD lines on the suite's UDP socket (``statsd`` fixture), each
Airflow component under its own prefix (``deployment.statsd_prefix``): a list task's from its worker (the
LocalExecutor's task processes carry the scheduler's prefix), a deferred wait's and a watcher's from the triggerer.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from live import sqlite_watcher_memory

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.triggers import events

if TYPE_CHECKING:
    from live import StatsdListener

REPORT = "example_brightdata_daily_report"
GATE = "example_brightdata_zone_gate"
GATE_ZONE = "checkout_monitor"
TRIAGE = "example_brightdata_failed_session_watcher"
TRIAGE_ASSET = "brightdata_failed_sessions"
WATCH_INTERVAL = 30  # the example watchers' poll_interval
#: The prefixes ``deployment.statsd_prefix`` gives: a task's lines come from the scheduler's LocalExecutor.
WORKER, TRIGGERER = "airflow.scheduler.", "airflow.triggerer."


def test_a_list_task_sends_its_request_metrics_from_its_worker(api, statsd: StatsdListener):
    api.unpause(REPORT)
    run_id = api.trigger(REPORT)
    run, _ = api.wait_for_run(REPORT, run_id, timeout=300)
    assert run["state"] == "success"

    statsd.wait_for(WORKER + metrics.REQUESTS, tags={"platform": "brightdata", "outcome": "2xx"}, timeout=60)
    statsd.wait_for(WORKER + metrics.REQUEST_DURATION, tags={"platform": "brightdata"}, timeout=60)
    statsd.wait_for(WORKER + metrics.PAGES, tags={"platform": "brightdata"}, timeout=60)
    listed = [row["session_id"] for row in api.xcom(REPORT, run_id, "list_failed_sessions")]
    assert listed
    lines = statsd.lines()
    assert not [line for line in lines if any(session_id in line for session_id in listed)]


def test_a_deferred_wait_and_a_watcher_send_theirs_from_the_triggerer(api, live, live_emulator, statsd):
    # The gate's zone holds one session that ends by itself after the sensor has deferred.
    for record in live_emulator.sessions("brightdata"):
        if record["status"] == "running" and record["api_name"] == GATE_ZONE:
            live_emulator.end_session("brightdata", record["session_id"])
    live_emulator.add_session("brightdata", duration=60, api_name=GATE_ZONE)
    watched = live_emulator.add_session("brightdata", duration=None, api_name="e2e_metrics")["session_id"]
    api.unpause(GATE)
    api.unpause(TRIAGE)
    run_id = api.trigger(GATE)

    # The watcher reports the session's end once it has seen it running (its memory, in the metadata DB).
    memory = functools.partial(sqlite_watcher_memory, live, TRIAGE_ASSET, events.STATE_KEY)
    deadline = time.monotonic() + 4 * WATCH_INTERVAL
    while watched not in set(memory().get("tracked") or {}):
        assert time.monotonic() < deadline, "the watcher never kept the running session in its memory"
        time.sleep(2)
    live_emulator.end_session("brightdata", watched, status="failed", error={"code": "e2e", "message": "metrics"})

    run, _ = api.wait_for_run(GATE, run_id, timeout=300)
    assert run["state"] == "success"
    # mode=deferred, from the triggerer: the sensor deferred and its trigger ended the wait.
    statsd.wait_for(TRIGGERER + metrics.WAITS, tags={"mode": "deferred", "outcome": "success"}, timeout=60)
    statsd.wait_for(TRIGGERER + metrics.WAIT_DURATION, tags={"mode": "deferred"}, timeout=60)
    statsd.wait_for(TRIGGERER + metrics.SHARED_POLL_DURATION, tags={"outcome": "ok"}, timeout=60)
    statsd.wait_for(TRIGGERER + metrics.SHARED_POLLS_LIVE, timeout=60)
    statsd.wait_for(TRIGGERER + metrics.REQUESTS, tags={"platform": "brightdata"}, timeout=60)
    statsd.wait_for(TRIGGERER + metrics.WATCHER_EVENTS, tags={"status": "failed"}, timeout=4 * WATCH_INTERVAL)
    assert not [line for line in statsd.lines() if watched in line]
