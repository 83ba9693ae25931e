"""Paging while sessions start, Cloudflare's lockout window, and waits that outlive their triggerer or worker."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.transport import RetryPolicy
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

LOCKOUT_WINDOW = 0.8


async def first_event(trigger):
    """What the triggerer does: iterate the trigger's run() until it fires."""
    async for event in trigger.run():
        return event
    return None


@pytest.fixture
def emulator(browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)
    return emulator


# -- pagination drift ------------------------------------------------------------------------------


@pytest.mark.parametrize("new_per_page", [1, 37, 150])
def test_sessions_starting_while_paging_newest_first_cause_no_duplicate_and_no_miss(emulator, new_per_page):
    emulator.seed_sessions(platform="brightdata", count=450, seed=21)
    before = {r["session_id"] for r in emulator.sessions("brightdata")}
    walk = BrightDataBrowserHook().iter_sessions()  # newest first: new sessions push older ones to later pages
    seen: list[str] = []
    for index, session in enumerate(walk):
        seen.append(session.session_id)
        if index % 100 == 99:  # a page was used up: sessions start before the next one is fetched
            for _ in range(new_per_page):
                emulator.add_session("brightdata", duration=None)
    assert len(seen) == len(set(seen))  # no duplicates handed out
    assert before <= set(seen)  # every session that existed when the listing began
    assert walk.walk.stats.duplicates > 0  # the shift really happened, and was absorbed
    assert walk.walk.stats.duplicates + len(seen) == walk.walk.stats.scanned


# -- Cloudflare's lockout ----------------------------------------------------------------------------


def test_a_hook_waits_out_the_lockout_with_backoff_not_a_tight_loop(emulator):
    emulator.add_session("cloudflare", duration=None)
    emulator.set_lockout(budget=2, window=LOCKOUT_WINDOW)
    hook = CloudflareBrowserRenderingHook(retry=RetryPolicy(max_retries=10, max_wait=10.0, backoff=0.05))
    started = time.monotonic()
    results = [len(hook.list_sessions()) for _ in range(4)]  # the third call hits the locked window
    assert results == [1, 1, 1, 1]
    log = emulator.request_log(platform="cloudflare")
    locked = [entry for entry in log if entry["fault"] == "lockout"]
    assert 1 <= len(locked) <= 3  # Retry-After said how long is left: one or two early knocks, no hammering
    assert time.monotonic() - started >= LOCKOUT_WINDOW * 0.9  # it really waited for the window


def test_a_poking_sensor_survives_a_lockout_longer_than_its_retry_budget(emulator):
    session = emulator.add_session("cloudflare", duration=None)
    sensor = BrowserSessionsSensor(
        task_id="s", conn_id="cloudflare_browser_rendering_default", session_ids=[session["sessionId"]]
    )
    sensor.hook._retry_override = RetryPolicy(max_retries=0, max_wait=0.1)  # give up at once: the poke must cope
    emulator.set_lockout(budget=0, window=LOCKOUT_WINDOW)
    assert sensor.poke({}).is_done is False  # locked out: "not yet", not a failed task
    emulator.end_session("cloudflare", session["sessionId"])
    time.sleep(LOCKOUT_WINDOW)
    emulator.set_lockout(budget=None)
    result = sensor.poke({})
    assert result.is_done is True
    assert [s["session_id"] for s in result.xcom_value] == [session["sessionId"]]


def test_a_trigger_survives_the_lockout_and_fires_once_it_ends(emulator):
    session = emulator.add_session("cloudflare", duration=None)
    trigger = BrowserSessionsTrigger(
        conn_id="cloudflare_browser_rendering_default",
        session_ids=[session["sessionId"]],
        filters=SessionQuery().to_dict(),
        poll_interval=0.1,
    )
    emulator.set_lockout(budget=1, window=LOCKOUT_WINDOW)

    async def scenario():
        task = asyncio.create_task(first_event(trigger))
        await asyncio.sleep(0.3)
        emulator.end_session("cloudflare", session["sessionId"])
        return await asyncio.wait_for(task, 30)

    started = time.monotonic()
    event = asyncio.run(scenario())
    windows = (time.monotonic() - started) / LOCKOUT_WINDOW + 1
    assert event.payload["status"] == "success"
    log = emulator.request_log(platform="cloudflare")
    locked = [e for e in log if e["fault"] == "lockout"]
    # The budget (1 per window) keeps locking it out; each locked answer's Retry-After (the time left in the
    # window) is honoured, so it knocks about once or twice per window, where polling every 0.1 s would be 8.
    assert locked
    assert len(locked) <= 2 * windows + 1


# -- restarts ----------------------------------------------------------------------------------------


def test_a_deferred_wait_survives_a_triggerer_restart_even_if_the_session_ended_meanwhile(emulator):
    ids = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(3)]
    first = BrowserSessionsTrigger(
        conn_id="brightdata_default", session_ids=ids, filters=SessionQuery().to_dict(), poll_interval=0.05
    )

    async def run_until_cancelled():
        task = asyncio.create_task(first_event(first))
        await asyncio.sleep(0.3)
        task.cancel()  # the triggerer goes away
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_until_cancelled())
    # While no triggerer runs, every watched session ends.
    emulator.end_session("brightdata", ids[0])
    emulator.end_session("brightdata", ids[1], status="finished")
    emulator.end_session("brightdata", ids[2])

    classpath, kwargs = first.serialize()  # what the metadata DB holds
    assert classpath == "airflow_provider_browsersessions.triggers.sessions.BrowserSessionsTrigger"
    second = BrowserSessionsTrigger(**kwargs)
    event = asyncio.run(asyncio.wait_for(first_event(second), 30))
    assert event.payload["status"] == "success"
    assert sorted(s["session_id"] for s in event.payload["sessions"]) == sorted(ids)


def test_a_rescheduled_sensor_resumes_on_a_new_worker(emulator):
    ids = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(2)]

    def new_worker_poke():
        # In reschedule mode each poke runs in a fresh process from the DAG file: nothing survives but the
        # task's arguments. A new sensor object per poke is exactly that.
        sensor = BrowserSessionsSensor(task_id="s", conn_id="brightdata_default", session_ids=ids, mode="reschedule")
        return sensor.poke({})

    assert new_worker_poke().is_done is False
    emulator.end_session("brightdata", ids[0])
    assert new_worker_poke().is_done is False
    emulator.end_session("brightdata", ids[1], status="failed")  # ends while no worker is there
    with pytest.raises(Exception, match=rf"1 watched session\(s\) failed: {ids[1]}"):
        new_worker_poke()
