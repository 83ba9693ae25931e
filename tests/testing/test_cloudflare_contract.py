"""The emulator's Cloudflare devtools session API in raw HTTP, against the notes in shared/api."""

from __future__ import annotations

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
    body = call(emulator, "GET", "/session", limit=200).json()
    assert isinstance(body, list)
    assert {s["sessionId"] for s in body} == {s["sessionId"] for s in running}
    for session in body:
        assert isinstance(session["startTime"], int)
        assert session.get("endTime", 0) == 0
        assert "closeReason" not in session


def test_limit_and_offset_page_through_the_active_list(emulator):
    for _ in range(7):
        emulator.add_session("cloudflare", duration=100)
    first = call(emulator, "GET", "/session", limit=5, offset=0).json()
    second = call(emulator, "GET", "/session", limit=5, offset=5).json()
    assert (len(first), len(second)) == (5, 2)
    assert {s["sessionId"] for s in first}.isdisjoint(s["sessionId"] for s in second)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 200"),
        ({"limit": 201}, "limit must be between 1 and 200"),
        ({"offset": -1}, "offset must be >= 0"),
        ({"limit": "x"}, "limit and offset must be integers"),
    ],
)
def test_invalid_paging_answers_400_in_the_error_envelope(emulator, params, message):
    response = call(emulator, "GET", "/session", **params)
    assert (response.status_code, response.json()) == (400, error_envelope(1001, message))


def test_both_auth_modes_and_a_401_envelope(emulator):
    assert call(emulator, "GET", "/session").status_code == 200
    assert call(emulator, "GET", "/session", headers=LEGACY).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {**LEGACY, "X-Auth-Key": "wrong"}):
        response = call(emulator, "GET", "/session", headers=headers)
        assert (response.status_code, response.json()) == (401, error_envelope(10000, "Authentication error"))


def test_a_wrong_account_id_is_a_7003_routing_error(emulator):
    response = requests.get(
        f"{emulator.url}/client/v4/accounts/other/browser-rendering/devtools/session", headers=TOKEN, timeout=10
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == 7003


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
    assert closed["closeReasonText"] == "NormalClosure"
    assert closed["closeReason"] in (1, "NormalClosure")
    assert call(emulator, "DELETE", f"/browser/{session_id}").json() == {"status": "closed"}


def test_a_closed_session_is_forgotten_after_the_retention_period(emulator):
    session = emulator.add_session("cloudflare", duration=5)
    path = f"/session/{session['sessionId']}"
    assert call(emulator, "GET", path).status_code == 200
    emulator.advance(5 + 601)
    response = call(emulator, "GET", path)
    assert (response.status_code, response.json()) == (404, error_envelope(1002, "Session not found"))
    emulator.set_options(cloudflare_null_for_missing=True)
    null = call(emulator, "GET", path)
    assert (null.status_code, null.json()) == (200, None)


def test_the_optional_result_envelope(emulator):
    session = emulator.add_session("cloudflare", duration=100)
    emulator.set_options(cloudflare_envelope=True)
    listed = call(emulator, "GET", "/session").json()
    assert listed["success"] is True
    assert [s["sessionId"] for s in listed["result"]] == [session["sessionId"]]
    assert (
        call(emulator, "GET", f"/session/{session['sessionId']}").json()["result"]["sessionId"]
        == (session["sessionId"])
    )


def test_every_answer_carries_the_rate_limit_headers(emulator):
    response = call(emulator, "GET", "/session")
    assert response.headers["Ratelimit-Policy"] == '"default";q=1200;w=300'
    assert "Ratelimit" in response.headers


def test_unsupported_methods_and_routes(emulator):
    assert call(emulator, "DELETE", "/session").status_code == 405
    response = requests.get(f"{emulator.url}/client/v4/accounts/{DEFAULT_CLOUDFLARE_ACCOUNT_ID}/x", headers=TOKEN)
    assert response.status_code == 404
