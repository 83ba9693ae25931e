"""WaitPlan: the one decision poke mode and the trigger share."""

from __future__ import annotations

import pytest

from airflow_provider_browsersessions.exceptions import InvalidQueryError
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery, SessionStatus
from airflow_provider_browsersessions.waiting import WaitPlan, normalize_session_ids


def session(sid, status="running", **extra):
    return BrowserSession(provider="brightdata", session_id=sid, status=SessionStatus(status), **extra)


def plan(ids=("a", "b"), missing="finished", **filters):
    return WaitPlan(query=SessionQuery.build(**filters), session_ids=ids, missing=missing)


def test_running_query_asks_only_for_running_sessions_with_the_filters():
    p = plan(api_name="zone")
    assert p.running_query.status == {SessionStatus.RUNNING}
    assert p.running_query.api_name == "zone"


def test_only_ids_that_left_the_running_set_are_read():
    p = plan(ids=("a", "b", "c"))
    assert p.ids_to_read(["a", "x"]) == ["b", "c"]


def test_waiting_while_any_watched_session_runs():
    p = plan()
    outcome = p.evaluate([session("a")], {"b": session("b", "finished")})
    assert not outcome.done
    assert outcome.running == ("a",)
    assert outcome.finished == ("b",)


def test_done_when_none_runs_and_final_states_are_reported():
    p = plan()
    p.evaluate([session("a")], {"b": session("b", "finished")})
    assert p.ids_to_read([]) == ["a"]  # b's final state is remembered, not read again
    outcome = p.evaluate([], {"a": session("a", "failed", error_code="timeout", error_message="Too slow")})
    assert outcome.done
    assert [r["session_id"] for r in outcome.records] == ["a", "b"]
    assert "a (timeout: Too slow)" in outcome.failure_message()


def test_a_read_that_still_says_running_keeps_waiting():
    outcome = plan(ids=("a",)).evaluate([], {"a": session("a", "running")})
    assert not outcome.done
    assert outcome.running == ("a",)


@pytest.mark.parametrize(("policy", "done", "failed"), [("finished", True, 0), ("failed", True, 1), ("wait", False, 0)])
def test_missing_policy(policy, done, failed):
    p = plan(ids=("gone",), missing=policy)
    outcome = p.evaluate([], {"gone": None})
    assert outcome.done is done
    assert len(outcome.failed) == failed
    assert outcome.missing == ("gone",)
    assert outcome.records[0] == {"session_id": "gone", "status": "missing", "counted_as": policy}


def test_wait_policy_asks_again_for_a_missing_id():
    p = plan(ids=("gone",), missing="wait")
    p.evaluate([], {"gone": None})
    assert p.ids_to_read([]) == ["gone"]
    assert p.evaluate([], {"gone": session("gone", "finished")}).done


def test_drain_mode_waits_until_nothing_matching_runs_and_reports_what_it_saw():
    p = plan(ids=None)
    assert p.ids_to_read(["a", "b"]) == []
    assert not p.evaluate([session("a"), session("b")], {}).done
    assert p.ids_to_read(["b"]) == ["a"]
    outcome = p.evaluate([session("b")], {"a": session("a", "finished")})
    assert not outcome.done
    assert p.ids_to_read([]) == ["b"]
    outcome = p.evaluate([], {"b": session("b", "finished")})
    assert outcome.done
    assert {r["session_id"] for r in outcome.records} == {"a", "b"}


def test_empty_id_list_is_done_at_once():
    assert plan(ids=()).evaluate([], {}).done


def test_bad_missing_policy_and_where_are_rejected():
    with pytest.raises(InvalidQueryError, match="missing"):
        plan(missing="ignore")
    with pytest.raises(InvalidQueryError, match="where"):
        WaitPlan(query=SessionQuery.build(where=lambda s: True), session_ids=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (["a", "b", "a"], ("a", "b")),
        ([{"session_id": "a", "status": "running"}], ("a",)),
        ('["a", "b"]', ("a", "b")),
        ("[{'session_id': 'a'}]", ("a",)),
        ("a, b", ("a", "b")),
        ("", ()),
    ],
)
def test_session_ids_in_every_form_a_dag_author_passes(value, expected):
    assert normalize_session_ids(value) == expected


@pytest.mark.parametrize("value", [{"a": 1}, [1], [{"id": "x"}], 5])
def test_bad_session_ids_are_rejected(value):
    with pytest.raises(InvalidQueryError, match="session_ids"):
        normalize_session_ids(value)


def test_a_last_watched_id_is_read_rather_than_walking_the_running_list():
    p = plan(ids=("a", "b"))
    assert not p.reads_suffice()  # two ids: one list page may answer both
    p.evaluate([session("b")], {"a": session("a", "finished")})
    assert p.reads_suffice()  # only "b" is left: one read is never dearer than a walk
    assert not plan(ids=None).reads_suffice()  # drain mode must walk the list
