"""BrowserSessionsTrigger in a real event loop against the emulator: events, errors, coalescing, restarts."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger


@pytest.fixture
def emulator(browsersessions_connections):
    return browsersessions_connections.emulator


def trigger(**overrides):
    kwargs = {
        "conn_id": "brightdata_default",
        "session_ids": None,
        "filters": {},
        "missing": "finished",
        "fail_on_failed": True,
        "poll_interval": 0.2,
        "end_time": None,
    }
    kwargs.update(overrides)
    return BrowserSessionsTrigger(**kwargs)


async def first_event(trig, timeout=20.0):
    async def run():
        async for event in trig.run():
            return event.payload
        return None

    return await asyncio.wait_for(run(), timeout)


def test_serializes_exactly_its_arguments_and_round_trips():
    original = trigger(session_ids=["a"], filters={"api_name": "zone"}, end_time=123.0)
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_provider_browsersessions.triggers.sessions.BrowserSessionsTrigger"
    json.dumps(kwargs)  # what the triggerer stores must be JSON
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_fires_success_with_final_states_once_watched_sessions_end(emulator):
    emulator.set_speed(20)
    a = emulator.add_session("brightdata", duration=10, outcome="finished")["session_id"]
    b = emulator.add_session("brightdata", duration=20, outcome="finished")["session_id"]
    payload = asyncio.run(first_event(trigger(session_ids=[a, b])))
    assert payload["status"] == "success"
    assert {s["session_id"]: s["status"] for s in payload["sessions"]} == {a: "finished", b: "finished"}


def test_fires_failed_naming_the_session_and_its_error(emulator):
    sid = emulator.add_session("brightdata", duration=None)["session_id"]
    emulator.end_session("brightdata", sid, status="failed", error={"code": "timeout", "message": "Too slow"})
    payload = asyncio.run(first_event(trigger(session_ids=[sid])))
    assert payload["status"] == "failed"
    assert f"{sid} (timeout: Too slow)" in payload["message"]


def test_drain_mode_on_cloudflare_waits_for_the_active_list_to_empty(emulator):
    emulator.set_speed(20)
    for seconds in (5, 10):
        emulator.add_session("cloudflare", duration=seconds)
    payload = asyncio.run(first_event(trigger(conn_id="cloudflare_browser_rendering_default")))
    assert payload["status"] == "success"
    assert len(payload["sessions"]) == 2


def test_times_out_with_a_clear_event(emulator):
    sid = emulator.add_session("brightdata", duration=None)["session_id"]
    import time

    payload = asyncio.run(first_event(trigger(session_ids=[sid], end_time=time.time() + 0.5)))
    assert payload["status"] == "timeout"
    assert "1 watched session(s) still running" in payload["message"]


def test_non_retryable_errors_become_error_events_without_secrets(emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_BD_WRONG",
        json.dumps({"conn_type": "brightdata", "host": emulator.url, "password": "canary-secret-789"}),
    )
    payload = asyncio.run(first_event(trigger(conn_id="bd_wrong", session_ids=["x"])))
    assert payload["status"] == "error"
    assert "HTTP 401" in payload["message"]
    assert "canary-secret-789" not in json.dumps(payload)


def test_rate_limits_are_waited_out_not_fatal(emulator):
    sid = emulator.add_session("brightdata", duration=None)["session_id"]
    emulator.end_session("brightdata", sid)
    emulator.script_faults([{"kind": "429", "retry_after": 0.1}] * 8, platform="brightdata")
    payload = asyncio.run(first_event(trigger(session_ids=[sid])))
    assert payload["status"] == "success"


def test_concurrent_triggers_on_one_connection_share_one_list_call_per_interval(emulator):
    """Coalescing: 50 deferred waits on the same connection and filters, one running-list call per poll."""
    emulator.set_speed(0)  # frozen: sessions end only when the test advances the clock
    ids = [emulator.add_session("brightdata", duration=None, api_name="zone")["session_id"] for _ in range(5)]

    async def scenario():
        triggers = [trigger(session_ids=ids, filters={"api_name": "zone"}, poll_interval=0.3) for _ in range(50)]
        tasks = [asyncio.create_task(first_event(t, timeout=30)) for t in triggers]
        await asyncio.sleep(1.6)  # about five polls while everything runs
        polls_while_running = emulator.request_count(platform="brightdata", path_contains="/browser_sessions")
        for sid in ids:
            emulator.end_session("brightdata", sid)
        payloads = await asyncio.gather(*tasks)
        return polls_while_running, payloads

    polls_while_running, payloads = asyncio.run(scenario())
    assert all(p["status"] == "success" for p in payloads)
    assert all(len(p["sessions"]) == 5 for p in payloads)
    # Fifty independent pollers would have made about 250 list calls in 1.6 s at 0.3 s intervals.
    assert 3 <= polls_while_running <= 7
    # Each ended id was read once for all fifty triggers, not fifty times.
    reads = [e for e in emulator.request_log(platform="brightdata") if e["path"] != "/browser_sessions"]
    assert len(reads) == len(ids)


def test_a_new_trigger_instance_resumes_a_wait_after_a_restart(emulator):
    """A triggerer restart rebuilds the trigger from its serialized kwargs; the wait completes."""
    emulator.set_speed(0)
    sid = emulator.add_session("brightdata", duration=None)["session_id"]
    first = trigger(session_ids=[sid])

    async def run_then_cancel():
        task = asyncio.create_task(first_event(first))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_cancel())
    _, kwargs = first.serialize()
    emulator.end_session("brightdata", sid)
    payload = asyncio.run(first_event(BrowserSessionsTrigger(**kwargs)))
    assert payload["status"] == "success"
    assert payload["sessions"][0]["session_id"] == sid


def test_a_cancel_that_comes_as_a_poll_completes_stops_the_trigger(emulator):
    # The triggerer cancels a trigger when its task is cleared, or moves it to another triggerer. On Python
    # 3.11, asyncio.wait_for drops a cancel that arrives once the awaited poll has completed but before the
    # waiting task resumes: the trigger would keep polling (and could fire) after it was removed. Here a
    # second subscriber of the same shared poll wakes right after the trigger's poll completes, and cancels
    # the trigger in exactly that gap.
    from airflow_provider_browsersessions.sessions import SessionQuery
    from airflow_provider_browsersessions.triggers.shared_poll import subscribe
    from airflow_provider_browsersessions.waiting import WaitPlan

    emulator.add_session("brightdata", duration=None)
    # A drain reads nothing, so its poll completes on the snapshot; a deadline makes the poll a timed wait.
    trig = trigger(poll_interval=0.05, end_time=time.time() + 600)

    async def scenario() -> str:
        async def run_trigger() -> None:
            async for _ in trig.run():
                return

        task = asyncio.create_task(run_trigger())
        while emulator.request_count() == 0:  # the trigger has subscribed and waits: it is woken first
            await asyncio.sleep(0.01)
        running = WaitPlan(query=SessionQuery.build(), session_ids=None).running_query
        async with subscribe(conn_id=trig.conn_id, running_query=running, interval=trig.poll_interval) as sub:
            for _ in range(3):
                await sub.next()
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=10)
        if not done:
            return "still polling 10 s after the cancel"
        return "cancelled" if task.cancelled() else "ended on its own"

    assert asyncio.run(scenario()) == "cancelled"


def test_browserbase_ids_end_and_a_timed_out_one_fails_the_wait(emulator):
    emulator.set_speed(20)
    done = emulator.add_session("browserbase", duration=10)["id"]
    payload = asyncio.run(first_event(trigger(conn_id="browserbase_default", session_ids=[done])))
    assert payload["status"] == "success"
    assert [s["status"] for s in payload["sessions"]] == ["finished"]
    late = emulator.add_session("browserbase", duration=None)["id"]
    emulator.end_session("browserbase", late, status="failed", failure="TIMED_OUT")
    payload = asyncio.run(first_event(trigger(conn_id="browserbase_default", session_ids=[late])))
    assert payload["status"] == "failed"
    assert f"{late} (TIMED_OUT" in payload["message"]


def test_browserbase_drain_by_metadata_serializes_and_waits_for_the_tagged_sessions_only(emulator):
    emulator.set_speed(20)
    for seconds in (5, 10):
        emulator.add_session("browserbase", duration=seconds, userMetadata={"run": {"id": "r1"}})
    emulator.add_session("browserbase", duration=None, userMetadata={"run": {"id": "r2"}})
    original = trigger(conn_id="browserbase_default", filters={"metadata": {"run": {"id": "r1"}}})
    _, kwargs = original.serialize()
    json.dumps(kwargs)  # what the triggerer stores must be JSON
    payload = asyncio.run(first_event(BrowserSessionsTrigger(**kwargs)))
    assert payload["status"] == "success"
    assert len(payload["sessions"]) <= 2  # those it saw end; the r2 session never held it
    lists = [e for e in emulator.request_log(platform="browserbase") if e["path"] == "/v1/sessions"]
    assert all(e["query"]["q"] == ["user_metadata['run']['id']:'r1'"] for e in lists)
