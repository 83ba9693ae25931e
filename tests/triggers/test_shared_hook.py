"""The triggers of one connection share one hook per event loop: real triggers against the emulator, objects counted."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest

from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger
from airflow_provider_browsersessions.triggers.shared_hook import shared_hooks
from airflow_provider_browsersessions.triggers.shared_poll import subscribe
from airflow_provider_browsersessions.waiting import WaitPlan

pytestmark = pytest.mark.timeout(120)

CONN = "brightdata_default"


@pytest.fixture
def emulator(browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)  # frozen: sessions end only when a test ends them
    return emulator


def wait_on(session_id: str, **overrides) -> BrowserSessionsTrigger:
    kwargs = {"conn_id": CONN, "session_ids": [session_id], "filters": {"api_name": "zone"}, "poll_interval": 0.2}
    kwargs.update(overrides)
    return BrowserSessionsTrigger(**kwargs)


async def first_event(trigger: BrowserSessionsTrigger) -> dict:
    """Run the trigger to its end, as the triggerer does, and return its one event."""
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1, events
    return events[0]


def live_hooks() -> int:
    gc.collect()
    # type(), not isinstance(): isinstance asks an object's __class__, and some of Airflow's lazy proxies
    # import a module on that question (the standard provider's, once loaded, wants cloudpickle).
    return sum(issubclass(type(o), BrowserSessionsHook) for o in gc.get_objects())


async def until(condition, what: str, seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_triggers_of_one_connection_share_one_hook_closed_when_the_last_ends(emulator):
    ids = [emulator.add_session("brightdata", duration=None, api_name="zone")["session_id"] for _ in range(20)]

    async def scenario():
        hooks_before = live_hooks()
        tasks = [asyncio.create_task(first_event(wait_on(sid))) for sid in ids]
        # Every trigger and the shared poll hold the lease: twenty waits and one poll.
        await until(lambda: CONN in shared_hooks() and shared_hooks()[CONN].users == len(ids) + 1, "all subscribed")
        hook = await shared_hooks()[CONN].get()
        transport = hook.client.get_async_conn()  # the one client every read and walk goes through
        hooks_during = live_hooks() - hooks_before
        # End half: their waits read the ended sessions through the shared hook and leave; the rest go on.
        for sid in ids[:10]:
            emulator.end_session("brightdata", sid)
        first_half = await asyncio.gather(*tasks[:10])
        users_after_half = shared_hooks()[CONN].users
        client_open_after_half = not transport._client.is_closed
        same_transport = hook.client.get_async_conn() is transport
        for sid in ids[10:]:
            emulator.end_session("brightdata", sid)
        second_half = await asyncio.gather(*tasks[10:])
        await until(lambda: CONN not in shared_hooks(), "the last lease released")
        return (
            hooks_during,
            first_half + second_half,
            users_after_half,
            client_open_after_half,
            same_transport,
            transport._client.is_closed,
        )

    hooks_during, payloads, users_after_half, open_after_half, same_transport, closed_at_end = asyncio.run(scenario())
    assert [p["status"] for p in payloads] == ["success"] * len(ids)
    assert hooks_during == 1  # not one per trigger, and the poll uses the same one
    assert users_after_half == 10 + 1
    assert open_after_half
    assert same_transport
    assert closed_at_end
    reads = [e for e in emulator.request_log(platform="brightdata") if e["path"] != "/browser_sessions"]
    assert sorted(e["path"].rsplit("/", 1)[-1] for e in reads) == sorted(ids)  # each ended id read once


def test_a_cancelled_trigger_does_not_close_the_hook_under_its_siblings(emulator):
    ids = [emulator.add_session("brightdata", duration=None, api_name="zone")["session_id"] for _ in range(3)]

    async def scenario():
        # The first is cancelled at once (likely while the connection is still being read for all three) and
        # the second after it has polled; the third must still read its ended session and succeed.
        tasks = [asyncio.create_task(first_event(wait_on(sid))) for sid in ids]
        await asyncio.sleep(0)
        tasks[0].cancel()
        await until(tasks[0].done, "the first cancel delivered")
        await until(lambda: CONN in shared_hooks() and shared_hooks()[CONN].users == 3, "two waits and the poll")
        hook = await shared_hooks()[CONN].get()
        transport = hook.client.get_async_conn()
        polls = emulator.request_count(platform="brightdata")
        await until(lambda: emulator.request_count(platform="brightdata") > polls, "a poll after the first cancel")
        tasks[1].cancel()
        await until(lambda: shared_hooks()[CONN].users == 2, "the second cancel released its lease")
        client_open = not transport._client.is_closed
        emulator.end_session("brightdata", ids[2])
        payload = await tasks[2]
        cancelled = [t.cancelled() for t in tasks[:2]]
        await until(lambda: CONN not in shared_hooks(), "the last lease released")
        return cancelled, client_open, payload, transport._client.is_closed

    cancelled, client_open, payload, closed_at_end = asyncio.run(scenario())
    assert cancelled == [True, True]
    assert client_open  # the siblings' leave did not close the hook the third still holds
    assert payload["status"] == "success"
    assert payload["sessions"][0]["session_id"] == ids[2]
    # The read of the ended session went through the very client that was open before the cancels...
    reads = [e for e in emulator.request_log(platform="brightdata") if e["path"] != "/browser_sessions"]
    assert [e["path"].rsplit("/", 1)[-1] for e in reads] == [ids[2]]
    # ...which its last holder then closed.
    assert closed_at_end


def test_a_failed_connection_read_is_not_kept(emulator, monkeypatch):
    sid = emulator.add_session("brightdata", duration=None, api_name="zone")["session_id"]
    emulator.end_session("brightdata", sid)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BD_LATER", json.dumps({"conn_type": "cloudflare", "host": emulator.url, "password": "x"})
    )

    async def scenario():
        try:
            first = await first_event(wait_on(sid, conn_id="bd_later"))
        except Exception as err:  # how a bad connection surfaces is the hook's business, not the lease's
            first = {"status": "raised", "message": str(err)}
        held = dict(shared_hooks())
        monkeypatch.setenv("AIRFLOW_CONN_BD_LATER", emulator.connection_env()["AIRFLOW_CONN_BRIGHTDATA_DEFAULT"])
        second = await first_event(wait_on(sid, conn_id="bd_later"))
        return first, held, second, dict(shared_hooks())

    first, held_after_failure, second, held_at_end = asyncio.run(scenario())
    assert first["status"] in {"error", "raised"}
    assert held_after_failure == {}  # nothing kept for the failed read: the next wait reads afresh
    assert second["status"] == "success"
    assert held_at_end == {}


def test_subscribers_of_one_poll_are_handed_one_immutable_snapshot(emulator):
    for _ in range(3):
        emulator.add_session("brightdata", duration=None)
    running = WaitPlan(query=SessionQuery.build(), session_ids=None).running_query

    async def scenario():
        async with (
            subscribe(conn_id=CONN, running_query=running, interval=0.2) as one,
            subscribe(conn_id=CONN, running_query=running, interval=0.2) as two,
        ):
            return await one.next(), await two.next()

    first, second = asyncio.run(scenario())
    assert first is second
    assert isinstance(first, tuple)
    assert len(first) == 3


def test_waits_on_equal_filters_share_their_parsed_queries_and_logger():
    one = wait_on("a", filters={"api_name": "zone", "min_duration": 5})._plan()
    two = wait_on("b", filters={"min_duration": 5, "api_name": "zone"})._plan()
    other = wait_on("c", filters={"api_name": "elsewhere"})._plan()
    assert one.query is two.query
    assert one.running_query is two.running_query
    assert other.running_query is not one.running_query
    assert other.running_query.api_name == "elsewhere"
    assert wait_on("a").log is wait_on("b").log
