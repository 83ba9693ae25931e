"""The walk's bounds and the parsers' leniency, as pure functions: repeated pages, the page bound, odd values."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_browsersessions.exceptions import (
    MAX_ERROR_MESSAGE_CHARS,
    InvalidQueryError,
    MalformedResponseError,
    RateLimitedError,
    ServerError,
    WalkLimitError,
)
from airflow_provider_browsersessions.platforms.base import (
    DEFAULT_MAX_PAGES,
    MAX_SESSION_ID_CHARS,
    ResponseShapeError,
    SessionWalk,
    decode_response,
)
from airflow_provider_browsersessions.platforms.brightdata import BrightDataPlatform
from airflow_provider_browsersessions.platforms.brightdata import parse_session as parse_bd
from airflow_provider_browsersessions.platforms.cloudflare import CloudflarePlatform
from airflow_provider_browsersessions.sessions import (
    MAX_RAW_JSON_CHARS,
    MAX_TEXT_CHARS,
    BrowserSession,
    SessionQuery,
    SessionStatus,
)

BD = BrightDataPlatform()
CF = CloudflarePlatform(account_id="acc")
T0 = datetime(2025, 12, 16, 18, 0, 0, tzinfo=UTC)


def bd(index: int, **overrides):
    """Session ``s<index>``: a higher index started earlier (newest first is index order)."""
    started = (T0 - timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {"session_id": f"s{index}", "status": "finished", "timestamp": started, "duration": 1.0}
    record.update(overrides)
    return record


def bd_page(records, *, offset, limit, has_more=True):
    return {
        "sessions": records,
        "pagination": {"has_more": has_more, "next_offset": offset + limit if has_more else None},
    }


def cf(index: int):
    return {"sessionId": f"c{index}", "startTime": 1765910000000 + index}


def walk_pages(walk, pages):
    """Feed pages in order; return the ids handed out."""
    handed_out = []
    for payload in pages:
        handed_out += [s.session_id for s in walk.consume_page(walk.next_request(), payload)]
    return handed_out


# -- repeated pages ----------------------------------------------------------------------------------


def test_bright_data_answering_the_same_page_with_advancing_offsets_ends_at_the_second_page():
    walk = SessionWalk(BD, SessionQuery(), page_size=3)
    same = [bd(0), bd(1), bd(2)]
    walk.consume_page(walk.next_request(), bd_page(same, offset=0, limit=3))
    with pytest.raises(MalformedResponseError) as raised:
        walk.consume_page(walk.next_request(), bd_page(same, offset=3, limit=3))
    message = str(raised.value)
    assert "Bright Data" in message
    assert "pagination repeats itself" in message
    assert "page 2 (limit 3, offset 3)" in message
    assert "exactly the previous page's sessions" in message
    assert not raised.value.retryable


def test_cloudflare_answering_the_same_full_page_forever_ends_at_the_second_page():
    walk = SessionWalk(CF, SessionQuery(), page_size=2)
    walk.consume_page(walk.next_request(), [cf(0), cf(1)])
    with pytest.raises(MalformedResponseError, match=r"Cloudflare Browser Rendering.*pagination repeats itself"):
        walk.consume_page(walk.next_request(), [cf(0), cf(1)])


def test_a_second_page_in_a_row_of_only_sessions_already_handed_out_ends_the_walk():
    walk = SessionWalk(CF, SessionQuery(), page_size=2)
    walk_pages(walk, [[cf(0), cf(1)], [cf(2), cf(3)], [cf(3), cf(0)]])  # one such page: could be drift
    with pytest.raises(MalformedResponseError, match=r"already had \(2\), for the second page in a row"):
        walk.consume_page(walk.next_request(), [cf(1), cf(2)])
    assert walk.stats.pages == 4


def test_a_server_cycling_between_two_pages_is_stopped_at_the_second_repeated_page():
    walk = SessionWalk(BD, SessionQuery(), page_size=2)
    first, second = [bd(0), bd(1)], [bd(2), bd(3)]
    walk_pages(walk, [bd_page(first, offset=0, limit=2), bd_page(second, offset=2, limit=2)])
    walk.consume_page(walk.next_request(), bd_page(first, offset=4, limit=2))
    with pytest.raises(MalformedResponseError, match="second page in a row"):
        walk.consume_page(walk.next_request(), bd_page(second, offset=6, limit=2))


def test_a_whole_page_shift_then_progress_is_drift_not_a_repeat():
    """150 sessions started during one round trip (page size 2 here: a shift of 3): one stale page, then on."""
    walk = SessionWalk(CF, SessionQuery(), page_size=2)
    got = walk_pages(walk, [[cf(0), cf(1)], [cf(2), cf(3)], [cf(1), cf(2)], [cf(3), cf(4)], [cf(5)]])
    assert got == ["c0", "c1", "c2", "c3", "c4", "c5"]


def test_a_partial_shift_from_sessions_starting_while_paging_is_legitimate_drift():
    walk = SessionWalk(BD, SessionQuery(), page_size=4)
    # Two sessions start after page 1: page 2 begins with the last two of page 1, then two new ones.
    got = walk_pages(
        walk,
        [
            bd_page([bd(0), bd(1), bd(2), bd(3)], offset=0, limit=4),
            bd_page([bd(2), bd(3), bd(4), bd(5)], offset=4, limit=4),
            bd_page([bd(6)], offset=8, limit=4, has_more=False),
        ],
    )
    assert got == ["s0", "s1", "s2", "s3", "s4", "s5", "s6"]
    assert walk.stats.duplicates == 2


def test_a_page_shifted_by_more_than_a_page_of_new_sessions_is_not_a_repeat():
    """More sessions started than a page holds: the page holds sessions newer than the walk, not repeats."""
    walk = SessionWalk(BD, SessionQuery(), page_size=2)
    newer = [bd(-10), bd(-11)]  # started after the walk began (index < 0: later than s0)
    got = walk_pages(
        walk,
        [
            bd_page([bd(0), bd(1)], offset=0, limit=2),
            bd_page(newer, offset=2, limit=2),
            bd_page([bd(0), bd(1)], offset=4, limit=2, has_more=False),
        ],
    )
    assert got == ["s0", "s1"]  # nothing newer than the walk, nothing twice


def test_a_last_page_of_only_known_sessions_is_drift_at_the_end_not_a_repeat():
    walk = SessionWalk(CF, SessionQuery(), page_size=2)
    got = walk_pages(walk, [[cf(0), cf(1)], [cf(1)]])  # short: the last page, whatever it holds
    assert got == ["c0", "c1"]
    assert walk.next_request() is None


def test_ties_at_the_newest_start_are_told_apart_by_id():
    """Frozen clocks give many sessions one start time: new ones at that time are not repeats."""
    same_time = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
    walk = SessionWalk(BD, SessionQuery(), page_size=2)
    got = walk_pages(
        walk,
        [
            bd_page(
                [bd(0, timestamp=same_time, session_id="a"), bd(0, timestamp=same_time, session_id="b")],
                offset=0,
                limit=2,
            ),
            bd_page(
                [bd(0, timestamp=same_time, session_id="b"), bd(0, timestamp=same_time, session_id="c")],
                offset=2,
                limit=2,
            ),
        ],
    )
    assert got == ["a", "b", "c"]  # "b" again with a new tie: partial drift, not an error
    tie = [bd(0, timestamp=same_time, session_id=sid) for sid in ("c", "b")]
    walk.consume_page(walk.next_request(), bd_page(tie, offset=4, limit=2))  # known at the tie: once may be drift
    again = [bd(0, timestamp=same_time, session_id=sid) for sid in ("a", "b")]
    with pytest.raises(MalformedResponseError, match="second page in a row"):
        walk.consume_page(walk.next_request(), bd_page(again, offset=6, limit=2))


# -- the page bound ------------------------------------------------------------------------------------


def test_a_walk_fetches_at_most_max_pages_then_names_the_bound_and_the_extra():
    walk = SessionWalk(CF, SessionQuery(), page_size=2, max_pages=3)
    for page in range(3):
        walk.consume_page(walk.next_request(), [cf(2 * page), cf(2 * page + 1)])
    with pytest.raises(WalkLimitError) as raised:
        walk.next_request()  # a fourth page is never asked for
    message = str(raised.value)
    assert "did not end within 3 pages (6 sessions scanned, 6 matched)" in message
    assert "extra 'max_pages' (now 3, default 2,000)" in message
    assert "failed: no response" not in message


def test_the_default_page_bound_fits_the_largest_real_listing():
    walk = SessionWalk(BD, SessionQuery())
    assert walk.max_pages == DEFAULT_MAX_PAGES
    assert DEFAULT_MAX_PAGES * BD.max_page_size >= 100_000


def test_a_walk_that_ends_on_its_last_allowed_page_is_not_an_error():
    walk = SessionWalk(CF, SessionQuery(), page_size=2, max_pages=2)
    assert walk_pages(walk, [[cf(0), cf(1)], [cf(2)]]) == ["c0", "c1", "c2"]
    assert walk.next_request() is None


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_max_pages_must_be_a_positive_integer(bad):
    with pytest.raises(InvalidQueryError, match="max_pages"):
        SessionWalk(BD, SessionQuery(), max_pages=bad)


# -- values the provider does not know -----------------------------------------------------------------


def test_an_unknown_status_keeps_the_page_and_counts_as_not_ended():
    session = parse_bd(bd(0, status="paused"))
    assert session.status is SessionStatus.RUNNING
    assert not session.status.is_terminal()
    assert session.ended_at is None
    assert session.raw["status"] == "paused"


def test_odd_values_are_logged_once_per_field_and_listing_with_a_count(caplog):
    log = logging.getLogger("test.walk")
    walk = SessionWalk(BD, SessionQuery(), page_size=3, log=log)
    with caplog.at_level(logging.WARNING, logger="test.walk"):
        got = walk_pages(
            walk,
            [
                bd_page([bd(0, status="paused"), bd(1, status="paused"), bd(2, navigations="x")], offset=0, limit=3),
                bd_page([bd(3, status="queued"), bd(4, status="paused")], offset=3, limit=3, has_more=False),
            ],
        )
    assert len(got) == 5
    warnings = sorted(r.getMessage() for r in caplog.records)
    assert len(warnings) == 2
    assert "field 'navigations' not understood in 1 record(s) of this listing, e.g. session 's2'" in warnings[0]
    assert "field 'status' not understood in 4 record(s) of this listing" in warnings[1]
    assert "e.g. session 's0' has status 'paused'" in warnings[1]
    assert "kept as running (not ended)" in warnings[1]


def test_a_running_filter_keeps_a_session_of_unknown_status_as_running():
    walk = SessionWalk(BD, SessionQuery.build(status=["running", "failed"]), page_size=3)
    got = walk_pages(walk, [bd_page([bd(0, status="hibernating"), bd(1)], offset=0, limit=3, has_more=False)])
    assert got == ["s0"]


@pytest.mark.parametrize(("value", "kept"), [(12.0, 12), (12, 12), (None, None)])
def test_a_whole_bandwidth_is_kept(value, kept):
    assert parse_bd(bd(0, bandwidth=value)).bandwidth == kept


@pytest.mark.parametrize("value", ["12 kB", 12.5, True, [1], {"bytes": 1}])
def test_a_bandwidth_that_is_not_a_whole_number_becomes_none_with_a_warning(value, caplog):
    page = BD.parse_list_page(
        BD.list_request(SessionQuery(), page_size=5),
        bd_page([bd(0, bandwidth=value)], offset=0, limit=5, has_more=False),
    )
    assert page.sessions[0].bandwidth is None
    assert [(odd.session_id, odd.field) for odd in page.odd_values] == [("s0", "bandwidth")]


def test_a_single_read_logs_its_odd_values(caplog):
    with caplog.at_level(logging.WARNING):
        session = BD.parse_session_body({"session": bd(0, status="archived")})
    assert session.status is SessionStatus.RUNNING
    assert "has status 'archived'" in caplog.text


@pytest.mark.parametrize(
    ("record", "complaint"),
    [
        ("not an object", "should be a JSON object"),
        ({"status": "running"}, "no session_id"),
        ({"session_id": "", "status": "running"}, "no session_id"),
        ({"session_id": "x" * (MAX_SESSION_ID_CHARS + 1)}, "1,025 characters"),
    ],
)
def test_records_that_are_not_objects_or_lack_an_id_still_fail_the_page(record, complaint):
    with pytest.raises(ResponseShapeError, match=complaint):
        parse_bd(record)


def test_an_odd_value_quoted_in_a_log_line_is_cut():
    page = BD.parse_list_page(
        BD.list_request(SessionQuery(), page_size=5),
        bd_page([bd(0, status="z" * 100_000)], offset=0, limit=5, has_more=False),
    )
    assert len(page.odd_values[0].describe()) < 200


# -- bodies and error texts ----------------------------------------------------------------------------


def decode(platform, *, status, body, headers=None):
    return decode_response(
        platform, platform.get_request("abc"), status=status, headers=headers or {}, body=body, secrets=("sekret",)
    )


@pytest.mark.parametrize("body", [b"", b"   ", b"\r\n"])
def test_an_empty_2xx_body_is_a_retryable_malformed_response_never_null(body):
    with pytest.raises(MalformedResponseError, match="the body is empty") as raised:
        decode(CF, status=200, body=body)
    assert raised.value.retryable


def test_json_null_is_still_a_payload():
    assert decode(CF, status=200, body=b"null") is None


def test_bright_data_429_reason_headers_replace_an_empty_body():
    headers = {"x-brd-error": "too_many_requests", "x-brd-err-msg": "Rate limit: sekret exceeded"}
    with pytest.raises(RateLimitedError) as raised:
        decode(BD, status=429, body=b"", headers=headers)
    assert raised.value.api_message == "x-brd-err-msg: Rate limit: *** exceeded; x-brd-error: too_many_requests"
    assert "(empty body)" not in str(raised.value)


def test_bright_data_429_reason_headers_come_before_the_body_text_and_are_cut():
    headers = {"x-brd-err-msg": "m" * 10_000}
    with pytest.raises(RateLimitedError) as raised:
        decode(BD, status=429, body=b'{"error": "Too many requests"}', headers=headers)
    assert raised.value.api_message.startswith("x-brd-err-msg: mmm")
    assert len(raised.value.api_message) == 300


def test_cloudflare_ignores_bright_data_reason_headers():
    with pytest.raises(RateLimitedError) as raised:
        decode(CF, status=429, body=b"", headers={"x-brd-error": "x"})
    assert raised.value.api_message == "(empty body)"


def test_every_api_error_message_is_cut_whatever_built_it():
    error = MalformedResponseError(platform="P", method="GET", path="/" + "p" * 5000, status=200, message="m" * 10**6)
    assert len(error.api_message) == MAX_ERROR_MESSAGE_CHARS
    assert len(str(error)) < MAX_ERROR_MESSAGE_CHARS + 300


def test_a_huge_error_body_is_read_only_at_its_start():
    body = b"<html>" + b"x" * (50 * 1024 * 1024)
    with pytest.raises(ServerError) as raised:
        decode(BD, status=502, body=body)
    assert len(str(raised.value)) < 500


# -- string caps in the model --------------------------------------------------------------------------


def test_session_texts_are_cut_to_the_documented_size_with_a_marker():
    huge = "e" * 10_000_000
    session = BrowserSession(
        provider="brightdata", session_id="a", status=SessionStatus.FAILED, error_message=huge, target_url=huge
    )
    assert len(session.error_message) == MAX_TEXT_CHARS
    assert session.error_message.endswith("…")
    assert len(json.dumps(session.to_dict())) < 3 * MAX_TEXT_CHARS


def test_raw_in_xcom_has_its_strings_cut_and_a_huge_record_replaced_by_a_note():
    small = BrowserSession(
        provider="brightdata", session_id="a", status=SessionStatus.RUNNING, raw={"note": "n" * 5000}
    )
    assert len(small.to_dict(include_raw=True)["raw"]["note"]) == MAX_TEXT_CHARS
    huge = BrowserSession(
        provider="brightdata",
        session_id="a",
        status=SessionStatus.RUNNING,
        raw={f"k{i}": "v" * 100 for i in range(10_000)},
    )
    raw = huge.to_dict(include_raw=True)["raw"]
    assert list(raw) == ["omitted"]
    assert f"more than {MAX_RAW_JSON_CHARS:,}" in raw["omitted"]
    assert "raw" not in huge.to_dict()  # left out unless asked for
