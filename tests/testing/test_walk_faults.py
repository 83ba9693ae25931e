"""The emulator's faults for walks and odd records, seen by a raw HTTP client: repeated pages, 429 reasons, wire."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_browsersessions.testing import (
    DEFAULT_BRIGHTDATA_API_KEY,
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_API_TOKEN,
    Emulator,
    EmulatorClient,
)

BD_AUTH = {"Authorization": f"Bearer {DEFAULT_BRIGHTDATA_API_KEY}"}
CF_AUTH = {"Authorization": f"Bearer {DEFAULT_CLOUDFLARE_API_TOKEN}"}
CF_LIST = f"/client/v4/accounts/{DEFAULT_CLOUDFLARE_ACCOUNT_ID}/browser-rendering/devtools/session"


@pytest.fixture
def emulator():
    with Emulator(speed=0) as emulator:
        emulator.seed_sessions(platform="brightdata", count=20, seed=4)
        for _ in range(7):
            emulator.add_session("cloudflare", duration=None)
        yield emulator


def bd(emulator, **params):
    return requests.get(f"{emulator.url}/browser_sessions", params=params, headers=BD_AUTH, timeout=10)


def cf(emulator, path="", **params):
    return requests.get(f"{emulator.url}{CF_LIST}{path}", params=params, headers=CF_AUTH, timeout=10)


def ids(body):
    return [s["session_id"] for s in body["sessions"]]


def test_repeat_page_answers_bright_datas_first_page_with_advancing_pagination(emulator):
    first = bd(emulator, limit=5).json()
    emulator.script_faults([{"kind": "repeat_page"}] * 2, platform="brightdata")
    for offset in (5, 10):
        again = bd(emulator, limit=5, offset=offset).json()
        assert ids(again) == ids(first)
        assert again["pagination"] == {"offset": offset, "limit": 5, "has_more": True, "next_offset": offset + 5}
    assert ids(bd(emulator, limit=5, offset=5).json()) != ids(first)  # the script is used up
    log = emulator.request_log(platform="brightdata")
    assert [e["fault"] for e in log] == [None, "repeat_page", "repeat_page", None]


def test_repeat_page_answers_cloudflares_first_full_page_at_every_offset(emulator):
    first = cf(emulator, limit=3).json()
    emulator.script_faults([{"kind": "repeat_page"}], platform="cloudflare")
    again = cf(emulator, limit=3, offset=300)
    assert again.status_code == 200
    assert again.json() == first
    assert "Ratelimit" in again.headers


def test_repeat_page_leaves_a_session_read_alone(emulator):
    sid = emulator.sessions("cloudflare")[0]["sessionId"]
    emulator.script_faults([{"kind": "repeat_page"}], platform="cloudflare")
    assert cf(emulator, f"/{sid}").json()["sessionId"] == sid


def test_bright_datas_429_carries_its_reason_headers(emulator):
    emulator.script_faults([{"kind": "429", "retry_after": 2}], platform="brightdata")
    limited = bd(emulator)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.headers["x-brd-error"] == "too_many_requests"
    assert limited.headers["x-brd-err-msg"] == "Too many requests: rate limit exceeded, slow down"


def test_an_unknown_id_answers_the_documented_not_found_body(emulator):
    missing = requests.get(f"{emulator.url}/browser_sessions/no-such-id", headers=BD_AUTH, timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"error": "Session not found", "session_id": "no-such-id"})


def test_wire_values_replace_a_records_fields_as_sent_in_lists_and_reads(emulator):
    sid = emulator.add_session("brightdata", duration=None, wire={"status": "paused", "bandwidth": "12 kB"})[
        "session_id"
    ]
    listed = {s["session_id"]: s for s in bd(emulator, limit=100).json()["sessions"]}
    assert (listed[sid]["status"], listed[sid]["bandwidth"]) == ("paused", "12 kB")
    read = requests.get(f"{emulator.url}/browser_sessions/{sid}", headers=BD_AUTH, timeout=10).json()["session"]
    assert (read["status"], read["bandwidth"]) == ("paused", "12 kB")


def test_the_control_api_scripts_repeat_pages_and_wire_values(emulator):
    client = EmulatorClient(emulator.url)
    client.script_faults([{"kind": "repeat_page"}], platform="brightdata")
    record = client.add_session("brightdata", duration=None, wire={"status": "queued"})
    assert record["status"] == "queued"
    assert bd(emulator, limit=5, offset=5).json()["pagination"]["next_offset"] == 10
