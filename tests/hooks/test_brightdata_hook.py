"""BrightDataBrowserHook against the embedded emulator over loopback HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_browsersessions.exceptions import (
    AuthenticationError,
    BadRequestError,
    ConnectionConfigError,
    InvalidQueryError,
    RateLimitedError,
    ServerError,
)
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.sessions import SessionStatus
from airflow_provider_browsersessions.transport import RetryPolicy

FAST_RETRY = RetryPolicy(max_retries=3, max_wait=10.0, backoff=0.01, max_backoff=0.05)


@pytest.fixture
def emulator(browsersessions_connections):
    return browsersessions_connections.emulator


@pytest.fixture
def hook(emulator):
    return BrightDataBrowserHook(conn_id="brightdata_default", retry=FAST_RETRY)


def list_calls(emulator):
    return [entry for entry in emulator.request_log(platform="brightdata") if entry["path"] == "/browser_sessions"]


def test_pages_at_the_api_maximum_until_has_more_is_false(emulator, hook):
    emulator.seed_sessions(platform="brightdata", count=250, seed=1)
    sessions = hook.list_sessions()
    assert len(sessions) == 250
    assert len({s.session_id for s in sessions}) == 250
    calls = list_calls(emulator)
    assert [c["query"]["limit"] for c in calls] == [["100"]] * 3
    # Pages fetched ahead (pages_in_flight) may reach the server in any order.
    assert sorted(int(c["query"]["offset"][0]) for c in calls) == [0, 100, 200]


def test_filters_are_pushed_down_in_the_query_string(emulator, hook):
    emulator.seed_sessions(platform="brightdata", count=120, seed=2)
    hook.list_sessions(
        status="failed",
        api_name="scraping_browser1",
        started_after="2020-01-01T00:00:00+02:00",
        started_before="2100-01-01T00:00:00Z",
        target_url="example",
        sort="bandwidth",
        order="asc",
    )
    query = list_calls(emulator)[0]["query"]
    assert query["status"] == ["failed"]
    assert query["api_name"] == ["scraping_browser1"]
    assert query["start_date"] == ["2019-12-31T22:00:00Z"]
    assert query["end_date"] == ["2100-01-01T00:00:00Z"]
    assert query["target_url"] == ["example"]
    assert query["sort"] == ["bandwidth"]
    assert query["order"] == ["asc"]


def test_a_time_filter_before_the_year_1000_is_sent_as_iso_8601(emulator, hook):
    # Four-digit years, fraction cut: the bounds were sent as "999-06-01T..." (refused as not ISO 8601) before.
    hook.list_sessions(started_after="0999-06-01T12:00:00.75Z", started_before="1000-01-01T00:00:00Z")
    query = list_calls(emulator)[0]["query"]
    assert query["start_date"] == ["0999-06-01T12:00:00Z"]
    assert query["end_date"] == ["1000-01-01T00:00:00Z"]


def test_pushed_down_results_match_what_the_emulator_holds(emulator, hook):
    emulator.seed_sessions(platform="brightdata", count=300, seed=3)
    expected = {
        r["session_id"]
        for r in emulator.sessions("brightdata")
        if r["status"] == "failed" and r["api_name"] == "scraping_browser1"
    }
    got = hook.list_sessions(status="failed", api_name="scraping_browser1")
    assert {s.session_id for s in got} == expected
    assert all(s.status is SessionStatus.FAILED for s in got)


def test_local_filters_apply_to_normalized_sessions(emulator, hook):
    emulator.seed_sessions(platform="brightdata", count=200, seed=4)
    got = hook.list_sessions(min_bandwidth=10_000_000, has_error=False)
    expected = {
        r["session_id"]
        for r in emulator.sessions("brightdata")
        if (r["bandwidth"] or 0) >= 10_000_000 and r["error"] is None
    }
    assert {s.session_id for s in got} == expected
    assert "min_bandwidth" not in list_calls(emulator)[0]["query"]


def test_max_results_stops_paging_early(emulator, hook):
    emulator.seed_sessions(platform="brightdata", count=500, seed=5)
    iterator = hook.iter_sessions(max_results=150)
    assert len(list(iterator)) == 150
    assert len(list_calls(emulator)) == 2
    assert iterator.walk.stats.truncated


def test_get_session_unwraps_and_returns_none_when_unknown(emulator, hook):
    record = emulator.add_session("brightdata", duration=None)
    session = hook.get_session(record["session_id"])
    assert session.session_id == record["session_id"]
    assert session.status is SessionStatus.RUNNING
    assert hook.get_session("no-such-session") is None


def test_hostile_session_ids_are_quoted_into_one_segment(emulator, hook):
    with pytest.raises(BadRequestError, match="Invalid session_id format"):
        hook.get_session("../browser_sessions?status=all#x y%")
    raw_path = emulator.request_log(platform="brightdata")[-1]["path"]
    assert raw_path == "/browser_sessions/..%2Fbrowser_sessions%3Fstatus%3Dall%23x%20y%25"


def test_wrong_key_is_an_authentication_error_without_the_key(emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIGHTDATA_BAD",
        f'{{"conn_type": "brightdata", "host": "{emulator.url}", "password": "canary-key-123"}}',
    )
    hook = BrightDataBrowserHook(conn_id="brightdata_bad", retry=FAST_RETRY)
    with pytest.raises(AuthenticationError) as excinfo:
        hook.list_sessions()
    assert "HTTP 401" in str(excinfo.value)
    assert "Invalid credentials" in str(excinfo.value)
    assert "canary-key-123" not in str(excinfo.value)
    ok, message = hook.test_connection()
    assert not ok
    assert "Password" in message
    assert "canary-key-123" not in message


def test_test_connection_succeeds_with_the_emulator(emulator, hook):
    ok, message = hook.test_connection()
    assert ok, message
    assert emulator.url in message


def test_missing_key_is_a_configuration_error_before_any_request(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BRIGHTDATA_NOKEY", f'{{"conn_type": "brightdata", "host": "{emulator.url}"}}')
    hook = BrightDataBrowserHook(conn_id="brightdata_nokey")
    with pytest.raises(ConnectionConfigError, match="brightdata_nokey"):
        hook.list_sessions()
    assert emulator.request_count() == 0


def test_invalid_filters_fail_before_any_request(emulator, hook):
    with pytest.raises(InvalidQueryError, match="status"):
        hook.list_sessions(status="paused")
    with pytest.raises(InvalidQueryError, match="page_size"):
        hook.list_sessions(page_size=500)
    assert emulator.request_count() == 0


def test_429_is_retried_honouring_retry_after(emulator, hook):
    emulator.seed_sessions(platform="brightdata", count=5, seed=6)
    emulator.script_faults([{"kind": "429", "retry_after": 0.2}, {"kind": "503"}], platform="brightdata")
    assert len(hook.list_sessions()) == 5
    statuses = [entry["status"] for entry in list_calls(emulator)]
    assert statuses == [429, 503, 200]


def test_retries_are_bounded_and_the_error_is_clear(emulator):
    hook = BrightDataBrowserHook(conn_id="brightdata_default", retry=RetryPolicy(max_retries=2, backoff=0.01))
    emulator.script_faults([{"kind": "500"}] * 5, platform="brightdata")
    with pytest.raises(ServerError) as excinfo:
        hook.list_sessions()
    assert "gave up after 3 attempt(s)" in str(excinfo.value)
    assert "HTTP 500" in str(excinfo.value)
    assert emulator.request_count(platform="brightdata") == 3


def test_retry_after_beyond_the_wait_budget_gives_up_at_once(emulator):
    hook = BrightDataBrowserHook(conn_id="brightdata_default", retry=RetryPolicy(max_retries=5, max_wait=1.0))
    emulator.script_faults([{"kind": "429", "retry_after": 30}], platform="brightdata")
    with pytest.raises(RateLimitedError):
        hook.list_sessions()
    assert emulator.request_count(platform="brightdata") == 1


@pytest.mark.parametrize("kind", ["close_mid_body", "malformed_json", "html_error"])
def test_cut_and_garbled_bodies_are_retried(emulator, hook, kind):
    emulator.seed_sessions(platform="brightdata", count=3, seed=7)
    emulator.script_faults([{"kind": kind}], platform="brightdata")
    assert len(hook.list_sessions()) == 3
    assert emulator.request_count(platform="brightdata") == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"request_deadline": 0}, "extra 'request_deadline' must be a number above 0, got 0"),
        ({"max_response_bytes": "0"}, "extra 'max_response_bytes' must be an integer above 0, got '0'"),
        ({"max_pages": 0}, "extra 'max_pages' must be a positive integer, got 0"),
        ({"verify": "maybe"}, "extra 'verify' must be true or false, got 'maybe'"),
    ],
)
def test_a_refused_extra_names_the_connection_the_extra_and_what_it_accepts(emulator, monkeypatch, extra, message):
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIGHTDATA_ODD",
        json.dumps({"conn_type": "brightdata", "host": emulator.url, "password": "k", "extra": extra}),
    )
    hook = BrightDataBrowserHook(conn_id="brightdata_odd")
    with pytest.raises(ConnectionConfigError) as raised:
        hook.list_sessions()
    assert str(raised.value) == f"Connection 'brightdata_odd' (Bright Data Browser API): {message}"
    assert emulator.request_count() == 0


def test_closing_a_hook_that_made_no_call_reads_no_connection(emulator, monkeypatch):
    # Operators close their hook in a ``finally``: a connection that fails its checks must not fail again there.
    monkeypatch.setenv("AIRFLOW_CONN_BRIGHTDATA_NOKEY", f'{{"conn_type": "brightdata", "host": "{emulator.url}"}}')
    hook = BrightDataBrowserHook(conn_id="brightdata_nokey")
    hook.close()
    asyncio.run(hook.aclose())
    assert hook._connection is None
    with pytest.raises(ConnectionConfigError, match="brightdata_nokey"):
        hook.list_sessions()
    hook.close()
