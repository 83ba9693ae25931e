"""BrowserbaseHook against the embedded emulator over loopback HTTP."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_browsersessions.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    InvalidQueryError,
    MalformedResponseError,
    RateLimitedError,
    ResponseTooLargeError,
)
from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.browserbase import BrowserbaseHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.pacing import parse_ratelimit
from airflow_provider_browsersessions.platforms.browserbase import BrowserbasePlatform, parse_session
from airflow_provider_browsersessions.sessions import SessionQuery, SessionStatus
from airflow_provider_browsersessions.testing.emulator.browserbase_api import live_secret
from airflow_provider_browsersessions.transport import RetryPolicy

FAST_RETRY = RetryPolicy(max_retries=3, max_wait=10.0, backoff=0.01, max_backoff=0.05)


@pytest.fixture
def emulator(browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)
    return emulator


@pytest.fixture
def hook(emulator):
    return BrowserbaseHook(conn_id="browserbase_default", retry=FAST_RETRY)


def list_calls(emulator):
    return [
        e for e in emulator.request_log(platform="browserbase") if e["method"] == "GET" and e["path"] == "/v1/sessions"
    ]


def add(emulator, *, ago=0.0, duration=None, outcome="finished", **fields):
    return emulator.add_session(
        "browserbase", started_at=emulator.now() - ago, duration=duration, outcome=outcome, **fields
    )["id"]


def test_the_connection_type_resolves_to_the_hook(emulator):
    assert isinstance(get_browser_sessions_hook("browserbase_default"), BrowserbaseHook)
    assert BrowserbaseHook.get_ui_field_behaviour()["relabeling"]["password"] == "API key"


def test_statuses_map_to_the_neutral_model(emulator, hook):
    pending = add(emulator)
    running = add(emulator, ago=30)
    done = add(emulator, ago=100, duration=40)
    error = add(emulator, ago=100, duration=40, outcome="failed", failure="ERROR")
    timed_out = add(emulator, ago=100, duration=40, outcome="failed", failure="TIMED_OUT")
    by_id = {s.session_id: s for s in hook.list_sessions()}
    assert by_id[pending].status is by_id[running].status is SessionStatus.RUNNING
    assert by_id[done].status is SessionStatus.FINISHED
    assert by_id[done].duration == pytest.approx(40, abs=0.01)  # endedAt - startedAt
    assert (by_id[error].status, by_id[error].error_code) == (SessionStatus.FAILED, "ERROR")
    assert (by_id[timed_out].status, by_id[timed_out].error_code) == (SessionStatus.FAILED, "TIMED_OUT")
    assert by_id[running].ended_at is None


def test_running_sends_pending_and_running_and_merges_them(emulator, hook):
    pending = add(emulator)
    running = add(emulator, ago=30)
    add(emulator, ago=100, duration=40)
    found = hook.list_sessions(status="running")
    assert sorted(s.session_id for s in found) == sorted([pending, running])
    assert [c["query"]["status"] for c in list_calls(emulator)] == [["PENDING"], ["RUNNING"]]


def test_failed_sends_error_and_timed_out(emulator, hook):
    error = add(emulator, ago=100, duration=40, outcome="failed", failure="ERROR")
    timed_out = add(emulator, ago=100, duration=40, outcome="failed", failure="TIMED_OUT")
    add(emulator, ago=100, duration=40)
    assert sorted(s.session_id for s in hook.list_sessions(status="failed")) == sorted([error, timed_out])
    assert [c["query"]["status"] for c in list_calls(emulator)] == [["ERROR"], ["TIMED_OUT"]]


def test_every_status_is_one_request_without_a_status(emulator, hook):
    emulator.seed_sessions(platform="browserbase", count=30, seed=4)
    assert len(hook.list_sessions(status=["running", "finished", "failed"])) == 30
    assert [c["query"].get("status") for c in list_calls(emulator)] == [None]


def test_metadata_is_sent_as_q_and_judged_again_locally(emulator, hook):
    mine = add(emulator, ago=10, userMetadata={"airflow_run_id": "run 1", "team": {"name": "growth"}})
    add(emulator, ago=10, userMetadata={"airflow_run_id": "run 1", "team": {"name": "ops"}})
    add(emulator, ago=10, userMetadata={"airflow_run_id": "run 2"})
    found = hook.list_sessions(metadata={"airflow_run_id": "run 1", "team": {"name": "growth"}})
    assert [s.session_id for s in found] == [mine]
    (query,) = [c["query"]["q"] for c in list_calls(emulator)]
    assert query == ["user_metadata['airflow_run_id']:'run 1'"]  # one condition per q: the rest is local
    assert found[0].raw["userMetadata"]["team"] == {"name": "growth"}  # kept


def test_time_and_bandwidth_filters_are_local_and_logged_as_local(emulator, hook, caplog):
    add(emulator, ago=100, duration=40, proxyBytes=5_000)
    big = add(emulator, ago=100, duration=40, proxyBytes=5_000_000)
    walk = hook.client.plan_walk(min_bandwidth=1_000_000, status="finished")
    assert "min_bandwidth" in walk.local
    assert "status" in walk.pushed
    assert [s.session_id for s in hook.list_sessions(min_bandwidth=1_000_000)] == [big]
    assert "applied locally only [min_bandwidth]" in walk.describe()


@pytest.mark.parametrize("name", ["api_name", "target_url", "end_url", "captcha"])
def test_filters_it_cannot_honour_are_refused_by_name_before_any_request(emulator, hook, name):
    value = "solved" if name == "captcha" else "x"
    with pytest.raises(InvalidQueryError, match=name):
        hook.list_sessions(**{name: value})
    assert emulator.request_count(platform="browserbase") == 0


@pytest.mark.parametrize("hook_class", [BrightDataBrowserHook, CloudflareBrowserRenderingHook])
def test_the_other_platforms_refuse_metadata_by_name(emulator, hook_class):
    other = hook_class(retry=FAST_RETRY)
    with pytest.raises(InvalidQueryError, match="metadata"):
        other.list_sessions(metadata={"airflow_run_id": "x"})
    assert emulator.request_count() == 0


@pytest.mark.parametrize("metadata", [{"a": 1}, {"a": "it's"}, {"it's": "a"}, {}, {"a": {}}, "not json", {"a": ["x"]}])
def test_a_metadata_filter_the_api_cannot_express_is_refused(metadata):
    if metadata == {}:
        assert SessionQuery.build(metadata=metadata).metadata is None
        return
    with pytest.raises(InvalidQueryError, match="metadata"):
        SessionQuery.build(metadata=metadata)


def test_the_metadata_filter_round_trips_through_its_dict_form():
    query = SessionQuery.build(metadata={"b": "2", "a": {"c": "1"}})
    assert query.metadata == ((("a", "c"), "1"), (("b",), "2"))
    assert SessionQuery.build(**query.to_dict()) == query
    assert SessionQuery.build(metadata=json.dumps({"b": "2", "a": {"c": "1"}})) == query  # a rendered template
    hash(query)  # shared polls key on queries


def test_a_read_keeps_none_of_the_live_browser_credentials(emulator, hook, caplog):
    session_id = add(emulator, ago=10, wire={"status": "RELEASING"})
    secret = live_secret(emulator.store.get("browserbase", session_id))
    with caplog.at_level(logging.DEBUG):
        session = hook.get_session(session_id)
    assert session is not None
    assert session.status is SessionStatus.RUNNING  # an unknown status counts as running, with a warning
    assert "RELEASING" in caplog.text
    assert secret not in repr(session.raw)
    assert secret not in json.dumps(session.to_dict(include_raw=True))
    assert secret not in caplog.text
    assert hook.get_session("unknown") is None


def test_release_closes_and_an_ended_session_reads_as_already_gone(emulator, hook):
    session_id = add(emulator, ago=10)
    closes = list(hook.client.close_each([session_id, session_id, "unknown"]))
    assert [c.outcome.value for c in closes] == ["closed", "not_found", "not_found"]
    assert closes[0].answer == "closed"
    assert hook.get_session(session_id).status is SessionStatus.FINISHED
    posts = [e for e in emulator.request_log(platform="browserbase") if e["method"] == "POST"]
    assert len(posts) == 3


def test_wrong_key_is_an_authentication_error_without_the_key(emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_BROWSERBASE_DEFAULT",
        json.dumps({"conn_type": "browserbase", "host": emulator.url, "password": "sekret-wrong-key"}),
    )
    hook = BrowserbaseHook(retry=FAST_RETRY)
    with pytest.raises(AuthenticationError) as caught:
        hook.list_sessions()
    assert "sekret-wrong-key" not in str(caught.value)
    ok, message = BrowserbaseHook().test_connection()
    assert not ok
    assert "Password" in message
    assert "sekret-wrong-key" not in message


def test_test_connection_succeeds_with_the_emulator(emulator, hook):
    ok, message = hook.test_connection()
    assert ok, message
    assert "Browserbase" in message


def test_missing_key_is_a_configuration_error_before_any_request(emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_BROWSERBASE_DEFAULT", json.dumps({"conn_type": "browserbase", "host": emulator.url})
    )
    with pytest.raises(ConnectionConfigError, match="Password"):
        BrowserbaseHook().list_sessions()
    assert emulator.request_count(platform="browserbase") == 0


def test_429_is_retried_and_its_headers_feed_the_pacer(emulator, hook):
    add(emulator, ago=10)
    emulator.script_faults([{"kind": "429", "retry_after": 0.01}], platform="browserbase")
    assert len(hook.list_sessions()) == 1
    assert emulator.request_count(platform="browserbase") == 2
    emulator.script_faults([{"kind": "429", "retry_after": 0.01}] * 10, platform="browserbase")
    with pytest.raises(RateLimitedError):
        hook.list_sessions()


def test_the_x_ratelimit_headers_are_read_for_pacing():
    headers = {"X-Ratelimit-Limit": "3", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "45"}
    assert parse_ratelimit(headers) == (0, 45.0, 3)


def test_a_body_that_is_not_an_array_is_malformed(emulator, hook):
    emulator.script_faults([{"kind": "body", "body": '{"sessions": []}'}], platform="browserbase")
    with pytest.raises(MalformedResponseError, match="JSON array"):
        hook.list_sessions()


def test_a_response_past_the_size_cap_fails_naming_the_bound(emulator, monkeypatch):
    emulator.seed_sessions(platform="browserbase", count=200, seed=5)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BROWSERBASE_DEFAULT",
        json.dumps(
            {
                "conn_type": "browserbase",
                "host": emulator.url,
                "password": emulator.browserbase_api_key,
                "extra": {"max_response_bytes": 10_000},
            }
        ),
    )
    with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
        BrowserbaseHook(retry=FAST_RETRY).list_sessions()


def test_parse_session_drops_live_fields_and_odd_values_harm_only_themselves():
    odd: list = []
    session = parse_session(
        {
            "id": "s1",
            "status": "COMPLETED",
            "startedAt": "2026-01-01T00:00:00Z",
            "endedAt": "not a time",
            "proxyBytes": "lots",
            "signingKey": "k",
            "connectUrl": "wss://x?signingKey=k",
            "seleniumRemoteUrl": "http://x",
            "region": "us-east-1",
        },
        odd_values=odd,
    )
    assert session.status is SessionStatus.FINISHED
    assert session.ended_at is None
    assert session.bandwidth is None
    assert {o.field for o in odd} == {"endedAt", "proxyBytes"}
    assert set(session.raw) == {"id", "status", "startedAt", "endedAt", "proxyBytes", "region"}


def test_a_listing_is_one_request_per_wire_status_built_without_io():
    platform = BrowserbasePlatform()
    query = SessionQuery.build(status=["running", "failed"])
    first = platform.list_request(query, page_size=1000)
    statuses = []
    request = first
    while request is not None:
        statuses.append(dict(request.params)["status"])
        request = platform.parse_list_page(request, []).next_request
    assert statuses == ["PENDING", "RUNNING", "ERROR", "TIMED_OUT"]
