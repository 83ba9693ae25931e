"""The emulator's Cloudflare devtools session API in raw HTTP, against the notes in shared/api."""

from __future__ import annotations

import uuid

import pytest
import requests

from airflow_provider_browsersessions.testing import (
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_API_TOKEN,
    DEFAULT_CLOUDFLARE_EMAIL,
    DEFAULT_CLOUDFLARE_GLOBAL_KEY,
    Emulator,
)

TOKEN = {"Authorization": f"Bearer {DEFAULT_CLOUDFLARE_API_TOKEN}"}
LEGACY = {"X-Auth-Email": DEFAULT_CLOUDFLARE_EMAIL, "X-Auth-Key": DEFAULT_CLOUDFLARE_GLOBAL_KEY}
ROOT = f"/client/v4/accounts/{DEFAULT_CLOUDFLARE_ACCOUNT_ID}/browser-rendering/devtools"
OPTIONAL_FIELDS = {
    "closeReason",
    "closeReasonText",
    "connectionId",
    "connectionStartTime",
    "connectionEndTime",
    "devtoolsFrontendUrl",
    "endTime",
    "lastUpdated",
    "startTime",
    "webSocketDebuggerUrl",
}
NORMAL_REASONS = ("NormalClosure", "BrowserIdle")


@pytest.fixture
def emulator():
    with Emulator(speed=0, cloudflare_retention=600) as emulator:
        yield emulator


def call(emulator, method, path, *, headers=TOKEN, **params):
    return requests.request(method, f"{emulator.url}{ROOT}{path}", params=params, headers=headers, timeout=10)


def error_envelope(code, message):
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}


def test_list_is_a_bare_array_of_active_sessions(emulator):
    running = [emulator.add_session("cloudflare", duration=100) for _ in range(3)]
    emulator.add_session("cloudflare", started_at=emulator.now() - 50, duration=10)  # already ended
    response = call(emulator, "GET", "/session", limit=200)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert {s["sessionId"] for s in body} == {s["sessionId"] for s in running}
    for session in body:
        assert set(session) - {"sessionId"} <= OPTIONAL_FIELDS
        assert session.get("endTime", 0) == 0  # running: endTime missing or 0, as the notes say
        assert "closeReason" not in session
        assert "closeReasonText" not in session


def test_session_ids_are_uuids_and_times_are_epoch_milliseconds(emulator):
    emulator.seed_sessions(platform="cloudflare", count=300, seed=3)
    now_ms = emulator.now() * 1000
    listed = call(emulator, "GET", "/session", limit=200).json()
    assert listed
    for session in listed:
        assert str(uuid.UUID(session["sessionId"])) == session["sessionId"]
        assert type(session["startTime"]) is int
        # Milliseconds, not seconds: within the last week of emulator time.
        assert now_ms - 7 * 86_400_000 < session["startTime"] <= now_ms


def test_the_list_holds_only_running_sessions_of_a_seeded_account(emulator):
    emulator.seed_sessions(platform="cloudflare", count=300, seed=3)
    active = {r["sessionId"] for r in emulator.sessions("cloudflare") if not r.get("endTime")}
    listed = call(emulator, "GET", "/session", limit=200).json()
    assert 0 < len(active) < 300
    assert {s["sessionId"] for s in listed} == active


def test_limit_and_offset_page_through_the_active_list(emulator):
    for _ in range(7):
        emulator.add_session("cloudflare", duration=100)
    first = call(emulator, "GET", "/session", limit=5, offset=0).json()
    second = call(emulator, "GET", "/session", limit=5, offset=5).json()
    past_the_end = call(emulator, "GET", "/session", limit=5, offset=7).json()
    assert (len(first), len(second), past_the_end) == (5, 2, [])
    assert {s["sessionId"] for s in first}.isdisjoint(s["sessionId"] for s in second)


@pytest.mark.parametrize("limit", [1, 200])
def test_the_limit_bounds_are_accepted(emulator, limit):
    for _ in range(3):
        emulator.add_session("cloudflare", duration=100)
    response = call(emulator, "GET", "/session", limit=limit, offset=0)
    assert response.status_code == 200
    assert len(response.json()) == min(limit, 3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 200"),
        ({"limit": 201}, "limit must be between 1 and 200"),
        ({"offset": -1}, "offset must be >= 0"),
        ({"limit": "x"}, "limit and offset must be integers"),
        ({"offset": "x"}, "limit and offset must be integers"),
    ],
)
def test_invalid_paging_answers_400_in_the_error_envelope(emulator, params, message):
    response = call(emulator, "GET", "/session", **params)
    assert (response.status_code, response.json()) == (400, error_envelope(1001, message))


def test_both_auth_modes_and_a_401_envelope(emulator):
    assert call(emulator, "GET", "/session").status_code == 200
    assert call(emulator, "GET", "/session", headers=LEGACY).status_code == 200
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": DEFAULT_CLOUDFLARE_API_TOKEN},  # no "Bearer "
        {**LEGACY, "X-Auth-Key": "wrong"},
        {"X-Auth-Key": DEFAULT_CLOUDFLARE_GLOBAL_KEY},  # the key without its email
    ):
        response = call(emulator, "GET", "/session", headers=headers)
        assert (response.status_code, response.json()) == (401, error_envelope(10000, "Authentication error"))


def test_legacy_auth_serves_every_endpoint(emulator):
    acquired = call(emulator, "POST", "/browser", headers=LEGACY).json()
    session_id = acquired["sessionId"]
    assert call(emulator, "GET", f"/session/{session_id}", headers=LEGACY).json()["sessionId"] == session_id
    assert call(emulator, "DELETE", f"/browser/{session_id}", headers=LEGACY).json() == {"status": "closing"}


@pytest.mark.parametrize(("method", "path"), [("GET", "/session"), ("GET", "/session/x"), ("POST", "/browser")])
def test_a_wrong_account_id_is_a_7003_routing_error(emulator, method, path):
    response = requests.request(
        method, f"{emulator.url}/client/v4/accounts/other/browser-rendering/devtools{path}", headers=TOKEN, timeout=10
    )
    assert response.status_code == 404
    body = response.json()
    assert (body["success"], body["result"], body["messages"]) == (False, None, [])
    assert body["errors"][0]["code"] == 7003
    assert "perhaps your object identifier is invalid" in body["errors"][0]["message"]


def test_read_one_is_a_bare_session_object(emulator):
    running = emulator.add_session("cloudflare", duration=100)
    body = call(emulator, "GET", f"/session/{running['sessionId']}").json()
    assert body == running


def test_an_id_never_seen_is_a_404_in_the_envelope(emulator):
    response = call(emulator, "GET", f"/session/{uuid.uuid4()}")
    assert (response.status_code, response.json()) == (404, error_envelope(1002, "Session not found"))


def test_acquire_then_close_keeps_a_readable_closed_record(emulator):
    acquired = call(emulator, "POST", "/browser", keep_alive=60000).json()
    assert set(acquired) == {"sessionId", "webSocketDebuggerUrl"}
    assert acquired["webSocketDebuggerUrl"].startswith("ws://")
    session_id = acquired["sessionId"]
    assert session_id in {s["sessionId"] for s in call(emulator, "GET", "/session").json()}

    assert call(emulator, "DELETE", f"/browser/{session_id}").json() == {"status": "closing"}
    assert session_id not in {s["sessionId"] for s in call(emulator, "GET", "/session").json()}
    closed = call(emulator, "GET", f"/session/{session_id}").json()
    assert closed["endTime"] > 0
    assert closed["endTime"] >= closed["startTime"]
    assert closed["closeReasonText"] == "NormalClosure"
    assert closed["closeReason"] in (1, "NormalClosure")
    assert call(emulator, "DELETE", f"/browser/{session_id}").json() == {"status": "closed"}


def test_an_acquired_browser_idles_out_after_keep_alive(emulator):
    session_id = call(emulator, "POST", "/browser", keep_alive=30000).json()["sessionId"]
    emulator.advance(29)
    assert session_id in {s["sessionId"] for s in call(emulator, "GET", "/session").json()}
    emulator.advance(2)
    assert session_id not in {s["sessionId"] for s in call(emulator, "GET", "/session").json()}
    record = call(emulator, "GET", f"/session/{session_id}").json()
    assert record["closeReasonText"] == "BrowserIdle"
    assert record["closeReason"] in (2, "BrowserIdle")  # the notes: a numeric code or the text, accept both
    assert call(emulator, "DELETE", f"/browser/{session_id}").json() == {"status": "closed"}


def test_acquire_refuses_a_bad_keep_alive(emulator):
    response = call(emulator, "POST", "/browser", keep_alive="soon")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 1001


def test_closing_an_unknown_session_is_a_404(emulator):
    response = call(emulator, "DELETE", f"/browser/{uuid.uuid4()}")
    assert (response.status_code, response.json()) == (404, error_envelope(1002, "Session not found"))


def test_a_crashed_session_reads_with_its_close_reason(emulator):
    crashed = emulator.add_session("cloudflare", duration=5, outcome="failed")
    emulator.advance(6)
    record = call(emulator, "GET", f"/session/{crashed['sessionId']}").json()
    assert record["endTime"] == record["startTime"] + 5000
    assert record["closeReasonText"] not in NORMAL_REASONS
    assert record["closeReason"] == record["closeReasonText"]  # no numeric code is documented for crashes


def test_a_closed_session_is_forgotten_after_the_retention_period(emulator):
    session = emulator.add_session("cloudflare", duration=5)
    path = f"/session/{session['sessionId']}"
    assert call(emulator, "GET", path).status_code == 200
    emulator.advance(5 + 601)
    response = call(emulator, "GET", path)
    assert (response.status_code, response.json()) == (404, error_envelope(1002, "Session not found"))
    emulator.set_options(cloudflare_null_for_missing=True)
    null = call(emulator, "GET", path)
    assert (null.status_code, null.content) == (200, b"null")


def test_the_optional_result_envelope(emulator):
    session = emulator.add_session("cloudflare", duration=100)
    emulator.set_options(cloudflare_envelope=True)
    listed = call(emulator, "GET", "/session").json()
    assert set(listed) == {"success", "errors", "messages", "result"}
    assert (listed["success"], listed["errors"]) == (True, [])
    assert [s["sessionId"] for s in listed["result"]] == [session["sessionId"]]
    assert call(emulator, "GET", f"/session/{session['sessionId']}").json()["result"] == session
    acquired = call(emulator, "POST", "/browser").json()["result"]
    assert call(emulator, "DELETE", f"/browser/{acquired['sessionId']}").json()["result"] == {"status": "closing"}
    # Errors keep their own envelope: success false, result null.
    assert call(emulator, "GET", "/session", limit=0).json()["success"] is False


def test_every_answer_carries_the_rate_limit_headers(emulator):
    for response in (call(emulator, "GET", "/session"), call(emulator, "GET", "/session", headers={})):
        assert response.headers["Ratelimit-Policy"] == '"default";q=1200;w=300'
        assert "Ratelimit" in response.headers


def test_unsupported_methods_and_routes(emulator):
    assert call(emulator, "DELETE", "/session").status_code == 405
    assert call(emulator, "POST", "/session").status_code == 405
    response = requests.get(
        f"{emulator.url}/client/v4/accounts/{DEFAULT_CLOUDFLARE_ACCOUNT_ID}/x", headers=TOKEN, timeout=10
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == 7000
