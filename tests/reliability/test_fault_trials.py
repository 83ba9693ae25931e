"""Under 20 % faults, listing and waiting give exactly the fault-free answer; an exhausted budget fails clearly."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from airflow_harness import run_dag

from airflow_provider_browsersessions.exceptions import ApiError
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.transport import RetryPolicy
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

ALL_KINDS = ["429", "500", "503", "latency", "close_mid_body", "malformed_json", "html_error"]
# Enough retries that 20 % faults practically never exhaust them (0.2^9), tiny waits to keep trials fast.
PATIENT = RetryPolicy(max_retries=8, max_wait=30.0, backoff=0.005, max_backoff=0.02)
LONG = os.environ.get("BROWSERSESSIONS_LONG") == "1"
DAGS = Path(__file__).parent / "dags" / "exhaustion_dags.py"


@pytest.fixture
def emulator(browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)  # the data set holds still; only the faults vary
    return emulator


def faulted(emulator, seed: int) -> None:
    emulator.set_random_faults(rate=0.2, kinds=ALL_KINDS, seed=seed, retry_after=0.01, latency=0.01)


def listing(hook, **filters) -> list[dict]:
    return [s.to_dict() for s in hook.iter_sessions(**filters)]


def run_listing_trials(emulator, seeds) -> Counter:
    emulator.seed_sessions(platform="brightdata", count=730, seed=1)  # 8 pages of 100
    emulator.seed_sessions(platform="cloudflare", count=600, seed=2)  # up to 120 running: 1 page of 200
    filters = {"api_name": None, "sort": "duration", "order": "asc"}
    clean_bd = listing(BrightDataBrowserHook(retry=PATIENT), **filters)
    clean_failed = listing(BrightDataBrowserHook(retry=PATIENT), status="failed")
    clean_cf = listing(CloudflareBrowserRenderingHook(retry=PATIENT))
    assert len(clean_bd) == 730
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
        figures["trials"] += 1
        figures["requests"] += len(log)
        figures.update(f"fault:{entry['fault']}" for entry in log if entry["fault"])
    return figures


def test_listing_under_faults_equals_the_fault_free_listing(emulator):
    figures = run_listing_trials(emulator, range(25))
    print(f"\nlisting trials (quick): {dict(figures)}")
    injected = sum(v for k, v in figures.items() if k.startswith("fault:"))
    assert injected > 0.1 * figures["requests"]  # faults really happened, about one request in five
    assert {k for k in figures if k.startswith("fault:")} == {f"fault:{kind}" for kind in ALL_KINDS}  # every kind


@pytest.mark.slow
def test_listing_under_faults_many_trials(emulator):
    figures = run_listing_trials(emulator, range(1000, 1200))
    print(f"\nlisting trials (long): {dict(figures)}")
    assert figures["trials"] == 200


def wait_decisions(emulator, seed, *, ids, ends) -> list[dict]:
    """Run a trigger to its event while sessions end; return the event's final states."""
    trigger = BrowserSessionsTrigger(
        conn_id="brightdata_default", session_ids=ids, filters=SessionQuery().to_dict(), poll_interval=0.02
    )

    async def scenario():
        task = asyncio.create_task(anext(trigger.run()))
        for session_id, status in ends:
            await asyncio.sleep(0.05)
            emulator.end_session("brightdata", session_id, status=status)
        return await asyncio.wait_for(task, 60)

    if seed is not None:
        faulted(emulator, seed)
    event = asyncio.run(scenario())
    emulator.clear_faults()
    return event.payload


def test_waiting_under_faults_reaches_the_fault_free_decision(emulator):
    outcomes = []
    for seed in (None, *range(8)):
        sessions = [emulator.add_session("brightdata", duration=None) for _ in range(4)]
        ids = [s["session_id"] for s in sessions]
        # The failure comes last, so the event (fired on the first failure) must carry all four final states.
        ends = [(ids[0], "finished"), (ids[1], "finished"), (ids[3], "finished"), (ids[2], "failed")]
        payload = wait_decisions(emulator, seed, ids=ids, ends=ends)
        reported = sorted((s["session_id"] == ids[2], s["status"]) for s in payload["sessions"])
        outcomes.append((payload["status"], reported))
    # Every trial, faulted (seeds 0-7) or not (None): the same decision from the same final states.
    assert outcomes == [("failed", [(False, "finished")] * 3 + [(True, "failed")])] * 9


def test_an_exhausted_retry_budget_fails_with_a_clear_error_and_does_not_hang(emulator):
    emulator.script_faults([{"kind": "503"}] * 10, platform="brightdata")
    hook = BrightDataBrowserHook(retry=RetryPolicy(max_retries=3, max_wait=5.0, backoff=0.01, max_backoff=0.02))
    with pytest.raises(ApiError) as caught:
        hook.list_sessions()
    message = str(caught.value)
    assert message == (
        "Bright Data API GET /browser_sessions failed: HTTP 503: Service unavailable (gave up after 4 attempt(s))"
    )
    assert emulator.request_count() == 4


def test_a_retry_after_beyond_the_wait_budget_ends_the_retries_at_once(emulator):
    emulator.script_faults([{"kind": "429", "retry_after": 120}], platform="brightdata")
    hook = BrightDataBrowserHook(retry=RetryPolicy(max_retries=5, max_wait=10.0))
    with pytest.raises(ApiError, match=r"HTTP 429.*gave up after 1 attempt\(s\)"):
        hook.list_sessions()
    assert emulator.request_count() == 1  # no sleeping past the budget, no hammering


@pytest.mark.system
@pytest.mark.timeout(120)
def test_a_task_whose_retries_run_out_fails_in_airflow(emulator, airflow_db):
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
