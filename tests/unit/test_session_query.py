"""SessionQuery: validation names the parameter and what it allows; matching is what the docs say."""

from __future__ import annotations

import json

import pendulum
import pytest

from airflow_provider_browsersessions.exceptions import InvalidQueryError
from airflow_provider_browsersessions.sessions import (
    RECORD_FIELDS,
    BrowserSession,
    SessionQuery,
    SessionStatus,
    utc_iso,
)


def make(**overrides):
    fields = {
        "provider": "brightdata",
        "session_id": "s1",
        "status": SessionStatus.FINISHED,
        "started_at": pendulum.datetime(2025, 12, 16, 18, 0, tz="UTC"),
        "duration": 120.0,
        "api_name": "zone1",
        "captcha": "solved",
        "bandwidth": 5000,
    }
    fields.update(overrides)
    return BrowserSession(**fields)


@pytest.mark.parametrize(
    ("filters", "parameter", "allowed"),
    [
        ({"status": "done"}, "status", "running, finished, failed"),
        ({"status": []}, "status", "at least one value"),
        ({"captcha": "maybe"}, "captcha", "solved, none, failed, detected"),
        ({"sort": "size"}, "sort", "timestamp, duration, bandwidth"),
        ({"order": "up"}, "order", "asc, desc"),
        ({"started_after": "yesterday-ish"}, "started_after", "ISO-8601"),
        ({"started_after": 12}, "started_after", "datetime or an ISO-8601 string"),
        ({"min_duration": -1}, "min_duration", "non-negative"),
        ({"min_duration": float("nan")}, "min_duration", "finite"),
        ({"min_duration": 10**400}, "min_duration", "finite"),  # float() of it overflows
        ({"min_bandwidth": 10**400}, "min_bandwidth", "finite"),
        ({"min_bandwidth": 1.5}, "min_bandwidth", "integer"),
        ({"has_error": "maybe"}, "has_error", "True, False or None"),
        ({"api_name": "   "}, "api_name", "non-empty string"),
        ({"colour": "red"}, "colour", "a known filter"),
        ({"where": "x > 1"}, "where", "callable"),
    ],
)
def test_invalid_values_name_the_parameter_and_what_is_allowed(filters, parameter, allowed):
    with pytest.raises(InvalidQueryError) as excinfo:
        SessionQuery.build(**filters)
    assert excinfo.value.parameter == parameter
    assert allowed in str(excinfo.value)
    assert parameter in str(excinfo.value)


def test_inverted_time_window_is_rejected():
    with pytest.raises(InvalidQueryError, match="started_after"):
        SessionQuery.build(started_after="2025-12-02T00:00:00Z", started_before="2025-12-01T00:00:00Z")


def test_inverted_duration_bounds_are_rejected():
    with pytest.raises(InvalidQueryError, match="min_duration"):
        SessionQuery.build(min_duration=10, max_duration=5)


def test_rendered_template_text_is_understood():
    query = SessionQuery.build(
        status="failed, finished", min_duration="30", has_error="true", captcha="solved", api_name=""
    )
    assert query.status == {SessionStatus.FAILED, SessionStatus.FINISHED}
    assert query.min_duration == 30.0
    assert query.has_error is True
    assert query.api_name is None  # an empty rendered value means "no filter"


def test_naive_and_offset_datetimes_become_utc():
    query = SessionQuery.build(started_after="2025-12-01T02:00:00+02:00", started_before="2025-12-02 00:00:00")
    assert query.started_after == pendulum.datetime(2025, 12, 1, 0, 0, tz="UTC")
    assert query.started_before == pendulum.datetime(2025, 12, 2, 0, 0, tz="UTC")


def test_times_are_written_in_utc_with_a_z_and_four_digit_years():
    paris = pendulum.datetime(2025, 12, 1, 10, 30, 5, 250000, tz="Europe/Paris")
    assert utc_iso(paris) == "2025-12-01T09:30:05.250000Z"
    assert utc_iso(paris, whole_seconds=True) == "2025-12-01T09:30:05Z"
    assert utc_iso(pendulum.datetime(999, 1, 2, tz="UTC"), whole_seconds=True) == "0999-01-02T00:00:00Z"
    assert utc_iso(None) is None


def test_to_dict_round_trips_through_build():
    query = SessionQuery.build(status=["failed"], started_after="2025-12-01T00:00:00Z", sort="duration", order="asc")
    assert SessionQuery.build(**query.to_dict()) == query
    assert query.to_dict()["started_after"] == "2025-12-01T00:00:00Z"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "finished"}, True),
        ({"status": ["failed", "running"]}, False),
        ({"api_name": "zone1"}, True),
        ({"api_name": "zone2"}, False),
        ({"started_after": "2025-12-16T18:00:00Z"}, True),  # inclusive bound
        ({"started_after": "2025-12-16T18:00:01Z"}, False),
        ({"started_before": "2025-12-16T18:00:00Z"}, True),
        ({"min_duration": 120}, True),
        ({"max_duration": 119.9}, False),
        ({"min_bandwidth": 5001}, False),
        ({"captcha": ["solved", "failed"]}, True),
        ({"has_error": True}, False),
        ({"has_error": False}, True),
        ({"where": lambda s: s.bandwidth > 1000}, True),
        ({"where": lambda s: s.bandwidth > 10_000}, False),
    ],
)
def test_matches_each_filter(filters, expected):
    assert SessionQuery.build(**filters).matches(make()) is expected


def test_duration_filters_never_match_a_session_without_duration():
    running = make(status=SessionStatus.RUNNING, duration=None)
    assert not SessionQuery.build(max_duration=1000).matches(running)


def test_skip_leaves_server_judged_filters_alone():
    query = SessionQuery.build(target_url="example.com")
    session = make(target_url="https://www.EXAMPLE.com/x")
    assert query.matches(session)
    assert query.matches(make(target_url="https://other.org"), skip={"target_url"})
    assert not query.matches(make(target_url="https://other.org"))


def test_to_dict_is_json_safe_and_hides_url_secrets():
    session = make(raw={"webSocketDebuggerUrl": "wss://x/devtools?token=SECRET", "other": 1})
    data = session.to_dict(include_raw=True)
    assert data["started_at"] == "2025-12-16T18:00:00Z"
    assert data["status"] == "finished"
    assert "SECRET" not in str(data)
    assert data["raw"]["webSocketDebuggerUrl"] == "wss://x/devtools"
    assert "SECRET" not in repr(session)
    assert BrowserSession.from_dict(session.to_dict()) == session


def test_every_field_goes_to_xcom_and_back():
    session = make(
        ended_at=pendulum.datetime(2025, 12, 16, 18, 2, tz="UTC"),
        target_url="https://example.com/a",
        end_url="https://example.com/b",
        navigations=3,
        error_code="E1",
        error_message="boom",
        close_reason="2",
    )
    data = session.to_dict()
    assert tuple(data) == RECORD_FIELDS
    assert json.loads(json.dumps(data)) == data
    assert data["ended_at"] == "2025-12-16T18:02:00Z"
    assert BrowserSession.from_dict(data) == session
