"""Deadlines are exact (issue #19): a wait ends at its deadline whatever the poll interval or Retry-After.

Each deferred wait wakes at its own deadline, makes one final check and fires a timeout event naming what
still runs; poke and reschedule modes do the same. The event watcher honours Retry-After (capped) and
survives redirects and ``null`` bodies. Bounds are generous (a loaded 2-core machine): "before the
deadline plus 5 s" where the old behaviour took the whole poll interval (30 s) or never fired.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import pytest
from airflow_harness import run_dag

from airflow_provider_browsersessions.compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

DAGS = Path(__file__).parent / "dags" / "deadline_dags.py"
MARGIN = 5.0  # seconds past a deadline an event may take on a loaded machine; the bug took 30 s or forever


@pytest.fixture
def emulator(frozen_emulator):
    return frozen_emulator  # frozen: sessions end only when a test ends them


def wait_trigger(session_ids, *, deadline_in, poll_interval=30.0, filters=None):
    return BrowserSessionsTrigger(
        conn_id="brightdata_default",
        session_ids=session_ids,
        filters=filters or {},
        poll_interval=poll_interval,
        end_time=time.time() + deadline_in,
    )


async def timed_event(trigger):
    """The first event and the epoch second it arrived."""
    async for event in trigger.run():
        return event.payload, time.time()
    raise AssertionError("the trigger ended without an event")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("deadline_in", [3.0, 6.0])
def test_a_deferred_wait_fires_its_timeout_at_the_deadline_not_at_the_next_poll(emulator, deadline_in):
    running = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(7)]
    trigger = wait_trigger(running, deadline_in=deadline_in)
    payload, arrived = asyncio.run(timed_event(trigger))
    assert payload["status"] == "timeout"
    assert arrived < trigger.end_time + MARGIN  # the next shared poll was 30 s away
    assert "7 watched session(s) still running" in payload["message"]
    assert running[0] in payload["message"]
    assert "and 2 more" in payload["message"]
    # One walk at the start, one final check at the deadline: nothing in between at poll_interval 30.
    assert len(emulator.request_log(platform="brightdata")) <= 3


@pytest.mark.timeout(60)
def test_a_session_ending_between_the_last_poll_and_the_deadline_succeeds_at_the_final_check(emulator):
    session_id = emulator.add_session("brightdata", duration=None)["session_id"]
    trigger = wait_trigger([session_id], deadline_in=3.0)

    async def scenario():
        pending = asyncio.create_task(timed_event(trigger))
        await asyncio.sleep(1.0)  # the first poll saw it running; the next is 30 s away
        emulator.end_session("brightdata", session_id)
        return await pending

    payload, arrived = asyncio.run(scenario())
    assert payload["status"] == "success"
    assert [s["session_id"] for s in payload["sessions"]] == [session_id]
    assert trigger.end_time - 0.5 <= arrived < trigger.end_time + MARGIN  # at the deadline, not 30 s later


@pytest.mark.timeout(60)
def test_a_huge_retry_after_on_the_shared_poll_does_not_hold_any_deadline(emulator):
    """One 429 asking for 31 years parked the shared poll and every trigger on it: they never fired."""
    session_id = emulator.add_session("brightdata", duration=None)["session_id"]
    emulator.script_faults([{"kind": "429", "retry_after": 999999999}] * 20, platform="brightdata")
    triggers = [wait_trigger([session_id, "other"], deadline_in=d, poll_interval=1.0) for d in (3.0, 5.0)]

    async def scenario():
        return await asyncio.gather(*(timed_event(t) for t in triggers))

    results = asyncio.run(scenario())
    for trigger, (payload, arrived) in zip(triggers, results, strict=True):
        assert payload["status"] == "timeout"
        assert arrived < trigger.end_time + MARGIN
        assert "the last poll failed" in payload["message"]
        assert session_id in payload["message"]
    # The shared poll asked once and honoured the (capped) Retry-After; each trigger's final check asked once.
    assert len(emulator.request_log(platform="brightdata")) <= 4


@pytest.mark.timeout(60)
def test_a_deferred_wait_whose_final_check_cannot_answer_still_times_out_on_time(emulator):
    session_id = emulator.add_session("brightdata", duration=None)["session_id"]
    trigger = wait_trigger([session_id, "other"], deadline_in=4.0)

    async def scenario():
        pending = asyncio.create_task(timed_event(trigger))
        while len(emulator.request_log(platform="brightdata")) < 2:  # the first poll: a walk, a read of "other"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        # The final check meets a server that stalls far longer than FINAL_CHECK_SECONDS.
        emulator.script_faults([{"kind": "latency", "seconds": 8}] * 4, platform="brightdata")
        return await pending

    payload, arrived = asyncio.run(scenario())
    assert payload["status"] == "timeout"
    assert arrived < trigger.end_time + MARGIN
    assert f"1 watched session(s) still running: {session_id}" in payload["message"]  # the last poll's state


# -- the event watcher: Retry-After honoured and capped, odd answers survived ---------------------------------

needs_airflow3 = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="asset watchers are Airflow 3 only")


def run_watcher_for(seconds, **kwargs):
    from airflow_provider_browsersessions.triggers.events import BrowserSessionEventTrigger

    trigger = BrowserSessionEventTrigger(conn_id="brightdata_default", **kwargs)
    events: list[dict] = []

    async def scenario():
        async def collect():
            async for event in trigger.run():
                events.append(event.payload)

        task = asyncio.create_task(collect())
        await asyncio.sleep(seconds)
        assert not task.done(), task.exception() if task.done() else None  # the watcher is still running
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    return events


@needs_airflow3
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("retry_after", "most"), [(5, 3), (999999999, 2)])
def test_the_event_watcher_honours_retry_after_instead_of_polling_on(emulator, retry_after, most):
    emulator.script_faults([{"kind": "429", "retry_after": retry_after}] * 200, platform="brightdata")
    run_watcher_for(8.0 if retry_after == 5 else 4.0, poll_interval=0.1)
    # At poll_interval 0.1 a watcher that ignores Retry-After sends dozens of requests in that time.
    assert len(emulator.request_log(platform="brightdata")) <= most


@needs_airflow3
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "odd_answer",
    [
        {"kind": "body", "status": 302, "body": ""},
        {"kind": "body", "status": 200, "body": "null"},
    ],
    ids=["redirect", "null-body"],
)
def test_the_event_watcher_survives_a_redirect_or_a_null_body_and_keeps_reporting(emulator, odd_answer):
    from airflow_provider_browsersessions.triggers.events import BrowserSessionEventTrigger

    session_id = emulator.add_session("brightdata", duration=None)["session_id"]
    trigger = BrowserSessionEventTrigger(conn_id="brightdata_default", poll_interval=0.2)
    events: list[dict] = []

    async def scenario():
        async def collect():
            async for event in trigger.run():
                events.append(event.payload)
                return

        task = asyncio.create_task(collect())
        await asyncio.sleep(1.0)  # the baseline poll saw the session running
        emulator.script_faults([odd_answer] * 3, platform="brightdata", path_contains="/browser_sessions")
        await asyncio.sleep(1.0)
        emulator.end_session("brightdata", session_id, status="failed")
        await asyncio.wait_for(task, 30)

    asyncio.run(scenario())
    assert [(e["session_id"], e["status"]) for e in events] == [(session_id, "failed")]


# -- poke and reschedule modes, and the deferred sensor, in real DAG runs --------------------------------------


@pytest.mark.system
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_a_sensor_with_poke_interval_30_and_timeout_5_ends_at_its_deadline_naming_what_runs(
    airflow_db, emulator, mode, caplog, capfd
):
    # The first dag.test() of a session syncs the DAG bundle (a minute on a loaded machine): not the wait's time.
    run_dag(DAGS, "drain_by_url_brightdata")
    session_id = emulator.add_session("brightdata", duration=None)["session_id"]
    began = time.monotonic()
    result = run_dag(DAGS, f"deadline_{mode}", conf={"ids": [session_id]})
    took = time.monotonic() - began
    assert result.task_states["wait"] == "failed"
    # Generous: dag.test's own work is in it. Sleeping the whole interval would take over 30 s.
    assert took < 25, took
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert f"1 watched session(s) still running: {session_id}" in logs
    assert "Timed out waiting for browser sessions" in logs
    if mode != "deferrable":
        # Airflow's own measure of the wait, quoted in the message: the final poke came at the deadline.
        (duration,) = {float(d) for d in re.findall(r"run duration of ([0-9.]+) seconds", logs)}
        assert 5 < duration < 5 + MARGIN, duration


# -- issue #21: a drain by a filter a running session cannot match is refused ---------------------------------


@pytest.mark.system
@pytest.mark.parametrize("platform", ["brightdata", "cloudflare"])
def test_a_drain_by_url_is_refused_before_any_request_never_a_silent_success(
    airflow_db, emulator, platform, caplog, capfd
):
    emulator.add_session(platform, duration=None, **({"api_name": "shop_zone"} if platform == "brightdata" else {}))
    result = run_dag(DAGS, f"drain_by_url_{platform}")
    assert result.task_states["wait"] == "failed"
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert "target_url" in logs
    assert "unset when draining" in logs
    assert emulator.request_log(platform=platform) == []


# -- issue #25: reschedule-mode drains remember (Airflow 3.3's task state store) -------------------------------


def _zone_polls(emulator, zone):
    return sum(1 for r in emulator.request_log(platform="brightdata") if r["query"].get("api_name") == [zone])


def _after_polls(emulator, zone, steps):
    """Run each action once the sensor polled the zone ``n`` more times since the previous step."""

    def run():
        for polls_to_wait, action in steps:
            target = _zone_polls(emulator, zone) + polls_to_wait
            deadline = time.monotonic() + 120
            while _zone_polls(emulator, zone) < target and time.monotonic() < deadline:
                time.sleep(0.05)
            action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _one_fails_one_finishes_between_pokes(emulator):
    """Two running sessions in ``memory_zone``: after the sensor's first poll one fails, then the other finishes."""
    failing, finishing = (
        emulator.add_session("brightdata", duration=None, api_name="memory_zone")["session_id"] for _ in range(2)
    )
    ender = _after_polls(
        emulator,
        "memory_zone",
        [
            (1, lambda: emulator.end_session("brightdata", failing, status="failed")),
            (0, lambda: emulator.end_session("brightdata", finishing, status="finished")),
        ],
    )
    return failing, finishing, ender


def _store_available():
    from airflow_provider_browsersessions.compat import AIRFLOW_V_3_3_PLUS

    return AIRFLOW_V_3_3_PLUS


needs_store = pytest.mark.skipif(not _store_available(), reason="the task state store is Airflow 3.3+")


@pytest.mark.system
@needs_store
@pytest.mark.timeout(180)
@pytest.mark.parametrize("dag_id", ["memory_drain", "memory_drain_report"])
def test_a_reschedule_drain_sees_a_session_that_failed_between_pokes(airflow_db, emulator, dag_id, caplog, capfd):
    failing, finishing, ender = _one_fails_one_finishes_between_pokes(emulator)
    result = run_dag(DAGS, dag_id)
    ender.join(timeout=5)
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert "Resuming the wait from the task state store" in logs  # each poke is a new process: memory came back
    if dag_id == "memory_drain":
        assert result.task_states["wait"] == "failed"
        assert f"1 watched session(s) failed: {failing}" in logs
    else:
        assert result.task_states["wait"] == "success"
        final = {s["session_id"]: s["status"] for s in result.xcom("wait")}
        assert final == {failing: "failed", finishing: "finished"}


@pytest.mark.system
@needs_store
@pytest.mark.timeout(180)
def test_a_retried_poke_mode_drain_resumes_from_the_store(airflow_db, emulator, caplog, capfd):
    lost, kept = (
        emulator.add_session("brightdata", duration=None, api_name="retry_zone")["session_id"] for _ in range(2)
    )

    def crash_the_first_try():
        emulator.end_session("brightdata", lost, status="failed")
        # A non-retryable answer ends the first try; the task's retry starts a new process.
        emulator.script_faults(
            [{"kind": "body", "status": 400, "body": '{"error": "simulated outage"}'}],
            platform="brightdata",
            path_contains="/browser_sessions",
        )

    ender = _after_polls(
        emulator,
        "retry_zone",
        [(1, crash_the_first_try), (2, lambda: emulator.end_session("brightdata", kept, status="finished"))],
    )
    result = run_dag(DAGS, "memory_retry")
    ender.join(timeout=5)
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert "simulated outage" in logs  # the first try really died
    assert "Resuming the wait from the task state store" in logs
    assert result.task_states["wait"] == "success"
    # Without the store the retry would know only the session still running when it started.
    assert {s["session_id"]: s["status"] for s in result.xcom("wait")} == {lost: "failed", kept: "finished"}


@pytest.mark.system
@pytest.mark.timeout(180)
def test_a_deferred_drain_hands_what_its_trigger_saw_back_to_the_sensor_and_fails_on_it(
    airflow_db, emulator, caplog, capfd
):
    zone = "deferred_memory_zone"
    emulator.add_session("brightdata", duration=None, api_name=zone)
    late: dict[str, str] = {}

    def start_after_the_first_poke():
        late["id"] = emulator.add_session("brightdata", duration=None, api_name=zone)["session_id"]

    ender = _after_polls(
        emulator,
        zone,
        [
            (1, start_after_the_first_poke),  # unknown to the sensor's first poke: only a trigger sees it run
            (1, lambda: emulator.end_session("brightdata", late["id"], status="failed")),
        ],
    )
    result = run_dag(DAGS, "memory_deferred")
    ender.join(timeout=5)
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert f"Saw 1 more session(s) running ({late['id']}): saving the wait's memory" in logs
    assert "the wait goes on in the triggerer" in logs  # the sensor resumed on a worker and deferred again
    assert result.task_states["wait"] == "failed"
    assert f"1 watched session(s) failed: {late['id']}" in logs


@pytest.mark.system
@pytest.mark.skipif(_store_available(), reason="Airflow 3.3+ has the task state store")
@pytest.mark.timeout(180)
def test_without_the_store_a_reschedule_drain_says_what_it_cannot_see(airflow_db, emulator, caplog, capfd):
    failing, _, ender = _one_fails_one_finishes_between_pokes(emulator)
    result = run_dag(DAGS, "memory_drain")
    ender.join(timeout=5)
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    # Once, at the first poke (counted as log records: stdout and stderr may repeat the same record).
    warnings = [r for r in caplog.records if "This Airflow has no task state store" in r.getMessage()]
    assert len(warnings) == 1
    assert "Use mode='poke' or deferrable=True" in logs
    # The documented limitation: the failure between pokes went unseen.
    assert result.task_states["wait"] == "success"
    assert failing not in {s["session_id"] for s in result.xcom("wait")}


# -- a Retry-After inside one poke (poke mode) ---------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_hook_call_bounded_by_a_deadline_gives_up_instead_of_sleeping_a_retry_after_past_it(emulator):
    from airflow_provider_browsersessions.exceptions import RateLimitedError
    from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook

    emulator.script_faults([{"kind": "429", "retry_after": 100}] * 20, platform="brightdata")
    hook = BrightDataBrowserHook()
    started = time.monotonic()
    with pytest.raises(RateLimitedError), hook.calls_within(2.0):
        hook.list_sessions()
    assert time.monotonic() - started < 2.0 + MARGIN  # the retry policy alone would sleep 100 s
    assert emulator.request_count() == 1
    hook.close()


@pytest.mark.timeout(120)
def test_a_poke_mode_sensor_keeps_its_deadline_when_the_api_asks_for_a_long_retry_after(emulator):
    from airflow.providers.common.compat.sdk import AirflowSensorTimeout

    from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

    session_id = emulator.add_session("brightdata", duration=None)["session_id"]
    emulator.script_faults([{"kind": "429", "retry_after": 100}] * 50, platform="brightdata")
    sensor = BrowserSessionsSensor(
        task_id="gate", conn_id="brightdata_default", session_ids=[session_id], poke_interval=1, timeout=3
    )
    started = time.monotonic()
    with pytest.raises(AirflowSensorTimeout, match=session_id):
        sensor.execute({})
    # Before: the first poke honoured Retry-After: 100 inside the hook's retries (max_retry_wait 300 s).
    assert time.monotonic() - started < 3 + MARGIN + 3  # the deadline, the final check's grace, the margin
