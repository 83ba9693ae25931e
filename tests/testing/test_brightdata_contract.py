"""The emulator's Bright Data API in raw HTTP, against the notes in shared/api: body shapes, errors, paging."""

from __future__ import annotations

import re

import pytest
import requests

from airflow_provider_browsersessions.testing import DEFAULT_BRIGHTDATA_API_KEY, Emulator

AUTH = {"Authorization": f"Bearer {DEFAULT_BRIGHTDATA_API_KEY}"}
SESSION_KEYS = {
    "session_id",
    "api_name",
    "status",
    "target_url",
    "end_url",
    "navigations",
    "timestamp",
    "duration",
    "captcha",
    "bandwidth",
    "error",
}
TOTAL = 257  # the notes' seed example: count 3, total 257
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def emulator():
    # A frozen clock: the data set does not change while a test pages through it.
    with Emulator(speed=0) as emulator:
        emulator.seed_sessions(platform="brightdata", count=TOTAL, seed=5)
        yield emulator


def get(emulator, path, *, headers=AUTH, **params):
    return requests.get(f"{emulator.url}{path}", params=params, headers=headers, timeout=10)


def records(emulator):
    return emulator.sessions("brightdata")


def walk(emulator, **params):
    """Every page of a listing, following ``next_offset`` as a client would."""
    sessions, offset = [], 0
    while offset is not None:
        body = get(emulator, "/browser_sessions", offset=offset, **params).json()
        sessions += body["sessions"]
        offset = body["pagination"]["next_offset"]
    return sessions


def test_list_body_has_the_documented_shape(emulator):
    body = get(emulator, "/browser_sessions").json()
    assert set(body) == {"sessions", "count", "total", "pagination"}
    assert body["count"] == len(body["sessions"]) == 50  # the documented default limit
    assert body["total"] == TOTAL
    assert body["pagination"] == {"offset": 0, "limit": 50, "has_more": True, "next_offset": 50}
    assert type(body["pagination"]["has_more"]) is bool
    for session in body["sessions"]:
        assert set(session) == SESSION_KEYS


def test_session_fields_have_the_documented_types(emulator):
    for session in walk(emulator, limit=100):
        assert isinstance(session["session_id"], str)
        assert isinstance(session["api_name"], str)
        assert session["status"] in ("running", "finished", "failed")
        assert ISO_Z.match(session["timestamp"]), session["timestamp"]
        assert type(session["navigations"]) is int
        assert type(session["bandwidth"]) is int
        assert session["captcha"] in ("solved", "none", "failed", "detected")
        if session["status"] == "running":
            assert session["duration"] is None
        else:
            assert isinstance(session["duration"], int | float)
            assert session["duration"] >= 0
            assert isinstance(session["target_url"], str)
            assert isinstance(session["end_url"], str)


def test_a_running_session_looks_as_documented(emulator):
    running = [r for r in records(emulator) if r["status"] == "running"]
    assert running, "the seeded data has running sessions"
    assert all(
        (r["target_url"], r["end_url"], r["navigations"], r["duration"], r["captcha"], r["bandwidth"], r["error"])
        == (None, None, 0, None, "none", 0, None)
        for r in running
    )


def test_failed_sessions_carry_an_error_object_and_finished_ones_none(emulator):
    statuses = set()
    for record in records(emulator):
        statuses.add(record["status"])
        if record["status"] == "failed":
            assert set(record["error"]) == {"code", "message"}
            assert all(isinstance(value, str) for value in record["error"].values())
        elif record["status"] == "finished":
            assert record["error"] is None
    assert statuses == {"running", "finished", "failed"}


def test_paging_walks_every_session_once_and_ends_with_a_null_next_offset(emulator):
    seen, offset, pages = [], 0, 0
    while offset is not None:
        body = get(emulator, "/browser_sessions", limit=100, offset=offset).json()
        seen += [s["session_id"] for s in body["sessions"]]
        offset, pages = body["pagination"]["next_offset"], pages + 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == TOTAL
    assert body["pagination"]["has_more"] is False


@pytest.mark.parametrize(
    ("limit", "offset", "count", "next_offset"),
    [
        (1, 0, 1, 1),
        (100, 0, 100, 100),  # the documented maximum is accepted
        (100, 157, 100, None),  # a page that ends exactly on the last session
        (100, 200, 57, None),  # a short last page
        (50, 256, 1, None),
        (50, TOTAL, 0, None),  # offset == total: an empty page, not an error
        (50, 10_000, 0, None),
    ],
)
def test_paging_edges(emulator, limit, offset, count, next_offset):
    body = get(emulator, "/browser_sessions", limit=limit, offset=offset).json()
    assert (body["count"], len(body["sessions"]), body["total"]) == (count, count, TOTAL)
    assert body["pagination"] == {
        "offset": offset,
        "limit": limit,
        "has_more": next_offset is not None,
        "next_offset": next_offset,
    }


def test_an_empty_result_is_documented_shape(emulator):
    body = get(emulator, "/browser_sessions", api_name="no_such_zone").json()
    assert body == {
        "sessions": [],
        "count": 0,
        "total": 0,
        "pagination": {"offset": 0, "limit": 50, "has_more": False, "next_offset": None},
    }


@pytest.mark.parametrize("status", ["running", "finished", "failed"])
def test_status_filter(emulator, status):
    expected = {r["session_id"] for r in records(emulator) if r["status"] == status}
    listed = walk(emulator, status=status, limit=100)
    assert expected
    assert {s["session_id"] for s in listed} == expected
    assert {s["status"] for s in listed} == {status}


def test_status_all_is_the_default(emulator):
    explicit = get(emulator, "/browser_sessions", status="all", limit=100).json()
    default = get(emulator, "/browser_sessions", limit=100).json()
    assert explicit == default
    assert explicit["total"] == TOTAL


def test_zone_filter(emulator):
    zones = {r["api_name"] for r in records(emulator)}
    assert len(zones) > 1
    for zone in zones:
        expected = {r["session_id"] for r in records(emulator) if r["api_name"] == zone}
        assert {s["session_id"] for s in walk(emulator, api_name=zone, limit=100)} == expected


def test_target_url_matches_a_domain_case_insensitively(emulator):
    ended = next(r for r in records(emulator) if r["target_url"])
    domain = ended["target_url"].split("//")[1]
    expected = {r["session_id"] for r in records(emulator) if domain in (r["target_url"] or "")}
    listed = walk(emulator, target_url=domain.upper(), limit=100)
    assert ended["session_id"] in {s["session_id"] for s in listed}
    assert {s["session_id"] for s in listed} == expected


def test_end_url_filter(emulator):
    ended = next(r for r in records(emulator) if r["end_url"] and r["end_url"].count("/") > 2)
    expected = {r["session_id"] for r in records(emulator) if ended["end_url"] in (r["end_url"] or "")}
    listed = walk(emulator, end_url=ended["end_url"], limit=100)
    assert ended["session_id"] in {s["session_id"] for s in listed}
    assert {s["session_id"] for s in listed} == expected
    assert len(listed) < TOTAL


def test_filters_combine(emulator):
    zone = records(emulator)[0]["api_name"]
    expected = {r["session_id"] for r in records(emulator) if r["api_name"] == zone and r["status"] == "failed"}
    listed = walk(emulator, api_name=zone, status="failed", limit=100)
    assert expected
    assert {s["session_id"] for s in listed} == expected


def test_date_bounds_select_on_the_start_timestamp_inclusively(emulator):
    ordered = sorted(r["timestamp"] for r in records(emulator))
    low, high = ordered[50], ordered[150]
    body = get(emulator, "/browser_sessions", start_date=low, end_date=high, limit=100, sort="timestamp").json()
    assert body["total"] == sum(1 for t in ordered if low <= t <= high)
    assert all(low <= s["timestamp"] <= high for s in body["sessions"])
    # The notes leave inclusivity undocumented; the emulator includes a session that starts on a bound.
    assert {low, high} <= {s["timestamp"] for s in walk(emulator, start_date=low, end_date=high, limit=100)}


def test_each_date_bound_alone(emulator):
    ordered = sorted(r["timestamp"] for r in records(emulator))
    middle = ordered[100]
    after = get(emulator, "/browser_sessions", start_date=middle).json()["total"]
    before = get(emulator, "/browser_sessions", end_date=middle).json()["total"]
    assert after == sum(1 for t in ordered if t >= middle)
    assert before == sum(1 for t in ordered if t <= middle)


@pytest.mark.parametrize("field", ["timestamp", "duration", "bandwidth"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_and_order(emulator, field, order):
    body = get(emulator, "/browser_sessions", status="finished", sort=field, order=order, limit=100).json()
    values = [s[field] for s in body["sessions"]]
    assert len(set(values)) > 1
    assert values == sorted(values, reverse=order == "desc")


@pytest.mark.parametrize("field", ["timestamp", "duration", "bandwidth"])
def test_a_sorted_walk_is_in_order_across_page_boundaries(emulator, field):
    # An odd page size, so page boundaries fall in different places than in the other tests.
    listed = walk(emulator, status="finished", sort=field, order="asc", limit=37)
    values = [s[field] for s in listed]
    assert (
        len(listed)
        == len({s["session_id"] for s in listed})
        == sum(1 for r in records(emulator) if r["status"] == "finished")
    )
    assert values == sorted(values)


def test_default_order_is_newest_first(emulator):
    stamps = [s["timestamp"] for s in walk(emulator, limit=100)]
    assert len(stamps) == TOTAL
    assert stamps == sorted(stamps, reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 101},
        {"limit": 0},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": "x"},
        {"status": "done"},
        {"sort": "name"},
        {"order": "up"},
        {"start_date": "yesterday"},
        {"end_date": "2025-13-01"},
    ],
)
def test_invalid_parameters_answer_400_in_bright_datas_shape(emulator, params):
    response = get(emulator, "/browser_sessions", **params)
    assert response.status_code == 400
    body = response.json()
    # The documented body is {"error": "Invalid request parameters"}; "details" is the emulator's addition.
    assert set(body) == {"error", "details"}
    assert body["error"] == "Invalid request parameters"
    assert next(iter(params)) in body["details"]


@pytest.mark.parametrize("path", ["/browser_sessions", "/browser_sessions/some-id"])
def test_credentials_missing_or_wrong_answer_401(emulator, path):
    missing = get(emulator, path, headers={})
    wrong = get(emulator, path, headers={"Authorization": "Bearer nope"})
    not_bearer = get(emulator, path, headers={"Authorization": DEFAULT_BRIGHTDATA_API_KEY})
    assert (missing.status_code, missing.json()) == (401, {"error": "Credentials are missing"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid credentials"})
    assert (not_bearer.status_code, not_bearer.json()) == (401, {"error": "Invalid credentials"})


@pytest.mark.parametrize("status", ["running", "finished", "failed"])
def test_read_one_is_wrapped_in_session(emulator, status):
    record = next(r for r in records(emulator) if r["status"] == status)
    response = get(emulator, f"/browser_sessions/{record['session_id']}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"session": record}


def test_read_unknown_and_malformed_ids(emulator):
    unknown = get(emulator, "/browser_sessions/doesnotexist")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Session not found", "session_id": "doesnotexist"})
    bad = get(emulator, "/browser_sessions/has%20space")
    assert (bad.status_code, bad.json()) == (400, {"error": "Invalid session_id format"})


def test_only_get_is_served(emulator):
    response = requests.post(f"{emulator.url}/browser_sessions", headers=AUTH, timeout=10)
    assert response.status_code == 405
    assert response.json() == {"error": "Method not allowed"}
