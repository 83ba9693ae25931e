"""Under 20 % faults, listing and waiting give exactly the fault-free answer; an exhausted budget fails clearly."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from airflow_harness import run_dag

from airflow_provider_browsersessions.exceptions import ApiError, ServerError
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.transport import RetryPolicy
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger
from airflow_provider_browsersessions.waiting import SessionsFailedError

ALL_KINDS = ["429", "500", "503", "latency", "close_mid_body", "malformed_json", "html_error"]
# Enough retries that 20 % faults practically never exhaust them (0.2^9), tiny waits to keep trials fast.
PATIENT = RetryPolicy(max_retries=8, max_wait=30.0, backoff=0.005, max_backoff=0.02)
DAGS = Path(__file__).parent / "dags" / "exhaustion_dags.py"
EXHAUSTED = "Bright Data API GET /browser_sessions failed: HTTP 503: Service unavailable (gave up after 4 attempt(s))"


@pytest.fixture
def emulator(frozen_emulator):
    return frozen_emulator  # the data set holds still; only the faults vary


def brightdata_connection(emulator, monkeypatch, conn_id: str, **extra) -> str:
    """A Bright Data connection to the emulator with these retry extras; returns its id."""
    connection = {
        "conn_type": "brightdata",
        "host": emulator.brightdata_base_url,
        "password": emulator.brightdata_api_key,
        "extra": extra,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return conn_id


@pytest.fixture
def few_retries(emulator, monkeypatch):
    """A Bright Data connection whose extras allow one retry and one second of waiting (what the trigger uses)."""
    return brightdata_connection(emulator, monkeypatch, "brightdata_few_retries", max_retries=1, max_retry_wait=1)


async def first_event(trigger, timeout: float = 50):
    """What the triggerer does: iterate the trigger's run() (created inside the loop) until it fires."""

    async def run():
        async for event in trigger.run():
            return event
        return None

    return await asyncio.wait_for(run(), timeout)


@pytest.fixture
def impatient(emulator, monkeypatch):
    """
    The trigger's connection: 429s (Retry-After 0.01 s) are retried; a 5xx or a cut body, whose backoff (0.5 s
    and up) would exceed the 0.1 s retry budget, fails the poll at once, and the trigger tries again at the
    next one. Both ways must reach the fault-free decision.
    """
    return brightdata_connection(emulator, monkeypatch, "brightdata_impatient", max_retries=5, max_retry_wait=0.1)


def faulted(emulator, seed: int) -> None:
    emulator.set_random_faults(rate=0.2, kinds=ALL_KINDS, seed=seed, retry_after=0.01, latency=0.01)


def listing(hook, **filters) -> list[dict]:
    return [s.to_dict() for s in hook.iter_sessions(**filters)]


def count_faults(figures: Counter, log: list[dict]) -> None:
    """Add one trial's requests, faults by kind and retries to the figures; check every retry is accounted for."""
    faults = [entry["fault"] for entry in log if entry["fault"]]
    figures["requests"] += len(log)
    figures.update(f"fault:{kind}" for kind in faults)
    # Latency only slows an answer down; every other fault spoils it and costs exactly one more request.
    figures["retries"] += sum(1 for kind in faults if kind != "latency")


def run_listing_trials(emulator, seeds) -> Counter:
    emulator.seed_sessions(platform="brightdata", count=730, seed=1)  # 8 pages of 100
    emulator.seed_sessions(platform="cloudflare", count=600, seed=2)  # up to 120 running: 1 page of 200
    filters = {"api_name": None, "sort": "duration", "order": "asc"}
    emulator.clear_log()
    clean_bd = listing(BrightDataBrowserHook(retry=PATIENT), **filters)
    clean_failed = listing(BrightDataBrowserHook(retry=PATIENT), status="failed")
    clean_cf = listing(CloudflareBrowserRenderingHook(retry=PATIENT))
    clean_requests = emulator.request_count()
    assert len(clean_bd) == 730
    assert clean_requests == 8 + 1 + 1  # 730 by duration, the failed ones (under 100), the Cloudflare list
    figures: Counter = Counter()
    for seed in seeds:
        emulator.clear_log()
        faulted(emulator, seed)
        bd = BrightDataBrowserHook(retry=PATIENT)
        assert listing(bd, **filters) == clean_bd  # same sessions, same order, same fields: none lost or doubled
        assert listing(bd, status="failed") == clean_failed
        assert listing(CloudflareBrowserRenderingHook(retry=PATIENT)) == clean_cf
        emulator.clear_faults()
        log = emulator.request_log()
        before = figures["retries"]
        count_faults(figures, log)
        # No page fetched twice, none skipped: the fault-free requests plus exactly one per spoiled answer.
        assert len(log) == clean_requests + figures["retries"] - before
        figures["trials"] += 1
    return figures


def check_every_kind_happened(figures: Counter) -> None:
    injected = sum(v for k, v in figures.items() if k.startswith("fault:"))
    assert injected > 0.1 * figures["requests"]  # faults really happened, about one request in five
    assert {k for k in figures if k.startswith("fault:")} == {f"fault:{kind}" for kind in ALL_KINDS}  # every kind


def test_listing_under_faults_equals_the_fault_free_listing(emulator):
    figures = run_listing_trials(emulator, range(25))
    print(f"\nlisting trials (quick): {dict(sorted(figures.items()))}")
    check_every_kind_happened(figures)


@pytest.mark.slow
def test_listing_under_faults_many_trials(emulator):
    figures = run_listing_trials(emulator, range(1000, 1200))
    print(f"\nlisting trials (long): {dict(sorted(figures.items()))}")
    assert figures["trials"] == 200
    check_every_kind_happened(figures)


# -- waiting under faults: the trigger (deferred) and the sensor's poke -------------------------------


def new_watched(emulator) -> tuple[list[str], list[tuple[str, str]]]:
    """Four running sessions, and the order they end in: the failure comes last."""
    ids = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(4)]
    return ids, [(ids[0], "finished"), (ids[1], "finished"), (ids[3], "finished"), (ids[2], "failed")]


def trigger_decision(emulator, conn_id: str, seed: int | None) -> tuple[str, list]:
    """Run a trigger to its event while sessions end one by one; the event's status and final states."""
    ids, ends = new_watched(emulator)
    trigger = BrowserSessionsTrigger(
        conn_id=conn_id, session_ids=ids, filters=SessionQuery().to_dict(), poll_interval=0.02
    )

    async def scenario():
        task = asyncio.create_task(first_event(trigger))
        for session_id, status in ends:
            await asyncio.sleep(0.05)
            emulator.end_session("brightdata", session_id, status=status)
        return await task

    if seed is not None:
        faulted(emulator, seed)
    event = asyncio.run(scenario())
    emulator.clear_faults()
    # The event fires on the first failure, so it must carry all four final states.
    return event.payload["status"], sorted((s["session_id"] == ids[2], s["status"]) for s in event.payload["sessions"])


def poke_decisions(emulator, seed: int | None) -> list:
    """Poke after each session ends; what every poke decided (done or not, final states, the failure)."""
    ids, ends = new_watched(emulator)
    sensor = BrowserSessionsSensor(task_id="wait", conn_id="brightdata_default", session_ids=ids)
    sensor.hook = BrightDataBrowserHook(retry=PATIENT)  # the connection's hook, with short backoffs
    if seed is not None:
        faulted(emulator, seed)
    decisions: list = []
    try:
        for session_id, status in ends:
            result = sensor.poke({})
            decisions.append((result.is_done, result.xcom_value))
            emulator.end_session("brightdata", session_id, status=status)
        sensor.poke({})
    except SessionsFailedError as err:
        decisions.append(str(err).replace(ids[2], "<failed id>"))
    emulator.clear_faults()
    return decisions


def run_waiting_trials(emulator, conn_id: str, seeds) -> Counter:
    figures: Counter = Counter()
    emulator.clear_log()
    expected_trigger = trigger_decision(emulator, conn_id, None)
    expected_pokes = poke_decisions(emulator, None)
    assert expected_trigger == ("failed", [(False, "finished")] * 3 + [(True, "failed")])
    assert expected_pokes[:4] == [(False, None)] * 4
    assert expected_pokes[4].startswith("1 watched session(s) failed: <failed id> (")
    for seed in seeds:
        emulator.clear_log()
        assert trigger_decision(emulator, conn_id, seed) == expected_trigger
        assert poke_decisions(emulator, seed + 10_000) == expected_pokes
        count_faults(figures, emulator.request_log())
        figures["trials"] += 1
    return figures


def test_waiting_under_faults_reaches_the_fault_free_decision(emulator, impatient):
    figures = run_waiting_trials(emulator, impatient, range(8))
    print(f"\nwaiting trials (quick): {dict(sorted(figures.items()))}")
    assert sum(v for k, v in figures.items() if k.startswith("fault:")) > 0.1 * figures["requests"]
    assert figures["retries"] > 0


@pytest.mark.slow
def test_waiting_under_faults_many_trials(emulator, impatient):
    figures = run_waiting_trials(emulator, impatient, range(2000, 2060))
    print(f"\nwaiting trials (long): {dict(sorted(figures.items()))}")
    check_every_kind_happened(figures)


# -- an exhausted retry budget: a clear error, never a hang ----------------------------------------


@pytest.mark.timeout(30)
def test_an_exhausted_retry_budget_fails_with_a_clear_error_and_does_not_hang(emulator):
    emulator.script_faults([{"kind": "503"}] * 10, platform="brightdata")
    hook = BrightDataBrowserHook(retry=RetryPolicy(max_retries=3, max_wait=5.0, backoff=0.01, max_backoff=0.02))
    with pytest.raises(ServerError) as caught:
        hook.list_sessions()
    assert str(caught.value) == f"{EXHAUSTED}. Connection 'brightdata_default', host 127.0.0.1:{emulator.port}."
    assert emulator.request_count() == 4


@pytest.mark.timeout(30)
def test_the_async_transport_gives_up_the_same_way(emulator):
    emulator.script_faults([{"kind": "503"}] * 10, platform="brightdata")
    hook = BrightDataBrowserHook(retry=RetryPolicy(max_retries=3, max_wait=5.0, backoff=0.01, max_backoff=0.02))

    async def walk():
        try:
            return [s async for s in hook.aiter_sessions(SessionQuery())]
        finally:
            await hook.aclose()

    with pytest.raises(ServerError) as caught:
        asyncio.run(walk())
    # The same words as the sync transport's, connection and host included.
    assert str(caught.value) == f"{EXHAUSTED}. Connection 'brightdata_default', host 127.0.0.1:{emulator.port}."
    assert emulator.request_count() == 4


@pytest.mark.timeout(30)
def test_a_retry_after_beyond_the_wait_budget_ends_the_retries_at_once(emulator):
    emulator.script_faults([{"kind": "429", "retry_after": 120}], platform="brightdata")
    hook = BrightDataBrowserHook(retry=RetryPolicy(max_retries=5, max_wait=10.0))
    with pytest.raises(ApiError, match=r"HTTP 429.*gave up after 1 attempt\(s\)"):
        hook.list_sessions()
    assert emulator.request_count() == 1  # no sleeping past the budget, no hammering


@pytest.mark.timeout(60)
def test_a_deferred_wait_through_a_permanent_outage_ends_with_its_timeout_event(emulator, few_retries):
    sid = emulator.add_session("brightdata", duration=None)["session_id"]
    emulator.set_random_faults(rate=1.0, kinds=["503"], seed=0)  # every request fails, for ever
    trigger = BrowserSessionsTrigger(
        conn_id=few_retries,
        session_ids=[sid],
        filters=SessionQuery().to_dict(),
        poll_interval=0.05,
        end_time=time.time() + 0.5,
    )
    event = asyncio.run(first_event(trigger))
    # Issue #22: the timeout names what was waited on and what may still run.
    assert event.payload == {
        "status": "timeout",
        "message": f"Timed out waiting for browser sessions (1 watched session id(s) ({sid})): "
        f"the last poll failed; watched: {sid}",
        "sessions": [],
    }
    assert all(entry["status"] == 503 for entry in emulator.request_log())


@pytest.mark.timeout(60)
def test_a_deferred_wait_with_rejected_credentials_fires_an_error_event_at_once(emulator, monkeypatch):
    wrong = {"conn_type": "brightdata", "host": emulator.brightdata_base_url, "password": "not-the-key"}
    monkeypatch.setenv("AIRFLOW_CONN_BRIGHTDATA_WRONG", json.dumps(wrong))
    trigger = BrowserSessionsTrigger(
        conn_id="brightdata_wrong", session_ids=["a", "b"], filters=SessionQuery().to_dict(), poll_interval=0.05
    )
    event = asyncio.run(first_event(trigger))
    assert event.payload["status"] == "error"
    assert event.payload["message"] == (
        "Bright Data API GET /browser_sessions failed: HTTP 401: Invalid credentials. "
        f"Connection 'brightdata_wrong', host 127.0.0.1:{emulator.port}: Check the Password field: it must hold an "
        "API key from your Bright Data account settings."
    )
    assert event.payload["fail_fast"] is True  # no task retries: the same key would be refused again
    assert emulator.request_count() == 1  # a 401 is not retried


@pytest.mark.system
@pytest.mark.timeout(120)
def test_a_task_whose_retries_run_out_fails_in_airflow(emulator, airflow_db, caplog, capfd):
    emulator.script_faults([{"kind": "500"}] * 50, platform="brightdata")
    connection = {
        "conn_type": "brightdata",
        "host": emulator.brightdata_base_url,
        "password": emulator.brightdata_api_key,
        "extra": {"max_retries": 2, "max_retry_wait": 10},
    }
    result = run_dag(DAGS, "exhausted_retries", env={"AIRFLOW_CONN_BRIGHTDATA_FEW_RETRIES": json.dumps(connection)})
    assert result.state == "failed"
    assert result.task_states == {"list": "failed"}
    assert emulator.request_count(platform="brightdata") == 3  # max_retries=2 from the connection's extra
    out, err = capfd.readouterr()
    logs = caplog.text + out + err  # Airflow 3 task logs reach stdout, Airflow 2 logs reach caplog
    assert "HTTP 500: Internal server error (gave up after 3 attempt(s))" in logs
