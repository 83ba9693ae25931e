"""How each platform's bodies become sessions and errors, without a network (pure functions)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_browsersessions.exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    InvalidQueryError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from airflow_provider_browsersessions.platforms.base import (
    ApiRequest,
    ResponseShapeError,
    SessionWalk,
    api_error_text,
    decode_response,
    parse_retry_after,
)
from airflow_provider_browsersessions.platforms.brightdata import BrightDataPlatform
from airflow_provider_browsersessions.platforms.brightdata import parse_session as parse_bd
from airflow_provider_browsersessions.platforms.cloudflare import CloudflarePlatform
from airflow_provider_browsersessions.platforms.cloudflare import parse_session as parse_cf
from airflow_provider_browsersessions.sessions import SessionQuery, SessionStatus

BD = BrightDataPlatform()
CF = CloudflarePlatform(account_id="acc/1")


def bd_record(**overrides):
    record = {
        "session_id": "a1",
        "api_name": "scraping_browser1",
        "status": "finished",
        "target_url": "https://www.example.com",
        "end_url": "https://www.example.com/example/sub",
        "navigations": 4,
        "timestamp": "2025-12-16T18:53:41Z",
        "duration": 209.444,
        "captcha": "solved",
        "bandwidth": 123456789,
        "error": None,
    }
    record.update(overrides)
    return record


def test_bright_data_finished_session_has_end_time_from_duration():
    session = parse_bd(bd_record())
    assert session.status is SessionStatus.FINISHED
    assert session.ended_at.isoformat().startswith("2025-12-16T18:57:10.444")
    assert session.bandwidth == 123456789


def test_bright_data_running_session_as_documented():
    session = parse_bd(
        bd_record(status="running", target_url=None, end_url=None, navigations=0, duration=None, bandwidth=0)
    )
    assert session.status is SessionStatus.RUNNING
    assert session.ended_at is None
    assert session.duration is None


def test_bright_data_failed_session_keeps_its_error():
    session = parse_bd(bd_record(status="failed", error={"code": "unknown", "message": "Error"}))
    assert (session.error_code, session.error_message) == ("unknown", "Error")
    assert session.has_error


@pytest.mark.parametrize(
    ("record", "complaint"),
    [
        ([], "should be a JSON object"),
        ({"status": "finished"}, "no session_id"),
        ({"session_id": "..", "status": "finished"}, "no request path can name"),
    ],
)
def test_bright_data_bad_records_raise_a_shape_error(record, complaint):
    with pytest.raises(ResponseShapeError, match=complaint):
        parse_bd(record)


def test_bright_data_list_request_pushes_filters_down_in_utc():
    query = SessionQuery.build(
        status="failed",
        api_name="zone",
        started_after="2025-12-01T01:00:00+01:00",
        target_url="example.com",
        sort="bandwidth",
        order="asc",
        min_duration=5,
    )
    request = BD.list_request(query, page_size=100)
    params = dict(request.params)
    assert params == {
        "api_name": "zone",
        "order": "asc",
        "sort": "bandwidth",
        "start_date": "2025-12-01T00:00:00Z",
        "status": "failed",
        "target_url": "example.com",
        "limit": "100",
        "offset": "0",
    }
    assert "min_duration" not in BD.pushed_filters(query)


def test_bright_data_several_statuses_are_filtered_locally():
    query = SessionQuery.build(status=["failed", "finished"])
    assert "status" not in BD.pushed_filters(query)
    assert "status" not in dict(BD.list_request(query, page_size=100).params)


def page(records, *, offset=0, limit=100, has_more=False, total=None):
    return {
        "sessions": records,
        "count": len(records),
        "total": total if total is not None else len(records),
        "pagination": {
            "offset": offset,
            "limit": limit,
            "has_more": has_more,
            "next_offset": offset + len(records) if has_more else None,
        },
    }


def test_bright_data_next_page_follows_next_offset():
    first = BD.list_request(SessionQuery(), page_size=2)
    parsed = BD.parse_list_page(
        first, page([bd_record(session_id="a"), bd_record(session_id="b")], limit=2, has_more=True)
    )
    assert dict(parsed.next_request.params)["offset"] == "2"
    last = BD.parse_list_page(parsed.next_request, page([bd_record(session_id="c")], offset=2, limit=2))
    assert last.next_request is None


def test_bright_data_pagination_that_does_not_advance_is_an_error():
    first = BD.list_request(SessionQuery(), page_size=2)
    body = page([bd_record()], has_more=True)
    body["pagination"]["next_offset"] = 0
    with pytest.raises(ResponseShapeError, match="does not advance"):
        BD.parse_list_page(first, body)


def test_bright_data_single_session_is_unwrapped():
    assert BD.parse_session_body({"session": bd_record()}).session_id == "a1"
    with pytest.raises(ResponseShapeError, match="no 'session' key"):
        BD.parse_session_body(bd_record())


def test_ids_are_quoted_into_one_path_segment():
    assert BD.get_request("a/../b?c#d %").path == "/browser_sessions/a%2F..%2Fb%3Fc%23d%20%25"
    assert CF.get_request("x/y").path == "/accounts/acc%2F1/browser-rendering/devtools/session/x%2Fy"


@pytest.mark.parametrize("session_id", [".", ".."])
def test_dot_segment_ids_are_refused_naming_the_parameter(session_id):
    for build in (BD.get_request, CF.get_request, CF.close_request):
        with pytest.raises(InvalidQueryError, match="'session_id'"):
            build(session_id)
    with pytest.raises(InvalidQueryError, match="'account_id'"):
        CloudflarePlatform(account_id=session_id)


def cf_record(**overrides):
    record = {"sessionId": "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e", "startTime": 1765910021000}
    record.update(overrides)
    return record


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({}, SessionStatus.RUNNING, None),
        ({"endTime": 0, "closeReason": ""}, SessionStatus.RUNNING, None),
        ({"endTime": None}, SessionStatus.RUNNING, None),
        ({"endTime": 1765910081000, "closeReason": 1}, SessionStatus.FINISHED, "NormalClosure"),
        ({"endTime": 1765910081000, "closeReason": "2"}, SessionStatus.FINISHED, "BrowserIdle"),
        (
            {"endTime": 1765910081000, "closeReasonText": "BrowserIdle", "closeReason": 2.0},
            SessionStatus.FINISHED,
            "BrowserIdle",
        ),
        ({"endTime": 1765910081000}, SessionStatus.FINISHED, None),
        ({"closeReason": 5, "closeReasonText": "ChromiumCrashed"}, SessionStatus.FAILED, "ChromiumCrashed"),
        ({"closeReason": "SessionEvicted"}, SessionStatus.FAILED, "SessionEvicted"),
    ],
)
def test_cloudflare_running_versus_ended(overrides, status, reason):
    session = parse_cf(cf_record(**overrides))
    assert session.status is status
    assert session.close_reason == reason
    if status is SessionStatus.FAILED:
        assert session.error_message == reason


def test_cloudflare_times_are_epoch_milliseconds():
    session = parse_cf(cf_record(endTime=1765910081500, closeReason=1))
    assert session.started_at.isoformat() == "2025-12-16T18:33:41+00:00"
    assert session.duration == pytest.approx(60.5)


def test_cloudflare_reference_example_with_zero_placeholders_parses():
    example = {
        "sessionId": "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e",
        "closeReason": "closeReason",
        "closeReasonText": "closeReasonText",
        "connectionEndTime": 0,
        "connectionId": "connectionId",
        "connectionStartTime": 0,
        "devtoolsFrontendUrl": "devtoolsFrontendUrl",
        "endTime": 0,
        "lastUpdated": 0,
        "startTime": 0,
        "webSocketDebuggerUrl": "webSocketDebuggerUrl",
    }
    session = parse_cf(example)
    assert session.started_at is None  # 0 is a placeholder, not 1970


def test_cloudflare_accepts_bare_and_enveloped_bodies():
    request = CF.list_request(SessionQuery(), page_size=200)
    assert len(CF.parse_list_page(request, [cf_record()]).sessions) == 1
    assert len(CF.parse_list_page(request, {"success": True, "result": [cf_record()]}).sessions) == 1
    assert CF.parse_session_body({"result": cf_record()}).session_id == cf_record()["sessionId"]
    assert CF.parse_session_body(None) is None
    assert CF.parse_session_body({"result": None}) is None


def test_cloudflare_short_page_is_the_last():
    request = CF.list_request(SessionQuery(), page_size=2)
    full = CF.parse_list_page(request, [cf_record(sessionId="a"), cf_record(sessionId="b")])
    assert dict(full.next_request.params) == {"limit": "2", "offset": "2"}
    assert CF.parse_list_page(full.next_request, [cf_record(sessionId="c")]).next_request is None


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (401, b'{"error": "Invalid credentials"}', AuthenticationError, "Invalid credentials"),
        (
            401,
            b'{"success": false, "errors": [{"code": 10000, "message": "Authentication error"}], "result": null}',
            AuthenticationError,
            "Authentication error (code 10000)",
        ),
        (404, b'{"error": "Session not found", "session_id": "x"}', NotFoundError, "Session not found"),
        (400, b'{"error": "Invalid request parameters", "details": "limit <= 100"}', BadRequestError, "limit <= 100"),
        (429, b'{"message": "slow down"}', RateLimitedError, "slow down"),
        (503, b"<html><body><h1>502 Bad Gateway</h1></body></html>", ServerError, "502 Bad Gateway"),
        (418, b"I'm a teapot", ApiError, "teapot"),
        (500, b"", ServerError, "(empty body)"),
    ],
)
def test_errors_name_platform_endpoint_status_and_api_text(status, body, error, text):
    request = ApiRequest("GET", "/browser_sessions", (("limit", "100"),))
    with pytest.raises(error) as excinfo:
        decode_response(BD, request, status=status, headers={"Retry-After": "2"}, body=body)
    message = str(excinfo.value)
    assert "Bright Data" in message
    assert "GET /browser_sessions" in message
    assert f"HTTP {status}" in message
    assert text in message
    assert "limit=" not in message  # never the query string


def test_malformed_json_is_a_retryable_malformed_response():
    request = ApiRequest("GET", "/browser_sessions")
    with pytest.raises(MalformedResponseError) as excinfo:
        decode_response(BD, request, status=200, headers={}, body=b'{"sessions": [')
    assert excinfo.value.retryable
    assert "not valid JSON" in str(excinfo.value)


def test_rate_limit_carries_retry_after():
    request = ApiRequest("GET", "/x")
    with pytest.raises(RateLimitedError) as excinfo:
        decode_response(CF, request, status=429, headers={"Retry-After": "1.5"}, body=b"{}")
    assert excinfo.value.retry_after == 1.5
    assert excinfo.value.retryable


@pytest.mark.parametrize(
    ("header", "seconds"), [("3", 3.0), ("0.25", 0.25), ("nonsense", None), (None, None), ("-4", 0.0)]
)
def test_retry_after_parsing(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date_in_the_past_means_now():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_error_text_is_shortened():
    assert len(api_error_text(b"x" * 5000)) <= 300


def test_walk_dedupes_caps_and_reports_truncation():
    walk = SessionWalk(BD, SessionQuery.build(status="finished"), max_results=3, page_size=2)
    request = walk.next_request()
    first = walk.consume_page(
        request, page([bd_record(session_id="a"), bd_record(session_id="b")], limit=2, has_more=True, total=9)
    )
    request = walk.next_request()
    # "b" shifted onto the second page because a session started while paging.
    second = walk.consume_page(
        request,
        page(
            [bd_record(session_id="b"), bd_record(session_id="c"), bd_record(session_id="d")],
            offset=2,
            limit=2,
            has_more=True,
            total=10,
        ),
    )
    assert [s.session_id for s in first + second] == ["a", "b", "c"]
    assert walk.next_request() is None
    assert walk.stats.duplicates == 1
    assert walk.stats.truncated
    assert "stopped at max_results=3" in walk.describe()


def test_walk_applies_unpushed_filters_locally():
    walk = SessionWalk(BD, SessionQuery.build(min_bandwidth=1000), page_size=100)
    got = walk.consume_page(
        walk.next_request(), page([bd_record(session_id="a", bandwidth=10), bd_record(session_id="b")])
    )
    assert [s.session_id for s in got] == ["b"]
    assert "applied locally only [min_bandwidth]" in walk.describe()


def test_walk_rejects_a_filter_the_platform_cannot_honour():
    with pytest.raises(Exception, match="not supported on Cloudflare"):
        SessionWalk(CF, SessionQuery.build(api_name="zone"))


def test_walk_sorts_cloudflare_locally_after_the_last_page():
    walk = SessionWalk(CF, SessionQuery.build(sort="timestamp", order="asc"), page_size=2)
    held = walk.consume_page(
        walk.next_request(), [cf_record(sessionId="b", startTime=2000), cf_record(sessionId="a", startTime=3000)]
    )
    assert held == []
    last = walk.consume_page(walk.next_request(), [cf_record(sessionId="c", startTime=1000)])
    assert [s.session_id for s in last] == ["c", "b", "a"]


def test_walk_rejects_bad_max_results_and_page_size():
    with pytest.raises(Exception, match="max_results"):
        SessionWalk(BD, SessionQuery(), max_results=0)
    with pytest.raises(Exception, match="page_size"):
        SessionWalk(BD, SessionQuery(), page_size=101)


def test_seed_example_body_decodes():
    body = json.dumps(page([bd_record()], has_more=False))
    request = BD.list_request(SessionQuery(), page_size=100)
    payload = decode_response(BD, request, status=200, headers={}, body=body.encode())
    assert BD.parse_list_page(request, payload).sessions[0].session_id == "a1"
