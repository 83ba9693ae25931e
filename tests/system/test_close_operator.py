"""CloseBrowserSessionsOperator against the emulator: directly, and in real DAG runs (dag.test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from airflow_harness import run_dag

from airflow_provider_browsersessions.exceptions import InvalidQueryError, NotSupportedError
from airflow_provider_browsersessions.operators.sessions import CloseBrowserSessionsOperator

pytestmark = pytest.mark.system

DAGS = Path(__file__).parent / "dags" / "close_sessions_dags.py"
CF = "cloudflare_browser_rendering_default"
UNKNOWN_ID = "6f1c0a9e-0000-4000-8000-000000000000"


@pytest.fixture
def emulator(browsersessions_connections):
    return browsersessions_connections.emulator


def closer(**kwargs):
    return CloseBrowserSessionsOperator(task_id="close", **{"conn_id": CF, **kwargs})


def deletes(emulator):
    return [e for e in emulator.request_log(platform="cloudflare") if e["method"] == "DELETE"]


def test_closes_the_given_ids_and_reports_the_api_answer(emulator):
    sessions = [emulator.add_session("cloudflare", duration=None) for _ in range(2)]
    ids = [s["sessionId"] for s in sessions]

    result = closer(session_ids=ids).execute({})

    assert result == [{"session_id": sid, "outcome": "closed", "answer": "closing"} for sid in ids]
    assert len(deletes(emulator)) == 2
    assert all(r.get("endTime") for r in emulator.sessions("cloudflare"))


def test_accepts_the_session_dicts_a_list_task_returned(emulator):
    record = emulator.add_session("cloudflare", duration=None)
    result = closer(session_ids=[{"session_id": record["sessionId"], "status": "running"}]).execute({})
    assert [r["session_id"] for r in result] == [record["sessionId"]]
    assert len(deletes(emulator)) == 1


def test_an_unknown_or_already_closed_session_is_reported_not_raised(emulator):
    record = emulator.add_session("cloudflare", duration=None)
    first = closer(session_ids=[record["sessionId"]]).execute({})
    again = closer(session_ids=[record["sessionId"], UNKNOWN_ID]).execute({})
    assert first == [{"session_id": record["sessionId"], "outcome": "closed", "answer": "closing"}]
    assert again == [
        {"session_id": record["sessionId"], "outcome": "closed", "answer": "closed"},
        {"session_id": UNKNOWN_ID, "outcome": "not_found", "answer": None},
    ]


def test_filters_choose_running_sessions_by_how_long_they_ran(emulator):
    now = emulator.now()
    old = [emulator.add_session("cloudflare", started_at=now - age, duration=None) for age in (900, 600)]
    young = emulator.add_session("cloudflare", started_at=now - 30, duration=None)

    result = closer(min_duration=300).execute({})

    assert sorted(r["session_id"] for r in result) == sorted(s["sessionId"] for s in old)
    assert sorted(e["path"].rsplit("/", 1)[1] for e in deletes(emulator)) == sorted(s["sessionId"] for s in old)
    records = {r["sessionId"]: r for r in emulator.sessions("cloudflare")}
    assert not records[young["sessionId"]].get("endTime")


def test_dry_run_sends_no_close_and_returns_what_it_would_close(emulator):
    now = emulator.now()
    old = emulator.add_session("cloudflare", started_at=now - 900, duration=None)
    emulator.add_session("cloudflare", started_at=now - 30, duration=None)

    result = closer(min_duration=300, dry_run=True).execute({})

    assert result == [{"session_id": old["sessionId"], "outcome": "dry_run", "answer": None}]
    assert deletes(emulator) == []
    assert emulator.request_count(platform="cloudflare") >= 1  # it did list
    assert not any(r.get("endTime") for r in emulator.sessions("cloudflare"))


def test_bright_data_is_refused_before_any_request(emulator):
    with pytest.raises(NotSupportedError, match=r"not supported by this platform.*Bright Data"):
        closer(conn_id="brightdata_default", session_ids=["abc"]).execute({})
    with pytest.raises(NotSupportedError, match="not supported by this platform"):
        closer(conn_id="brightdata_default", started_before="2030-01-01T00:00:00Z").execute({})
    assert emulator.request_count() == 0


def test_literal_mistakes_fail_when_the_dag_is_built(emulator):
    with pytest.raises(InvalidQueryError, match="min_duration"):
        closer(min_duration=-1)
    with pytest.raises(InvalidQueryError, match=r"session_ids.*not both"):
        closer(session_ids=["a"], min_duration=60)
    with pytest.raises(InvalidQueryError, match=r"session_ids.*at least one of the filters"):
        closer()
    with pytest.raises(InvalidQueryError, match="session_ids"):
        closer(session_ids=[42])
    with pytest.raises((TypeError, AirflowException), match=r"keyword|positional"):
        CloseBrowserSessionsOperator("close", CF)  # keyword-only (Airflow 2.11 says so in its own words)
    assert emulator.request_count() == 0


def test_a_dag_lists_dry_runs_then_closes_the_old_sessions(airflow_db, emulator):
    now = emulator.now()
    old = emulator.add_session("cloudflare", started_at=now - 900, duration=None)
    young = emulator.add_session("cloudflare", started_at=now - 30, duration=None)

    result = run_dag(DAGS, "close_listed")

    assert result.state == "success", result.task_states
    assert sorted(r["session_id"] for r in result.xcom("dry_run")) == sorted([old["sessionId"], young["sessionId"]])
    assert all(r["outcome"] == "dry_run" for r in result.xcom("dry_run"))
    assert result.xcom("close_old") == [{"session_id": old["sessionId"], "outcome": "closed", "answer": "closing"}]
    (delete,) = deletes(emulator)
    assert delete["path"].endswith(old["sessionId"])


def test_a_dag_on_bright_data_fails_clearly_with_no_request(airflow_db, emulator):
    result = run_dag(DAGS, "close_brightdata")
    assert result.state == "failed"
    assert result.task_states["close"] == "failed"
    assert emulator.request_count() == 0


def test_the_close_operator_takes_every_filter_it_claims():
    import inspect
    import re

    from airflow_provider_browsersessions.operators.sessions import CLOSE_FILTERS
    from airflow_provider_browsersessions.sessions import FILTER_NAMES, RUNNING_FILTERS

    params = {
        n for n in inspect.signature(CloseBrowserSessionsOperator.__init__).parameters if n not in ("self", "kwargs")
    }
    assert set(RUNNING_FILTERS) <= set(CLOSE_FILTERS) <= set(FILTER_NAMES)
    assert set(CLOSE_FILTERS) <= params
    assert params & set(FILTER_NAMES) == set(CLOSE_FILTERS)  # no filter keyword it does not claim
    assert set(CloseBrowserSessionsOperator.template_fields) <= params
    assert set(re.findall(r":param (\w+):", CloseBrowserSessionsOperator.__doc__ or "")) == params
