"""WaitPlan: the one decision poke mode and the trigger share."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_browsersessions.exceptions import (
    ApiError,
    AuthenticationError,
    ErrorContext,
    HostUnreachableError,
    InvalidQueryError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery, SessionStatus
from airflow_provider_browsersessions.waiting import (
    WaitPlan,
    check_seconds,
    check_unreachable_timeout,
    normalize_session_ids,
)


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
    assert p.record_running_and_ids_to_read(["a", "x"]) == ["b", "c"]


def test_waiting_while_any_watched_session_runs():
    p = plan()
    outcome = p.evaluate([session("a")], {"b": session("b", "finished")})
    assert not outcome.done
    assert outcome.running == ("a",)
    assert outcome.finished == ("b",)


def test_done_when_none_runs_and_final_states_are_reported():
    p = plan()
    p.evaluate([session("a")], {"b": session("b", "finished")})
    assert p.record_running_and_ids_to_read([]) == ["a"]  # b's final state is remembered, not read again
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
    assert p.record_running_and_ids_to_read([]) == ["gone"]
    assert p.evaluate([], {"gone": session("gone", "finished")}).done


def test_drain_mode_waits_until_nothing_matching_runs_and_reports_what_it_saw():
    p = plan(ids=None)
    assert p.record_running_and_ids_to_read(["a", "b"]) == []
    assert not p.evaluate([session("a"), session("b")], {}).done
    assert p.record_running_and_ids_to_read(["b"]) == ["a"]
    outcome = p.evaluate([session("b")], {"a": session("a", "finished")})
    assert not outcome.done
    assert p.record_running_and_ids_to_read([]) == ["b"]
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
    assert not p.can_skip_running_walk()  # two ids: one list page may answer both
    p.evaluate([session("b")], {"a": session("a", "finished")})
    assert p.can_skip_running_walk()  # only "b" is left: one read is never dearer than a walk
    assert not plan(ids=None).can_skip_running_walk()  # drain mode must walk the list


# -- issue #19, #21, #25: running filters, deadlines' helpers, memory as JSON ---------------------------------


def test_the_running_walk_uses_only_filters_a_running_session_can_match():
    p = plan(ids=("a",), api_name="zone", target_url="shop", end_url="done")
    assert p.running_query.api_name == "zone"
    assert p.running_query.target_url is None
    assert p.running_query.end_url is None


@pytest.mark.parametrize("name", ["target_url", "end_url", "has_error", "min_duration"])
def test_a_drain_by_a_filter_a_running_session_cannot_match_is_refused(name):
    value = {"has_error": True, "min_duration": 5}.get(name, "shop")
    with pytest.raises(InvalidQueryError, match=f"{name}.*unset when draining"):
        plan(ids=None, api_name="zone", **{name: value})


def test_ids_are_named_five_at_a_time_then_counted():
    from airflow_provider_browsersessions.waiting import name_ids

    assert name_ids([]) == "none"
    assert name_ids(["a", "b"]) == "a, b"
    assert name_ids([str(i) for i in range(8)]) == "0, 1, 2, 3, 4 and 3 more"


def test_a_timeout_message_names_the_drain_and_what_still_runs():
    p = plan(ids=None, api_name="zone")
    p.record_running_and_ids_to_read(["a", "b"])  # a poll: the walk saw both running
    outcome = p.evaluate([session("a"), session("b")], {})
    message = p.timeout_message(outcome)
    assert "drain of the running sessions where api_name=zone" in message
    assert "2 watched session(s) still running: a, b" in message


def test_retry_after_is_honoured_but_capped_and_failures_back_off():
    from airflow_provider_browsersessions.exceptions import RateLimitedError
    from airflow_provider_browsersessions.pacing import MAX_POLL_RETRY_AFTER
    from airflow_provider_browsersessions.waiting import next_poll_delay

    def limited(seconds):
        return RateLimitedError(platform="P", method="GET", path="/", status=429, message="m", retry_after=seconds)

    assert next_poll_delay(2.0) == 2.0
    assert next_poll_delay(2.0, limited(999999999), failures=1) == MAX_POLL_RETRY_AFTER
    assert next_poll_delay(2.0, limited(5), failures=1) == 5
    assert next_poll_delay(2.0, limited(None), failures=3) == 8.0
    assert next_poll_delay(2.0, limited(None), failures=100) == MAX_POLL_RETRY_AFTER


def test_one_rule_for_skipping_a_failed_poll():
    import logging

    from airflow_provider_browsersessions.exceptions import (
        ApiError,
        AuthenticationError,
        MalformedResponseError,
        ServerError,
    )
    from airflow_provider_browsersessions.waiting import skip_failed_poll

    log = logging.getLogger("test")
    common = {"platform": "P", "method": "GET", "path": "/", "message": "m"}
    outage = ServerError(status=503, **common)
    redirect = ApiError(status=302, **common)
    null_body = MalformedResponseError(status=200, **common)
    refused = AuthenticationError(status=401, **common)
    assert skip_failed_poll(outage, log=log, what="Poll")
    assert not skip_failed_poll(redirect, log=log, what="Poll")  # a wait reports it at once
    assert skip_failed_poll(redirect, log=log, what="Poll", watcher=True)  # a watcher must not die of it
    assert skip_failed_poll(null_body, log=log, what="Poll", watcher=True)
    assert not skip_failed_poll(refused, log=log, what="Poll", watcher=True)
    assert not skip_failed_poll(ValueError("x"), log=log, what="Poll")


def test_a_drains_memory_survives_a_json_round_trip_and_refuses_another_wait():
    first = plan(ids=None, api_name="zone")
    first.record_running_and_ids_to_read(["a", "b"])
    first.evaluate([session("b")], {"a": session("a", "failed", error_code="boom")})
    state = json.loads(json.dumps(first.to_state()))
    again = plan(ids=None, api_name="zone")
    assert again.restore(state)
    outcome = again.evaluate([], {"b": session("b", "finished")})
    assert outcome.done
    assert {r["session_id"]: r["status"] for r in outcome.records} == {"a": "failed", "b": "finished"}
    assert not plan(ids=None, api_name="another").restore(state)  # the DAG changed: start afresh
    assert not plan(ids=None, api_name="zone").restore({"version": 99})


def test_a_wait_remembers_a_bounded_number_of_sessions():
    from airflow_provider_browsersessions.exceptions import BrowserSessionsError
    from airflow_provider_browsersessions.waiting import MAX_REMEMBERED_SESSIONS

    p = plan(ids=None)
    p.record_running_and_ids_to_read([str(i) for i in range(MAX_REMEMBERED_SESSIONS + 1)])
    with pytest.raises(BrowserSessionsError, match=f"more than the {MAX_REMEMBERED_SESSIONS} it can remember"):
        p.to_state()


# -- a host that gives no answer: skipped polls, bounded by unreachable_timeout ---------------------------------


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, msg: str, /, *args: object) -> None:
        self.lines.append(msg % args)


def _no_answer(host: str | None = "api.example:443") -> TransportError:
    context = None
    if host is not None:
        context = ErrorContext(conn_id="bd", host=host, fix=lambda error: "Check the Base URL (Host field).")
    return TransportError(
        platform="Bright Data",
        method="GET",
        path="/browser_sessions",
        status=None,
        message="ConnectError: refused",
        context=context,
    )


def _answered(status: int) -> ApiError:
    cls = {429: RateLimitedError, 503: ServerError, 401: AuthenticationError}[status]
    return cls(platform="Bright Data", method="GET", path="/browser_sessions", status=status, message="x")


def test_polls_without_an_answer_are_skipped_until_the_bound_then_fail_naming_the_host_and_the_error():
    p = WaitPlan(query=SessionQuery(), session_ids=("a",), unreachable_timeout=600)
    log = _Log()
    assert p.poll_failed(_no_answer(), log=log, now=1000.0)
    assert p.poll_failed(_no_answer(), log=log, now=1599.0)  # an outage shorter than the bound
    assert len(log.lines) == 2
    assert "skipping this poll" in log.lines[0]
    with pytest.raises(HostUnreachableError) as failed:
        p.poll_failed(_no_answer(), log=log, now=1600.0)
    message = str(failed.value)
    assert "No answer from the host api.example:443 for 600 s (3 poll(s) in a row)" in message
    assert "unreachable_timeout of 600 s" in message
    assert "ConnectError: refused" in message
    assert "Check the Base URL" in message
    assert not isinstance(failed.value, AirflowFailException)  # the task's retries still apply
    assert p.poll_failed(_no_answer(), log=log, now=1700.0)  # counted afresh by whoever polls next


@pytest.mark.parametrize("answer", ["success", 429, 503])
def test_any_answer_from_the_host_starts_the_count_over(answer):
    p = WaitPlan(query=SessionQuery(), session_ids=("a",), unreachable_timeout=600)
    assert p.poll_failed(_no_answer(), log=_Log(), now=1000.0)
    if answer == "success":
        p.evaluate([session("a")], {})
    else:
        assert p.poll_failed(_answered(answer), log=_Log(), now=1500.0)  # reachable: skipped, not counted
    assert p.poll_failed(_no_answer(), log=_Log(), now=1700.0)
    assert p.unanswered_polls == 1


def test_a_rejected_key_is_never_skipped_and_fails_without_retries():
    p = WaitPlan(query=SessionQuery(), session_ids=("a",))
    assert not p.poll_failed(_answered(401), log=_Log(), now=0.0)  # the caller re-raises it
    assert isinstance(_answered(401), AirflowFailException)


def test_no_bound_waits_until_the_timeout_and_zero_fails_at_the_first_unanswered_poll():
    unbounded = WaitPlan(query=SessionQuery(), session_ids=("a",), unreachable_timeout=None)
    assert unbounded.poll_failed(_no_answer(), log=_Log(), now=0.0)
    assert unbounded.poll_failed(_no_answer(), log=_Log(), now=10.0**9)
    eager = WaitPlan(query=SessionQuery(), session_ids=("a",), unreachable_timeout=0)
    with pytest.raises(HostUnreachableError, match="host of the Bright Data API"):
        eager.poll_failed(_no_answer(host=None), log=_Log(), now=0.0)


def test_the_count_of_unanswered_polls_is_kept_in_the_memory_a_reschedule_poke_reads_back():
    first = WaitPlan(query=SessionQuery(), session_ids=None, unreachable_timeout=60)
    first.poll_failed(_no_answer(), log=_Log(), now=1000.0)
    again = WaitPlan(query=SessionQuery(), session_ids=None, unreachable_timeout=60)
    assert again.restore(json.loads(json.dumps(first.to_state())))
    with pytest.raises(HostUnreachableError, match=r"2 poll\(s\) in a row"):
        again.poll_failed(_no_answer(), log=_Log(), now=1060.0)


# Infinity too: the bound travels in trigger kwargs and wait state as JSON, which has no infinity (None: no bound).
@pytest.mark.parametrize(
    "value",
    [-1, "soon", True, timedelta(seconds=-5), math.inf, math.nan, "inf", 10**400, pytest.param(10**5000, id="huge")],
)
def test_an_unreachable_timeout_that_is_not_a_duration_is_refused(value):
    with pytest.raises(InvalidQueryError, match="unreachable_timeout"):
        check_unreachable_timeout(value)


def test_an_unreachable_timeout_is_seconds_or_a_timedelta():
    assert check_unreachable_timeout(timedelta(minutes=2)) == 120.0
    assert check_unreachable_timeout(90) == 90.0
    assert check_unreachable_timeout(None) is None
    assert check_unreachable_timeout(0) == 0.0


def test_every_duration_parameter_reads_seconds_the_same_way():
    for name in ("poll_interval", "end_time", "unreachable_timeout"):
        assert check_seconds(name, 90) == check_seconds(name, "90") == check_seconds(name, timedelta(seconds=90)) == 90
    with pytest.raises(InvalidQueryError, match="'poll_interval': expected a finite number of seconds"):
        check_seconds("poll_interval", 0)
    with pytest.raises(InvalidQueryError, match=r"not 'x{60}'…\.$"):
        check_seconds("end_time", "x" * 10**6)
    # Past 4,300 digits Python cannot even write an int out: the message says how long it is instead.
    with pytest.raises(InvalidQueryError, match="not a number of about 5,001 digits"):
        check_seconds("poll_interval", 10**5000)
