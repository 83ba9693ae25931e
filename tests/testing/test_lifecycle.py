"""Sessions live on the emulator's clock; the generator is seeded; the HTTP control API mirrors the Python one."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

import pytest
import requests

from airflow_provider_browsersessions.testing import DEFAULT_BRIGHTDATA_API_KEY, Emulator
from airflow_provider_browsersessions.testing.emulator.brightdata_api import SHOWCASE_FAILED_PER_ZONE, ZONES

NORMAL_REASONS = ("NormalClosure", "BrowserIdle")


def iso_seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def emulator():
    with Emulator(speed=0) as emulator:
        yield emulator


def status(emulator, platform, session_id):
    record = emulator.get_record(platform, session_id)
    if platform == "brightdata":
        return record["status"]
    return "running" if not record.get("endTime") else record["closeReasonText"]


def test_the_python_api_in_one_test():
    # [START python_api]
    import requests

    from airflow_provider_browsersessions.testing import Emulator

    with Emulator(seed=1, sessions=0, speed=0) as emulator:  # speed=0: the clock moves only when told
        session = emulator.add_session("brightdata", duration=30, outcome="failed", api_name="shop")
        session_id = session["session_id"]
        assert emulator.get_record("brightdata", session_id)["status"] == "running"

        emulator.advance(31)  # 31 emulator seconds later the session has ended with its outcome
        ended = emulator.get_record("brightdata", session_id)
        assert (ended["status"], ended["duration"]) == ("failed", 30)

        # Any HTTP client sees the same, at emulator.url (Bright Data) or emulator.cloudflare_base_url.
        answer = requests.get(
            f"{emulator.brightdata_base_url}/browser_sessions",
            params={"status": "failed", "api_name": "shop"},
            headers={"Authorization": f"Bearer {emulator.brightdata_api_key}"},
            timeout=10,
        ).json()
        assert [s["session_id"] for s in answer["sessions"]] == [session_id]
    # [END python_api]


@pytest.mark.parametrize("outcome", ["finished", "failed"])
def test_a_bright_data_session_ends_with_its_outcome_after_its_duration(emulator, outcome):
    session = emulator.add_session("brightdata", duration=30, outcome=outcome)
    assert status(emulator, "brightdata", session["session_id"]) == "running"
    emulator.advance(29)
    assert status(emulator, "brightdata", session["session_id"]) == "running"
    emulator.advance(2)
    record = emulator.get_record("brightdata", session["session_id"])
    assert record["status"] == outcome
    assert record["duration"] == 30
    assert (record["error"] is None) == (outcome == "finished")
    assert record["target_url"] is not None  # an ended session shows where it went


def test_a_cloudflare_session_ends_with_a_close_reason(emulator):
    ok = emulator.add_session("cloudflare", duration=10, outcome="finished")
    crashed = emulator.add_session("cloudflare", duration=10, outcome="failed")
    assert status(emulator, "cloudflare", ok["sessionId"]) == "running"
    emulator.advance(11)
    assert status(emulator, "cloudflare", ok["sessionId"]) in NORMAL_REASONS
    assert status(emulator, "cloudflare", crashed["sessionId"]) not in (*NORMAL_REASONS, "running")


def test_a_session_started_in_the_past_is_already_over(emulator):
    session = emulator.add_session("brightdata", started_at=emulator.now() - 100, duration=40)
    record = emulator.get_record("brightdata", session["session_id"])
    assert (record["status"], record["duration"]) == ("finished", 40)


def test_end_session_ends_it_now(emulator):
    session = emulator.add_session("brightdata", duration=None)  # runs until ended
    emulator.advance(10_000)
    assert status(emulator, "brightdata", session["session_id"]) == "running"
    emulator.end_session("brightdata", session["session_id"], status="failed", error={"code": "x", "message": "y"})
    record = emulator.get_record("brightdata", session["session_id"])
    assert (record["status"], record["error"], record["duration"]) == ("failed", {"code": "x", "message": "y"}, 10_000)
    with pytest.raises(KeyError):
        emulator.end_session("brightdata", "nope")
    with pytest.raises(ValueError, match="status"):
        emulator.end_session("brightdata", session["session_id"], status="running")


def test_end_session_on_cloudflare_sets_the_close_reason(emulator):
    session = emulator.add_session("cloudflare", duration=None)
    ended = emulator.end_session("cloudflare", session["sessionId"], status="failed", close_reason="SessionEvicted")
    assert ended["closeReasonText"] == "SessionEvicted"
    assert ended["endTime"] > 0


def test_a_frozen_clock_ends_nothing_however_long_real_time_runs(emulator):
    session = emulator.add_session("brightdata", duration=0.01)
    frozen = emulator.now()
    time.sleep(0.05)
    assert emulator.now() == frozen
    assert status(emulator, "brightdata", session["session_id"]) == "running"


def test_speed_runs_the_clock_faster_than_real_time():
    with Emulator(speed=1000) as emulator:
        start = emulator.now()
        session = emulator.add_session("brightdata", duration=40)
        time.sleep(0.05)  # at least 50 emulator seconds
        assert emulator.now() - start >= 40
        assert status(emulator, "brightdata", session["session_id"]) == "finished"
        emulator.set_speed(0)
        frozen = emulator.now()
        time.sleep(0.02)
        assert emulator.now() == frozen


@pytest.mark.parametrize(("seed", "sessions"), [(0, 200), (42, 300), (3, 20)])
def test_the_starting_data_set_has_failed_sessions_of_each_zone_in_the_last_day(seed, sessions):
    # The default seed used to give 0-2 per zone per day: the first listing a user tried returned nothing.
    with Emulator(speed=0, seed=seed, sessions=sessions) as started, Emulator(speed=0) as plain:
        day_ago = started.now() - 86400
        records = started.sessions("brightdata")
        for zone in ZONES:
            recent_failed = [
                r
                for r in records
                if r["api_name"] == zone and r["status"] == "failed" and iso_seconds(r["timestamp"]) >= day_ago
            ]
            assert len(recent_failed) >= SHOWCASE_FAILED_PER_ZONE, zone
            assert all(r["error"] and r["duration"] is not None for r in recent_failed)
        # Only ended sessions were reshaped: the size, the ids and the running sessions are the seed's.
        generated = plain.seed_sessions(platform="brightdata", count=sessions, seed=seed)
        assert len(records) == sessions
        assert {r["session_id"] for r in records} == set(generated)
        running = {r["session_id"] for r in records if r["status"] == "running"}
        assert running == {r["session_id"] for r in plain.sessions("brightdata") if r["status"] == "running"}


def test_the_generator_is_deterministic_for_a_seed(emulator):
    with Emulator(speed=0) as same, Emulator(speed=0) as other:
        ids = emulator.seed_sessions(platform="brightdata", count=100, seed=9)
        assert same.seed_sessions(platform="brightdata", count=100, seed=9) == ids
        assert set(other.seed_sessions(platform="brightdata", count=100, seed=10)).isdisjoint(ids)
        strip_times = ("timestamp", "duration")  # the two emulators' clocks started a moment apart
        assert [{k: v for k, v in r.items() if k not in strip_times} for r in emulator.sessions("brightdata")] == [
            {k: v for k, v in r.items() if k not in strip_times} for r in same.sessions("brightdata")
        ]


def test_bright_data_data_is_realistically_varied(emulator):
    emulator.seed_sessions(platform="brightdata", count=400, seed=9)
    records = emulator.sessions("brightdata")
    statuses = Counter(r["status"] for r in records)
    assert set(statuses) == {"running", "finished", "failed"}
    assert statuses["finished"] > statuses["failed"] > 0
    ended = [r for r in records if r["status"] != "running"]
    assert len({r["api_name"] for r in records}) >= 3
    assert {r["captcha"] for r in ended} == {"none", "solved", "detected", "failed"}
    assert len({r["target_url"] for r in ended}) >= 5
    assert len({r["bandwidth"] for r in ended}) > 100
    assert len({r["error"]["code"] for r in ended if r["status"] == "failed"}) >= 3
    # Spread over the last seven days.
    days = {r["timestamp"][:10] for r in records}
    assert 5 <= len(days) <= 8


def test_generated_running_sessions_end_within_two_minutes(emulator):
    emulator.seed_sessions(platform="brightdata", count=400, seed=9)
    assert any(r["status"] == "running" for r in emulator.sessions("brightdata"))
    emulator.advance(121)
    assert all(r["status"] != "running" for r in emulator.sessions("brightdata"))


def test_cloudflare_data_is_realistically_varied(emulator):
    emulator.seed_sessions(platform="cloudflare", count=400, seed=9)
    records = emulator.sessions("cloudflare")
    running = [r for r in records if not r.get("endTime")]
    ended = [r for r in records if r.get("endTime")]
    assert running
    assert ended
    assert {r["closeReasonText"] for r in ended} >= {*NORMAL_REASONS, "ChromiumCrashed"}
    # Both documented forms of closeReason and of "not ended" occur, so clients meet them all.
    assert {type(r["closeReason"]) for r in ended} == {int, str}
    assert any("endTime" not in r for r in running)
    assert any(r.get("endTime") == 0 for r in running)


def test_cloudflare_never_runs_more_browsers_than_the_paid_plan(emulator):
    emulator.seed_sessions(platform="cloudflare", count=3000, seed=2)
    running = [r for r in emulator.sessions("cloudflare") if not r.get("endTime")]
    assert 100 < len(running) <= 120


def test_seeding_both_platforms(emulator):
    ids = emulator.seed_sessions(platform="both", count=20, seed=1)
    assert len(ids) == len(set(ids)) == 20 * len(emulator.apis)  # "both" means every platform
    assert all(len(emulator.sessions(name)) == 20 for name in emulator.apis)
    with pytest.raises(ValueError, match="platform"):
        emulator.seed_sessions(platform="aws", count=1)


def test_control_api_mirrors_the_python_methods(emulator):
    # [START control_api]
    from airflow_provider_browsersessions.testing import EmulatorClient

    client = EmulatorClient(emulator.url)  # e.g. "http://127.0.0.1:54321", from another process
    assert client.health()

    client.set_speed(0)
    before = client.now()
    client.advance(100)
    assert client.now() == before + 100

    ids = client.seed_sessions(platform="brightdata", count=5, seed=2)
    added = client.add_session("brightdata", duration=60, api_name="zone_x")
    ended = client.end_session("brightdata", added["session_id"], status="failed")
    assert ended["status"] == "failed"
    assert sorted(r["session_id"] for r in client.sessions("brightdata")) == sorted([*ids, added["session_id"]])

    client.script_faults([{"kind": "503"}], platform="brightdata")
    # [END control_api]
    assert emulator.now() == client.now()
    assert emulator.clock.speed == 0
    assert emulator.get_record("brightdata", added["session_id"])["status"] == "failed"

    key = {"Authorization": f"Bearer {DEFAULT_BRIGHTDATA_API_KEY}"}
    assert requests.get(f"{emulator.url}/browser_sessions", headers=key, timeout=5).status_code == 503
    assert requests.get(f"{emulator.url}/browser_sessions", headers=key, timeout=5).status_code == 200
    log = client.request_log(platform="brightdata")
    assert [(e["status"], e["fault"]) for e in log] == [(503, "503"), (200, None)]
    assert log == emulator.request_log()
    assert client.request_count(platform="brightdata") == 2
    assert client.request_count(platform="cloudflare") == 0
    client.clear_log()
    assert emulator.request_log() == []

    client.set_random_faults(rate=1.0, kinds=["500"], seed=1, platform="brightdata")
    assert requests.get(f"{emulator.url}/browser_sessions", headers=key, timeout=5).status_code == 500
    client.clear_faults()
    assert requests.get(f"{emulator.url}/browser_sessions", headers=key, timeout=5).status_code == 200

    client.set_lockout(budget=0, window=60)
    cloudflare = client.add_session("cloudflare", duration=60)
    read = requests.get(
        f"{emulator.cloudflare_base_url}/accounts/{emulator.cloudflare_account_id}"
        f"/browser-rendering/devtools/session/{cloudflare['sessionId']}",
        headers={"Authorization": f"Bearer {emulator.cloudflare_api_token}"},
        timeout=5,
    )
    assert read.status_code == 429
    client.clear_faults()

    client.set_options(cloudflare_envelope=True, cloudflare_null_for_missing=True)
    assert emulator.options == {"cloudflare_envelope": True, "cloudflare_null_for_missing": True}

    client.reset()
    assert client.sessions("brightdata") == []
    assert client.sessions("cloudflare") == []
    assert client.request_log() == []
    assert emulator.options == {"cloudflare_envelope": False, "cloudflare_null_for_missing": False}


def test_control_clock_route_answers_the_clock(emulator):
    answer = requests.post(f"{emulator.url}/_emulator/clock", json={"advance": 5, "speed": 2}, timeout=5).json()
    assert set(answer) == {"now", "speed"}
    assert answer["speed"] == 2
    assert requests.get(f"{emulator.url}/_emulator/clock", timeout=5).json()["now"] >= answer["now"]


def test_unknown_control_routes_and_bad_arguments_are_clear_errors(emulator):
    missing = requests.get(f"{emulator.url}/_emulator/nothing", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"error": "no control route GET /_emulator/nothing"}
    wrong_method = requests.get(f"{emulator.url}/_emulator/reset", timeout=5)
    assert wrong_method.status_code == 404
    bad = requests.post(f"{emulator.url}/_emulator/sessions/brightdata", json={"outcome": "maybe"}, timeout=5)
    assert (bad.status_code, bad.json()) == (400, {"error": "outcome must be finished or failed"})
    bad_platform = requests.post(f"{emulator.url}/_emulator/seed", json={"platform": "aws", "count": 1}, timeout=5)
    assert bad_platform.status_code == 400
    assert "platform" in bad_platform.json()["error"]
    unknown_kind = requests.post(
        f"{emulator.url}/_emulator/faults/script", json={"faults": [{"kind": "explode"}]}, timeout=5
    )
    assert unknown_kind.status_code == 400
    not_json = requests.post(f"{emulator.url}/_emulator/seed", data=b"{", timeout=5)
    assert not_json.status_code == 400
    unknown_session = requests.post(f"{emulator.url}/_emulator/sessions/brightdata/nope/end", json={}, timeout=5)
    assert unknown_session.status_code == 400
    assert "nope" in unknown_session.json()["error"]
