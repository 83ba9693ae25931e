"""The emulator's Browserbase Sessions API in raw HTTP, against the notes in shared/api (browserbase-sessions.md)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests

from airflow_provider_browsersessions.testing import Emulator
from airflow_provider_browsersessions.testing.emulator.browserbase_api import (
    DEFAULT_BROWSERBASE_API_KEY,
    STATUSES,
    parse_query,
)

KEY = {"X-BB-API-Key": DEFAULT_BROWSERBASE_API_KEY}
LIVE_FIELDS = {"connectUrl", "seleniumRemoteUrl", "signingKey"}
ALWAYS = {"id", "createdAt", "updatedAt", "startedAt", "expiresAt", "status", "projectId", "proxyBytes", "keepAlive"}


@pytest.fixture
def emulator():
    with Emulator(speed=0) as emulator:
        yield emulator


def call(emulator, method, path, *, headers=KEY, json=None, **params):
    return requests.request(
        method, f"{emulator.url}/v1/sessions{path}", params=params, headers=headers, json=json, timeout=10
    )


def test_the_list_is_a_bare_array_of_every_session(emulator):
    emulator.seed_sessions(platform="browserbase", count=40, seed=2)
    body = call(emulator, "GET", "").json()
    assert isinstance(body, list)
    assert len(body) == 40
    for record in body:
        assert set(record) >= ALWAYS
        assert record["status"] in STATUSES
        assert not LIVE_FIELDS & set(record)  # the list never carries the live browser's credentials
        assert ("endedAt" in record) == (record["status"] in ("COMPLETED", "ERROR", "TIMED_OUT"))


def test_status_filters_on_the_server_one_value_per_request(emulator):
    running = emulator.add_session("browserbase", duration=100)
    emulator.advance(5)  # past PENDING
    done = emulator.add_session("browserbase", started_at=emulator.now() - 50, duration=10)
    failed = emulator.add_session(
        "browserbase", started_at=emulator.now() - 50, duration=10, outcome="failed", failure="ERROR"
    )
    timed_out = emulator.add_session(
        "browserbase", started_at=emulator.now() - 50, duration=10, outcome="failed", failure="TIMED_OUT"
    )
    assert [r["id"] for r in call(emulator, "GET", "", status="RUNNING").json()] == [running["id"]]
    assert [r["id"] for r in call(emulator, "GET", "", status="COMPLETED").json()] == [done["id"]]
    assert [r["id"] for r in call(emulator, "GET", "", status="ERROR").json()] == [failed["id"]]
    assert [r["id"] for r in call(emulator, "GET", "", status="TIMED_OUT").json()] == [timed_out["id"]]
    assert call(emulator, "GET", "", status="running").status_code == 400  # the API's own spelling only


def test_a_new_session_is_pending_for_a_moment(emulator):
    new = emulator.add_session("browserbase", duration=100)
    assert [r["id"] for r in call(emulator, "GET", "", status="PENDING").json()] == [new["id"]]


def test_q_selects_by_user_metadata_with_nested_keys(emulator):
    mine = emulator.add_session("browserbase", duration=100, userMetadata={"airflow_run_id": "run 1", "a": {"b": "x"}})
    emulator.add_session("browserbase", duration=100, userMetadata={"airflow_run_id": "run 2"})
    emulator.add_session("browserbase", duration=100)
    answer = call(emulator, "GET", "", q="user_metadata['airflow_run_id']:'run 1'")
    assert [r["id"] for r in answer.json()] == [mine["id"]]
    assert answer.json()[0]["userMetadata"]["airflow_run_id"] == "run 1"
    nested = call(emulator, "GET", "", q="user_metadata['a']['b']:'x'").json()
    assert [r["id"] for r in nested] == [mine["id"]]
    # URL-encoded by hand, as the notes say to send it.
    encoded = quote("user_metadata['a']['b']:'x'", safe="")
    raw = requests.get(f"{emulator.url}/v1/sessions?q={encoded}", headers=KEY, timeout=10)
    assert [r["id"] for r in raw.json()] == [mine["id"]]
    assert call(emulator, "GET", "", q="airflow_run_id=run 1").status_code == 400


def test_parse_query_reads_one_condition():
    assert parse_query("user_metadata['a']['b']:'v'") == (("a", "b"), "v")
    assert parse_query("user_metadata['a']:'v' AND x") is None


def test_a_read_adds_the_live_browser_credentials(emulator):
    session = emulator.add_session("browserbase", duration=100)
    record = call(emulator, "GET", f"/{session['id']}").json()
    assert set(record) >= LIVE_FIELDS
    assert record["signingKey"] in record["connectUrl"]
    assert call(emulator, "GET", "/no-such-session").status_code == 404


def test_release_ends_the_session_completed(emulator):
    session = emulator.add_session("browserbase", duration=100)
    answer = call(emulator, "POST", f"/{session['id']}", json={"status": "REQUEST_RELEASE"})
    assert answer.status_code == 200
    assert answer.json()["status"] == "COMPLETED"
    assert call(emulator, "GET", f"/{session['id']}").json()["status"] == "COMPLETED"
    again = call(emulator, "POST", f"/{session['id']}", json={"status": "REQUEST_RELEASE"})
    assert again.status_code == 400
    assert session["id"] in again.json()["message"]  # an ended session: a 4xx naming it
    assert call(emulator, "POST", f"/{session['id']}", json={"status": "RUNNING"}).status_code == 400
    assert call(emulator, "POST", "/unknown", json={"status": "REQUEST_RELEASE"}).status_code == 404


def test_the_api_key_is_checked(emulator):
    assert call(emulator, "GET", "", headers={}).status_code == 401
    assert call(emulator, "GET", "", headers={"X-BB-API-Key": "wrong"}).status_code == 401


def test_the_429_mode_sends_the_rate_limit_headers(emulator):
    emulator.script_faults([{"kind": "429", "retry_after": 45}], platform="browserbase")
    answer = call(emulator, "GET", "")
    assert answer.status_code == 429
    assert answer.headers["x-ratelimit-limit"] == "3"
    assert answer.headers["x-ratelimit-remaining"] == "0"
    assert answer.headers["x-ratelimit-reset"] == "45"
    assert answer.headers["retry-after"] == "45"
    assert "concurrent sessions limit" in answer.json()["message"]


def test_seeded_sessions_carry_user_metadata_and_a_connection_is_wired(emulator):
    emulator.seed_sessions(platform="browserbase", count=10, seed=1)
    assert all("userMetadata" in record for record in emulator.sessions("browserbase"))
    env = emulator.connection_env()
    assert '"conn_type": "browserbase"' in env["AIRFLOW_CONN_BROWSERBASE_DEFAULT"]


def test_sessions_with_metadata_can_be_started_over_the_control_api(emulator):
    answer = requests.post(
        f"{emulator.url}/_emulator/sessions/browserbase",
        json={"duration": 30, "userMetadata": {"airflow_run_id": "manual__1"}},
        timeout=10,
    )
    assert answer.status_code == 200
    listed = call(emulator, "GET", "", q="user_metadata['airflow_run_id']:'manual__1'").json()
    assert [r["id"] for r in listed] == [answer.json()["id"]]
