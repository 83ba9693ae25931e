"""The emulator's Bright Data API in raw HTTP, against the notes in shared/api: body shapes, errors, paging."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def emulator():
    # A frozen clock: the data set does not change while a test pages through it.
    with Emulator(speed=0) as emulator:
        emulator.seed_sessions(platform="brightdata", count=257, seed=5)
        yield emulator


def get(emulator, path, *, headers=AUTH, **params):
    return requests.get(f"{emulator.url}{path}", params=params, headers=headers, timeout=10)


def records(emulator):
    return emulator.sessions("brightdata")


def test_list_body_has_the_documented_shape(emulator):
    body = get(emulator, "/browser_sessions").json()
    assert set(body) == {"sessions", "count", "total", "pagination"}
    assert body["count"] == len(body["sessions"]) == 50  # the documented default limit
    assert body["total"] == 257
    assert body["pagination"] == {"offset": 0, "limit": 50, "has_more": True, "next_offset": 50}
    for session in body["sessions"]:
        assert set(session) == SESSION_KEYS
        assert session["timestamp"].endswith("Z")
        assert session["status"] in ("running", "finished", "failed")


def test_a_running_session_looks_as_documented(emulator):
    running = [r for r in records(emulator) if r["status"] == "running"]
    assert running, "the seeded data has running sessions"
    assert all(
        (r["target_url"], r["end_url"], r["navigations"], r["duration"], r["captcha"], r["bandwidth"], r["error"])
        == (None, None, 0, None, "none", 0, None)
        for r in running
    )


def test_failed_sessions_carry_an_error_object_and_finished_ones_none(emulator):
    for record in records(emulator):
        if record["status"] == "failed":
            assert set(record["error"]) == {"code", "message"}
        elif record["status"] == "finished":
            assert record["error"] is None


def test_paging_walks_every_session_once_and_ends_with_a_null_next_offset(emulator):
    seen, offset, pages = [], 0, 0
    while offset is not None:
        body = get(emulator, "/browser_sessions", limit=100, offset=offset).json()
        seen += [s["session_id"] for s in body["sessions"]]
        offset, pages = body["pagination"]["next_offset"], pages + 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 257
    assert body["pagination"]["has_more"] is False


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
    body = get(emulator, "/browser_sessions", status=status, limit=100).json()
    expected = sum(1 for r in records(emulator) if r["status"] == status)
    assert body["total"] == expected
    assert {s["status"] for s in body["sessions"]} <= {status}


def test_zone_and_url_filters(emulator):
    zone = records(emulator)[0]["api_name"]
    body = get(emulator, "/browser_sessions", api_name=zone, limit=100).json()
    assert body["total"] == sum(1 for r in records(emulator) if r["api_name"] == zone)
    ended = next(r for r in records(emulator) if r["target_url"])
    domain = ended["target_url"].split("//")[1]
    body = get(emulator, "/browser_sessions", target_url=domain.upper(), limit=100).json()
    assert ended["session_id"] in {s["session_id"] for s in body["sessions"]}
    assert all(domain in s["target_url"] for s in body["sessions"])


def test_date_bounds_select_on_the_start_timestamp(emulator):
    ordered = sorted(r["timestamp"] for r in records(emulator))
    low, high = ordered[50], ordered[150]
    body = get(emulator, "/browser_sessions", start_date=low, end_date=high, limit=100, sort="timestamp").json()
    assert body["total"] == sum(1 for t in ordered if low <= t <= high)
    assert all(low <= s["timestamp"] <= high for s in body["sessions"])


@pytest.mark.parametrize("field", ["timestamp", "duration", "bandwidth"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_and_order(emulator, field, order):
    body = get(emulator, "/browser_sessions", status="finished", sort=field, order=order, limit=100).json()
    values = [s[field] for s in body["sessions"]]
    assert values == sorted(values, reverse=order == "desc")


def test_default_order_is_newest_first(emulator):
    stamps = [s["timestamp"] for s in get(emulator, "/browser_sessions", limit=100).json()["sessions"]]
    assert stamps == sorted(stamps, reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 101},
        {"limit": 0},
        {"limit": "ten"},
        {"offset": -1},
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
    assert response.json()["error"] == "Invalid request parameters"
    assert next(iter(params)) in response.json()["details"]


def test_credentials_missing_or_wrong_answer_401(emulator):
    missing = get(emulator, "/browser_sessions", headers={})
    wrong = get(emulator, "/browser_sessions", headers={"Authorization": "Bearer nope"})
    assert (missing.status_code, missing.json()) == (401, {"error": "Credentials are missing"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid credentials"})


def test_read_one_is_wrapped_in_session(emulator):
    record = records(emulator)[7]
    body = get(emulator, f"/browser_sessions/{record['session_id']}").json()
    assert body == {"session": record}


def test_read_unknown_and_malformed_ids(emulator):
    unknown = get(emulator, "/browser_sessions/doesnotexist")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Session not found", "session_id": "doesnotexist"})
    bad = get(emulator, "/browser_sessions/has%20space")
    assert (bad.status_code, bad.json()) == (400, {"error": "Invalid session_id format"})


def test_only_get_is_served(emulator):
    response = requests.post(f"{emulator.url}/browser_sessions", headers=AUTH, timeout=10)
    assert response.status_code == 405
