"""CloseBrowserSessionsOperator against the emulator: directly, and in real DAG runs (dag.test)."""

from __future__ import annotations

import json
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

    assert result == [{"session_id": sid, "outcome": "closed", "answer": "closing", "error": None} for sid in ids]
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
    assert first == [{"session_id": record["sessionId"], "outcome": "closed", "answer": "closing", "error": None}]
    assert again == [
        {"session_id": record["sessionId"], "outcome": "closed", "answer": "closed", "error": None},
        {"session_id": UNKNOWN_ID, "outcome": "not_found", "answer": None, "error": None},
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

    assert result == [{"session_id": old["sessionId"], "outcome": "dry_run", "answer": None, "error": None}]
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
    assert result.xcom("close_old") == [
        {"session_id": old["sessionId"], "outcome": "closed", "answer": "closing", "error": None}
    ]
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
    # ``dry_run`` is held as ``is_dry_run``: ``dry_run`` is BaseOperator's own method.
    templated = {"dry_run" if f == "is_dry_run" else f for f in CloseBrowserSessionsOperator.template_fields}
    assert templated <= params
    assert "dry_run" in templated
    assert set(re.findall(r":param (\w+):", CloseBrowserSessionsOperator.__doc__ or "")) == params


# -- a batch finishes: every id attempted, each outcome recorded, the failure at the end -----------------------


def task_logs(caplog, capfd) -> str:
    out, err = capfd.readouterr()
    return caplog.text + out + err  # Airflow 3 task logs reach stdout, Airflow 2 logs reach caplog


def connection_env(emulator, conn_id, *, password=None, **extra):
    """An extra Cloudflare connection on the emulator, with another token or more extras."""
    default = json.loads(emulator.connection_env()[f"AIRFLOW_CONN_{CF.upper()}"])
    if password is not None:
        default["password"] = password
    default["extra"].update(extra)
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(default)}


def running(emulator, count):
    return [emulator.add_session("cloudflare", duration=None)["sessionId"] for _ in range(count)]


def test_an_id_the_api_refuses_does_not_stop_the_batch(airflow_db, emulator, caplog, capfd):
    first, last = running(emulator, 2)
    poison = "poison-uri-too-long"
    too_long = '{"success": false, "errors": [{"code": 414, "message": "URI Too Long"}], "result": null}'
    emulator.script_faults([{"kind": "body", "status": 414, "body": too_long}], method="DELETE", path_contains=poison)

    result = run_dag(DAGS, "close_given", conf={"ids": [first, poison, last]})

    assert result.task_states["close"] == "failed"
    assert result.xcom("close", key="outcomes") == [
        {"session_id": first, "outcome": "closed", "answer": "closing", "error": None},
        {"session_id": poison, "outcome": "refused", "answer": None, "error": "HTTP 414: URI Too Long (code 414)"},
        {"session_id": last, "outcome": "closed", "answer": "closing", "error": None},
    ]
    assert ("close", -1, "return_value") not in result.xcoms
    assert all(emulator.get_record("cloudflare", sid).get("endTime") for sid in (first, last))
    logs = task_logs(caplog, capfd)
    assert f"1 of 3 session(s) were not closed; refused: {poison} (first: HTTP 414: URI Too Long" in logs


@pytest.mark.parametrize(
    "fault",
    [{"kind": "drop_after_apply"}, {"kind": "drop_after_apply", "status": 504}, {"kind": "close_mid_body"}],
    ids=["no-answer", "gateway-504", "cut-body"],
)
def test_a_close_whose_answer_was_lost_counts_as_closed(emulator, fault):
    emulator.settings["cloudflare_retention"] = 0.0  # the platform forgets a closed session at once
    (session_id,) = running(emulator, 1)
    emulator.script_faults([fault], method="DELETE")

    result = closer(session_ids=[session_id]).execute({})

    assert result == [{"session_id": session_id, "outcome": "closed", "answer": None, "error": None}]
    assert [e["fault"] for e in deletes(emulator)] == [fault["kind"], None]  # the retry answered 404
    assert deletes(emulator)[1]["status"] == 404
    assert emulator.get_record("cloudflare", session_id).get("endTime")


def test_a_404_after_a_rate_limit_is_already_gone(emulator):
    # A 429 is refused before the API acts: the session was gone already, nobody closed it.
    emulator.script_faults([{"kind": "429", "retry_after": 0.05}], method="DELETE")
    result = closer(session_ids=[UNKNOWN_ID]).execute({})
    assert result == [{"session_id": UNKNOWN_ID, "outcome": "not_found", "answer": None, "error": None}]
    assert [e["status"] for e in deletes(emulator)] == [429, 404]


def test_a_refused_connection_stops_the_batch_at_the_first_id(airflow_db, emulator):
    ids = running(emulator, 3)
    env = connection_env(emulator, "cf_wrong_token", password="not-the-token")

    result = run_dag(DAGS, "close_given", conf={"ids": ids, "conn_id": "cf_wrong_token"}, env=env)

    assert result.task_states["close"] == "failed"
    outcomes = result.xcom("close", key="outcomes")
    assert [o["outcome"] for o in outcomes] == ["refused", "not_attempted", "not_attempted"]
    assert outcomes[0]["error"].startswith("HTTP 401: Authentication error")
    assert "the API refused the connection itself" in outcomes[1]["error"]
    assert len(deletes(emulator)) == 1  # every id would have been refused the same way


def test_an_api_that_stops_answering_ends_the_batch_after_three_ids(airflow_db, emulator):
    ids = running(emulator, 5)
    emulator.set_random_faults(rate=1.0, kinds=["500"], seed=0, platform="cloudflare")
    env = connection_env(emulator, "cf_no_retries", max_retries=0)

    result = run_dag(DAGS, "close_given", conf={"ids": ids, "conn_id": "cf_no_retries"}, env=env)

    assert result.task_states["close"] == "failed"
    outcomes = result.xcom("close", key="outcomes")
    assert [o["outcome"] for o in outcomes] == ["failed"] * 3 + ["not_attempted"] * 2
    assert outcomes[0]["error"].startswith("HTTP 500: Internal server error")
    assert "3 sessions in a row got no usable answer" in outcomes[3]["error"]
    assert len(deletes(emulator)) == 3


def test_a_retry_sends_the_closes_again_and_finds_the_closed_ones_closed(airflow_db, emulator):
    first, last = running(emulator, 2)
    poison = "poison-refused"
    emulator.script_faults([{"kind": "body", "status": 400, "body": "{}"}] * 2, method="DELETE", path_contains=poison)
    run_dag(DAGS, "close_given", conf={"ids": [first, poison, last]})

    again = run_dag(DAGS, "close_given", conf={"ids": [first, poison, last]})

    assert [o["outcome"] for o in again.xcom("close", key="outcomes")] == ["closed", "refused", "closed"]
    assert [o["answer"] for o in again.xcom("close", key="outcomes")] == ["closed", None, "closed"]


# -- dry_run is a switch: a bool or "true"/"false", never a string that happens to be truthy ------------------


def test_a_templated_dry_run_false_closes(airflow_db, emulator):
    ids = running(emulator, 1)
    result = run_dag(DAGS, "close_given", conf={"ids": ids, "dry_run": False})
    assert result.task_states["close"] == "success"
    assert [r["outcome"] for r in result.xcom("close")] == ["closed"]
    assert len(deletes(emulator)) == 1


def test_a_templated_dry_run_true_only_logs(airflow_db, emulator):
    ids = running(emulator, 1)
    result = run_dag(DAGS, "close_given", conf={"ids": ids, "dry_run": "TRUE"})
    assert [r["outcome"] for r in result.xcom("close")] == ["dry_run"]
    assert deletes(emulator) == []


def test_a_templated_dry_run_that_is_not_a_bool_fails_naming_it(airflow_db, emulator, caplog, capfd):
    ids = running(emulator, 1)
    result = run_dag(DAGS, "close_given", conf={"ids": ids, "dry_run": "no"})
    assert result.task_states["close"] == "failed"
    assert emulator.request_count() == 0
    assert """Invalid value for 'dry_run': expected True or False, or the text "true" or "false\"""" in task_logs(
        caplog, capfd
    )


@pytest.mark.parametrize("value", ["no", "yes", "0", "", None, 1])
def test_a_literal_dry_run_that_is_not_a_bool_fails_when_the_dag_is_built(value):
    with pytest.raises(InvalidQueryError, match=r"'dry_run'.*True or False"):
        closer(session_ids=["a"], dry_run=value)


def would_close_lines(caplog, capfd):
    # Airflow 2.11 logs reach both caplog and the captured stream: keep each message once, in order.
    lines = [line for line in task_logs(caplog, capfd).splitlines() if "would close session" in line]
    return list(dict.fromkeys(line[line.index("Dry run: ") :] for line in lines))


def test_the_dry_run_log_shows_each_sessions_age_and_the_filter_that_chose_it(emulator, caplog, capfd):
    emulator.set_speed(0)
    now = emulator.now()
    old = emulator.add_session("cloudflare", started_at=now - 900, duration=None)["sessionId"]

    with caplog.at_level("INFO"):
        closer(min_duration=300, dry_run=True).execute({})

    (line,) = would_close_lines(caplog, capfd)
    assert old in line
    assert "running 0:15:0" in line  # 900 s, give or take the second the call takes
    assert "chosen by running, min_duration=300" in line


def test_the_dry_run_log_shows_the_age_of_sessions_a_list_task_returned(emulator, caplog, capfd):
    started = "2026-01-01T00:00:00+00:00"
    with caplog.at_level("INFO"):
        closer(session_ids=[{"session_id": "abc", "started_at": started}, "def"], dry_run=True).execute({})
    first, second = would_close_lines(caplog, capfd)
    assert f"since {started}" in first
    assert "listed in session_ids" in first
    assert "age unknown" in second


BB = "browserbase_default"


def releases(emulator):
    return [e for e in emulator.request_log(platform="browserbase") if e["method"] == "POST"]


def test_browserbase_releases_and_an_ended_session_is_already_gone(emulator):
    running_id = emulator.add_session("browserbase", duration=None)["id"]
    ended_id = emulator.add_session("browserbase", started_at=emulator.now() - 100, duration=10)["id"]

    result = closer(conn_id=BB, session_ids=[running_id, ended_id, UNKNOWN_ID]).execute({})

    assert result == [
        {"session_id": running_id, "outcome": "closed", "answer": "closed", "error": None},
        {"session_id": ended_id, "outcome": "not_found", "answer": None, "error": None},
        {"session_id": UNKNOWN_ID, "outcome": "not_found", "answer": None, "error": None},
    ]
    assert emulator.get_record("browserbase", running_id)["status"] == "COMPLETED"
    assert [e["status"] for e in releases(emulator)] == [200, 400, 404]


def test_browserbase_chooses_running_sessions_by_metadata_in_a_dry_run(emulator):
    emulator.set_speed(0)
    tagged = emulator.add_session("browserbase", duration=None, userMetadata={"job": "stale"})["id"]
    emulator.add_session("browserbase", duration=None, userMetadata={"job": "fresh"})
    emulator.add_session("browserbase", started_at=emulator.now() - 100, duration=10, userMetadata={"job": "stale"})

    result = closer(conn_id=BB, metadata={"job": "stale"}, dry_run=True).execute({})

    assert [(r["session_id"], r["outcome"]) for r in result] == [(tagged, "dry_run")]
    assert releases(emulator) == []


def test_browserbase_closes_in_a_dag_run(airflow_db, emulator):
    ids = [emulator.add_session("browserbase", duration=None)["id"] for _ in range(2)]
    result = run_dag(DAGS, "close_given", conf={"ids": ids, "conn_id": BB})
    assert result.state == "success", result.task_states
    assert [o["outcome"] for o in result.xcom("close")] == ["closed", "closed"]
    assert all(emulator.get_record("browserbase", sid)["status"] == "COMPLETED" for sid in ids)
