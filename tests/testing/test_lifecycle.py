"""Sessions live on the emulator's clock; the generator is seeded; the HTTP control API mirrors the Python one."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests

from airflow_provider_browsersessions.testing import Emulator, EmulatorClient


@pytest.fixture
def emulator():
    with Emulator(speed=0) as emulator:
        yield emulator


def status(emulator, platform, session_id):
    record = emulator.get_record(platform, session_id)
    if platform == "brightdata":
        return record["status"]
    return "running" if not record.get("endTime") else record["closeReasonText"]


@pytest.mark.parametrize(("outcome", "expected"), [("finished", "finished"), ("failed", "failed")])
def test_a_bright_data_session_ends_with_its_outcome_after_its_duration(emulator, outcome, expected):
    session = emulator.add_session("brightdata", duration=30, outcome=outcome)
    assert status(emulator, "brightdata", session["session_id"]) == "running"
    emulator.advance(29)
    assert status(emulator, "brightdata", session["session_id"]) == "running"
    emulator.advance(2)
    record = emulator.get_record("brightdata", session["session_id"])
    assert record["status"] == expected
    assert record["duration"] == 30
    assert (record["error"] is None) == (outcome == "finished")


def test_a_cloudflare_session_ends_with_a_close_reason(emulator):
    ok = emulator.add_session("cloudflare", duration=10, outcome="finished")
    crashed = emulator.add_session("cloudflare", duration=10, outcome="failed")
    emulator.advance(11)
    assert status(emulator, "cloudflare", ok["sessionId"]) in ("NormalClosure", "BrowserIdle")
    assert status(emulator, "cloudflare", crashed["sessionId"]) not in ("NormalClosure", "BrowserIdle", "running")


def test_end_session_ends_it_now(emulator):
    session = emulator.add_session("brightdata", duration=None)  # runs until ended
    emulator.advance(10_000)
    assert status(emulator, "brightdata", session["session_id"]) == "running"
    emulator.end_session("brightdata", session["session_id"], status="failed", error={"code": "x", "message": "y"})
    record = emulator.get_record("brightdata", session["session_id"])
    assert (record["status"], record["error"]) == ("failed", {"code": "x", "message": "y"})
    with pytest.raises(KeyError):
        emulator.end_session("brightdata", "nope")


def test_speed_runs_the_clock_faster_than_real_time():
    with Emulator(speed=1000) as emulator:
        start = emulator.now()
        time.sleep(0.05)
        assert emulator.now() - start >= 40  # 0.05 s real at 1000x, with slack for scheduling
        emulator.set_speed(0)
        frozen = emulator.now()
        time.sleep(0.02)
        assert emulator.now() == frozen


def test_the_generator_is_deterministic_and_varied(emulator):
    with Emulator(speed=0) as other:
        ids = emulator.seed_sessions(platform="brightdata", count=400, seed=9)
        assert other.seed_sessions(platform="brightdata", count=400, seed=9) == ids
    records = emulator.sessions("brightdata")
    statuses = Counter(r["status"] for r in records)
    assert set(statuses) == {"running", "finished", "failed"}
    assert statuses["finished"] > statuses["failed"] > 0
    ended = [r for r in records if r["status"] != "running"]
    assert len({r["api_name"] for r in records}) >= 3
    assert len({r["captcha"] for r in ended}) >= 3
    assert len({r["target_url"] for r in ended}) >= 5
    assert len({r["bandwidth"] for r in ended}) > 100
    assert all(r["error"]["code"] for r in ended if r["status"] == "failed")


def test_seeding_both_platforms(emulator):
    ids = emulator.seed_sessions(platform="both", count=20, seed=1)
    assert len(ids) == 40
    assert len(emulator.sessions("brightdata")) == len(emulator.sessions("cloudflare")) == 20


def test_control_api_mirrors_the_python_methods(emulator):
    client = EmulatorClient(emulator.url)
    assert client.health()
    client.advance(100)
    assert client.now() == pytest.approx(emulator.now())
    ids = client.seed_sessions(platform="brightdata", count=5, seed=2)
    assert sorted(ids) == sorted(r["session_id"] for r in client.sessions("brightdata"))
    added = client.add_session("brightdata", duration=60, api_name="zone_x")
    assert added["api_name"] == "zone_x"
    ended = client.end_session("brightdata", added["session_id"], status="failed")
    assert ended["status"] == "failed"
    client.set_options(cloudflare_envelope=True)
    assert emulator.options["cloudflare_envelope"] is True
    client.script_faults([{"kind": "500"}], platform="brightdata")
    client.set_lockout(budget=5, window=1)
    requests.get(f"{emulator.url}/browser_sessions", timeout=5)
    assert client.request_count(platform="brightdata") == 1
    assert client.request_log()[0]["path"] == "/browser_sessions"
    client.clear_log()
    assert client.request_count() == 0
    client.clear_faults()
    client.reset()
    assert client.sessions("brightdata") == []
    assert emulator.options["cloudflare_envelope"] is False


def test_unknown_control_routes_and_bad_arguments_are_clear_errors(emulator):
    missing = requests.get(f"{emulator.url}/_emulator/nothing", timeout=5)
    assert missing.status_code == 404
    assert "no control route GET /_emulator/nothing" in missing.json()["error"]
    bad = requests.post(f"{emulator.url}/_emulator/sessions/brightdata", json={"outcome": "maybe"}, timeout=5)
    assert (bad.status_code, bad.json()) == (400, {"error": "outcome must be finished or failed"})
