"""ListBrowserSessionsOperator in real DAG runs (dag.test, SQLite metadata DB) against the emulator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pendulum
import pytest
from airflow_harness import run_dag

pytestmark = pytest.mark.system

DAGS = Path(__file__).parent / "dags" / "list_sessions_dags.py"


@pytest.fixture
def emulator(airflow_db, browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)  # a fixed data set while the DAG pages through it
    emulator.seed_sessions(platform="brightdata", count=450, seed=11)
    return emulator


def brightdata_records(emulator):
    return emulator.sessions("brightdata")


def test_downstream_tasks_receive_exactly_the_filtered_sessions(emulator):
    records = brightdata_records(emulator)
    logical_date = pendulum.from_timestamp(emulator.now(), tz="UTC").subtract(days=1)
    result = run_dag(DAGS, "list_brightdata", logical_date=logical_date)
    assert result.state == "success", result.task_states

    expected_failed = {
        r["session_id"] for r in records if r["status"] == "failed" and r["api_name"] == "scraping_browser1"
    }
    failed = result.xcom("failed_in_zone")
    assert {r["session_id"] for r in failed} == expected_failed
    assert all(set(r) == {"session_id", "status", "api_name", "error_code"} for r in failed)  # projection

    # Dynamic mapping: one triage task per failed session, each given its own record.
    mapped = [name for name in result.task_states if name.startswith("triage[")]
    assert len(mapped) == len(expected_failed)
    triaged = {result.xcom("triage", map_index=i).split(":")[0] for i in range(len(mapped))}
    assert triaged == expected_failed


def test_server_side_filters_are_pushed_down_in_one_call_per_page(emulator):
    run_dag(DAGS, "list_brightdata")
    calls = [e for e in emulator.request_log(platform="brightdata") if e["path"] == "/browser_sessions"]
    failed_calls = [c for c in calls if c["query"].get("status") == ["failed"]]
    expected = sum(
        1 for r in brightdata_records(emulator) if r["status"] == "failed" and r["api_name"] == "scraping_browser1"
    )
    assert len(failed_calls) == max(1, -(-expected // 100))  # the physical minimum ceil(N/100)
    assert all(c["query"]["api_name"] == ["scraping_browser1"] for c in failed_calls)
    assert all(c["query"]["limit"] == ["100"] for c in calls)


def test_client_side_filters_and_where(emulator):
    records = brightdata_records(emulator)
    result = run_dag(DAGS, "list_brightdata")
    expected = {
        r["session_id"]
        for r in records
        if r["status"] == "finished"
        and r["bandwidth"] >= 5_000_000
        and r["captcha"] in ("solved", "detected")
        and r["navigations"] >= 5
    }
    assert {r["session_id"] for r in result.xcom("local_filters")} == expected
    local_calls = [c for c in emulator.request_log(platform="brightdata") if c["query"].get("status") == ["finished"]]
    assert all("min_bandwidth" not in c["query"] and "captcha" not in c["query"] for c in local_calls)


def test_max_results_stops_paging(emulator):
    result = run_dag(DAGS, "list_brightdata")
    assert len(result.xcom("capped")) == 120
    unfiltered = [c for c in emulator.request_log(platform="brightdata") if set(c["query"]) == {"limit", "offset"}]
    # "everything" walks 5 pages; "capped" stops after 2 of them.
    assert len(unfiltered) == 5 + 2


def test_summary_figures_match_the_seeded_data(emulator):
    records = brightdata_records(emulator)
    summary = run_dag(DAGS, "list_brightdata").xcom("everything", key="summary")
    assert summary["count"] == len(records)
    assert summary["by_status"] == {
        s: sum(1 for r in records if r["status"] == s) for s in ("running", "finished", "failed")
    }
    assert summary["total_bandwidth"] == sum(r["bandwidth"] for r in records)
    durations = sorted(r["duration"] for r in records if r["duration"] is not None)
    assert summary["duration_seconds"]["min"] == durations[0]
    assert summary["duration_seconds"]["max"] == durations[-1]
    assert summary["captcha"] == dict(sorted(Counter(r["captcha"] for r in records).items()))
    assert summary["error_codes"] == dict(sorted(Counter(r["error"]["code"] for r in records if r["error"]).items()))


def test_templated_window_from_the_data_interval(emulator):
    logical_date = pendulum.from_timestamp(emulator.now(), tz="UTC").subtract(days=2)
    result = run_dag(DAGS, "list_brightdata", logical_date=logical_date)
    window_calls = [c for c in emulator.request_log(platform="brightdata") if "start_date" in c["query"]]
    start, end = window_calls[0]["query"]["start_date"][0], window_calls[0]["query"]["end_date"][0]
    assert pendulum.parse(end) - pendulum.parse(start) == pendulum.duration(days=1)
    expected = {r["session_id"] for r in brightdata_records(emulator) if start <= r["timestamp"] <= end}
    assert {r["session_id"] for r in result.xcom("in_window")} == expected


def test_cloudflare_lists_active_sessions_sorted_locally(airflow_db, browsersessions_connections):
    emulator = browsersessions_connections.emulator
    now = emulator.now()
    ids = [
        emulator.add_session("cloudflare", duration=None, started_at=now - age)["sessionId"] for age in (30, 300, 90)
    ]
    result = run_dag(DAGS, "list_cloudflare")
    assert [r["session_id"] for r in result.xcom("active_oldest_first")] == [ids[1], ids[2], ids[0]]


def test_browserbase_lists_by_status_and_by_metadata(airflow_db, browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)
    emulator.seed_sessions(platform="browserbase", count=120, seed=5)
    records = emulator.sessions("browserbase")
    result = run_dag(DAGS, "list_browserbase")
    assert result.state == "success", result.task_states
    failed = {r["id"]: r["status"] for r in records if r["status"] in ("ERROR", "TIMED_OUT")}
    assert {r["session_id"]: r["error_code"] for r in result.xcom("failed")} == failed
    crawls = [r for r in records if r["status"] == "COMPLETED" and r["userMetadata"]["job"] == "crawl"]
    listed = result.xcom("job_by_bandwidth")
    assert {r["session_id"] for r in listed} == {r["id"] for r in crawls}
    assert [r["bandwidth"] for r in listed] == sorted((r["proxyBytes"] for r in crawls), reverse=True)


@pytest.mark.parametrize(
    ("dag_id", "message"),
    [
        ("list_bad_filter", "'status'"),
        ("list_unsupported_filter", "api_name"),
        ("list_metadata_on_brightdata", "metadata"),
    ],
)
def test_bad_filters_fail_the_task_before_any_request_and_without_retries(
    airflow_db, browsersessions_connections, dag_id, message, caplog
):
    emulator = browsersessions_connections.emulator
    result = run_dag(DAGS, dag_id)
    assert result.state == "failed"
    assert emulator.request_count() == 0
    assert set(result.task_states.values()) == {"failed"}  # not up_for_retry: retries=3 was not used
