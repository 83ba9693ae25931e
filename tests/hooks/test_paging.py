"""Pipelined paging (paging.py) against the emulator: the same sessions and requests as one page at a time."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.exceptions import BadRequestError, MalformedResponseError
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.transport import RetryPolicy

FAST_RETRY = RetryPolicy(max_retries=2, max_wait=5.0, backoff=0.01, max_backoff=0.05)
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def emulator(frozen_emulator):
    return frozen_emulator  # a frozen clock: both runs of a comparison see the same sessions


def with_pages_in_flight(emulator, monkeypatch, in_flight: int, platform: str = "brightdata") -> str:
    conn_id = f"{platform}_in_flight_{in_flight}"
    ids = {"brightdata_conn_id": "unused_bd", "cloudflare_conn_id": "unused_cf", f"{platform}_conn_id": conn_id}
    value = json.loads(emulator.connection_env(**ids)[f"AIRFLOW_CONN_{conn_id.upper()}"])
    value.setdefault("extra", {})["pages_in_flight"] = in_flight
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
    return conn_id


def hook_for(emulator, monkeypatch, in_flight: int, platform: str = "brightdata"):
    cls = BrightDataBrowserHook if platform == "brightdata" else CloudflareBrowserRenderingHook
    return cls(conn_id=with_pages_in_flight(emulator, monkeypatch, in_flight, platform), retry=FAST_RETRY)


def list_offsets(emulator, platform: str = "brightdata") -> list[int]:
    """The offsets of the list requests the emulator served, in order."""
    return sorted(
        int(entry["query"]["offset"][0])
        for entry in emulator.request_log(platform=platform)
        if "session" in entry["path"] and "offset" in entry["query"]
    )


def page_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("browsersessions-page")]


def run_listing(hook, driver: str, max_results: int | None = None, **filters):
    if driver == "sync":
        try:
            return hook.list_sessions(max_results=max_results, **filters)
        finally:
            hook.close()

    async def listing():
        try:
            query = SessionQuery.build(**filters)
            return [s async for s in hook.aiter_sessions(query, max_results=max_results, read_ahead=True)]
        finally:
            await hook.aclose()

    return asyncio.run(listing())


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_tally_counts_the_requests_of_the_page_fetchers_too(emulator, monkeypatch, driver):
    # The view's health counts a poll's requests with metrics.tallied: pages fetched ahead in other threads
    # are requests of that poll (before: the sync fetchers' threads were outside the tally's context).
    emulator.seed_sessions(platform="brightdata", count=1050, seed=7)
    before = len(emulator.request_log(platform="brightdata"))
    with metrics.tallied() as tally:
        sessions = run_listing(hook_for(emulator, monkeypatch, 4), driver)
    served = len(emulator.request_log(platform="brightdata")) - before
    assert len(sessions) >= 1050
    assert served >= 11  # ten pages and more, most of them fetched ahead
    assert tally.requests == served


@pytest.mark.parametrize("driver", ["sync", "async"])
@pytest.mark.parametrize("filters", [{}, {"status": "failed"}])
def test_pipelined_listing_is_the_sequential_one(emulator, monkeypatch, driver, filters):
    emulator.seed_sessions(platform="brightdata", count=1050, seed=7)
    runs = []
    for in_flight in (1, 4):
        before = len(emulator.request_log(platform="brightdata"))
        sessions = run_listing(hook_for(emulator, monkeypatch, in_flight), driver, **filters)
        offsets = [e["query"]["offset"][0] for e in emulator.request_log(platform="brightdata")[before:]]
        runs.append(([s.session_id for s in sessions], sorted(offsets, key=int)))
    (sequential, sequential_offsets), (pipelined, pipelined_offsets) = runs
    assert len(sequential) > 100
    assert pipelined == sequential
    assert pipelined_offsets == sequential_offsets
    assert not page_threads()


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_request_count_equals_the_sequential_walk(emulator, monkeypatch, driver):
    emulator.seed_sessions(platform="brightdata", count=1050, seed=8)
    for in_flight in (1, 4):
        before = len(emulator.request_log(platform="brightdata"))
        sessions = run_listing(hook_for(emulator, monkeypatch, in_flight), driver)
        offsets = sorted(int(e["query"]["offset"][0]) for e in emulator.request_log(platform="brightdata")[before:])
        assert len(sessions) == 1050
        assert offsets == list(range(0, 1050, 100)), in_flight


@pytest.mark.parametrize("driver", ["sync", "async"])
@pytest.mark.parametrize("max_results", [1, 100, 101, 250, 1000])
def test_max_results_sends_no_request_more_than_the_sequential_walk(emulator, monkeypatch, driver, max_results):
    emulator.seed_sessions(platform="brightdata", count=1050, seed=9)
    counts = []
    for in_flight in (1, 4):
        before = len(emulator.request_log(platform="brightdata"))
        sessions = run_listing(hook_for(emulator, monkeypatch, in_flight), driver, max_results=max_results)
        counts.append(len(emulator.request_log(platform="brightdata")) - before)
        assert len(sessions) == max_results
    assert counts[0] == counts[1] == -(-max_results // 100)


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_an_early_stop_of_a_lazy_iterator_sends_no_unused_request(emulator, monkeypatch, driver):
    emulator.seed_sessions(platform="brightdata", count=1050, seed=10)
    hook = hook_for(emulator, monkeypatch, 4)
    if driver == "sync":
        sessions = hook.iter_sessions()
        taken = [next(sessions) for _ in range(150)]
        sessions._sessions.close()  # type: ignore[attr-defined]
        hook.close()
    else:

        async def take():
            pages = hook.aiter_sessions(SessionQuery())
            out = []
            async for session in pages:
                out.append(session)
                if len(out) == 150:
                    break
            await pages.aclose()
            await hook.aclose()
            return out

        taken = asyncio.run(take())
    assert len(taken) == 150
    assert list_offsets(emulator) == [0, 100]
    assert not page_threads()


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_an_error_on_a_later_page_is_the_same_error_and_leaves_nothing_running(emulator, monkeypatch, driver):
    emulator.seed_sessions(platform="brightdata", count=1050, seed=11)
    bad = {"kind": "body", "status": 400, "body": json.dumps({"error": "bad offset"})}
    errors = []
    for in_flight in (1, 4):
        emulator.script_faults([{"kind": "ok"}, {"kind": "ok"}, bad], platform="brightdata")
        with pytest.raises(BadRequestError) as caught:
            run_listing(hook_for(emulator, monkeypatch, in_flight), driver)
        errors.append(caught.value)
        assert not page_threads()
    assert type(errors[0]) is type(errors[1])
    assert errors[0].status == errors[1].status == 400
    assert "bad offset" in str(errors[1])


def test_no_task_outlives_an_async_walk_that_fails(emulator, monkeypatch):
    emulator.seed_sessions(platform="brightdata", count=1050, seed=12)
    bad = {"kind": "body", "status": 400, "body": json.dumps({"error": "bad offset"})}
    emulator.script_faults([{"kind": "ok"}, {"kind": "ok"}, bad], platform="brightdata")
    emulator.set_random_faults(rate=1.0, kinds=["latency"], seed=0, latency=0.05, platform="brightdata")
    hook = hook_for(emulator, monkeypatch, 4)

    async def listing():
        try:
            with pytest.raises(BadRequestError):
                [s async for s in hook.aiter_sessions(SessionQuery(), read_ahead=True)]
            return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        finally:
            await hook.aclose()

    assert asyncio.run(listing()) == []


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_repeated_page_still_ends_a_pipelined_walk(emulator, monkeypatch, driver):
    emulator.seed_sessions(platform="brightdata", count=1050, seed=13)
    emulator.script_faults([{"kind": "repeat_page"}] * 1000, platform="brightdata")
    with pytest.raises(MalformedResponseError, match="pagination repeats itself"):
        run_listing(hook_for(emulator, monkeypatch, 4), driver)
    assert not page_threads()


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_cloudflare_pages_one_at_a_time_it_has_no_total(emulator, monkeypatch, driver):
    for _ in range(450):
        emulator.add_session("cloudflare", duration=None)
    sessions = run_listing(hook_for(emulator, monkeypatch, 4, "cloudflare"), driver)
    assert len(sessions) == 450
    assert list_offsets(emulator, "cloudflare") == [0, 200, 400]


def test_pages_in_flight_must_be_a_positive_integer(emulator, monkeypatch):
    from airflow_provider_browsersessions.exceptions import ConnectionConfigError

    with pytest.raises(ConnectionConfigError, match="pages_in_flight"):
        _ = hook_for(emulator, monkeypatch, 0).limits.pages_in_flight
