"""BrowserSessionsSensor gating real DAG runs in poke, reschedule and deferrable modes, on both platforms."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from airflow_harness import run_dag

pytestmark = pytest.mark.system

DAGS = Path(__file__).parent / "dags" / "wait_dags.py"


@pytest.fixture
def emulator(airflow_db, browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(10)  # sessions of 20-40 emulator seconds end within 2-4 real seconds
    return emulator


def start(emulator, platform, durations, outcome="finished"):
    key = {"brightdata": "session_id", "cloudflare": "sessionId", "browserbase": "id"}[platform]
    return [emulator.add_session(platform, duration=d, outcome=outcome)[key] for d in durations]


@pytest.mark.parametrize("platform", ["brightdata", "cloudflare", "browserbase"])
@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_the_gate_opens_when_watched_sessions_end(emulator, platform, mode):
    ids = start(emulator, platform, [20, 30, 40])
    result = run_dag(DAGS, f"wait_{platform}_{mode}", conf={"ids": ids})
    assert result.state == "success", result.task_states
    assert result.task_states["after"] == "success"
    final = result.xcom("wait")
    assert {s["session_id"] for s in final} == set(ids)
    assert {s["status"] for s in final} == {"finished"}
    for sid in ids:  # the sessions really ended before the gate opened
        record = emulator.get_record(platform, sid)
        assert record["closeReasonText" if platform == "cloudflare" else "status"] in (
            "finished",
            "NormalClosure",
            "BrowserIdle",
            "COMPLETED",
        )


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_one_poll_is_one_running_list_call_plus_reads_of_ended_ids(emulator, mode):
    ids = start(emulator, "brightdata", [20] * 25)
    run_dag(DAGS, f"wait_brightdata_{mode}", conf={"ids": ids})
    log = emulator.request_log(platform="brightdata")
    lists = [e for e in log if e["path"] == "/browser_sessions"]
    reads = [e for e in log if e["path"] != "/browser_sessions"]
    assert all(e["query"]["status"] == ["running"] for e in lists)
    assert len(reads) == len(ids)  # each id read once, when it left the running set
    assert len(lists) < 20  # one list call per poll, never one request per watched id per poll


def test_a_failed_session_fails_the_gate_naming_it(emulator, caplog, capfd):
    ids = start(emulator, "brightdata", [20])
    failed = start(emulator, "brightdata", [10], outcome="failed")
    result = run_dag(DAGS, "wait_brightdata_poke", conf={"ids": ids + failed})
    assert result.state == "failed"
    assert result.task_states["wait"] == "failed"
    assert result.task_states["after"] == "upstream_failed"
    out, err = capfd.readouterr()
    logs = caplog.text + out + err  # Airflow 3 task logs reach stdout, Airflow 2 logs reach caplog
    assert f"1 watched session(s) failed: {failed[0]}" in logs


def test_soft_fail_skips_instead(emulator):
    failed = start(emulator, "brightdata", [10], outcome="failed")
    result = run_dag(DAGS, "wait_soft_fail", conf={"ids": failed})
    assert result.task_states["wait"] == "skipped"


def test_fail_on_failed_false_reports_failed_sessions_downstream(emulator):
    ids = start(emulator, "brightdata", [10]) + start(emulator, "brightdata", [20], outcome="failed")
    result = run_dag(DAGS, "wait_report_failed", conf={"ids": ids})
    assert result.state == "success"
    assert sorted(s["status"] for s in result.xcom("wait")) == ["failed", "finished"]


@pytest.mark.parametrize(("policy", "state"), [("finished", "success"), ("failed", "failed")])
def test_missing_ids_follow_the_policy(emulator, policy, state):
    result = run_dag(DAGS, "wait_brightdata_poke", conf={"ids": ["never-existed"], "missing": policy})
    assert result.state == state
    if state == "success":
        assert result.xcom("wait") == [{"session_id": "never-existed", "status": "missing", "counted_as": "finished"}]


def test_cloudflare_forgets_closed_sessions_and_missing_finished_covers_it(airflow_db, browsersessions_connections):
    from airflow_provider_browsersessions.testing import Emulator

    with Emulator(cloudflare_retention=0, speed=10) as forgetful:
        sid = forgetful.add_session("cloudflare", duration=20)["sessionId"]
        result = run_dag(DAGS, "wait_cloudflare_poke", conf={"ids": [sid]}, env=forgetful.connection_env())
    assert result.state == "success"
    assert result.xcom("wait")[0]["status"] == "missing"


@pytest.mark.parametrize("dag_id", ["wait_timeout_poke", "wait_timeout_deferred"])
def test_timeout_is_honoured(emulator, dag_id):
    ids = start(emulator, "brightdata", [None])
    result = run_dag(DAGS, dag_id, conf={"ids": ids})
    assert result.state == "failed"
    assert result.task_states["wait"] == "failed"


def _end_one_by_one_as_the_zone_is_polled(emulator, ids, zone, status="finished"):
    """End each session only after the sensor has polled the zone since the last end: it sees every one run."""

    def polls() -> int:
        return sum(1 for r in emulator.request_log(platform="brightdata") if r["query"].get("api_name") == [zone])

    def run() -> None:
        for session_id in ids:
            seen = polls()
            deadline = time.monotonic() + 120
            while polls() == seen and time.monotonic() < deadline:
                time.sleep(0.05)
            emulator.end_session("brightdata", session_id, status=status)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_drain_waits_until_no_running_session_of_the_zone(emulator):
    # Ended by the test, not by a clock: a loaded machine may start the sensor late, and a session that
    # ended before its first poll was never watched (and rightly not reported).
    ids = [emulator.add_session("brightdata", duration=None, api_name="drain_zone")["session_id"] for _ in range(2)]
    other = emulator.add_session("brightdata", duration=None, api_name="another_zone")["session_id"]
    ender = _end_one_by_one_as_the_zone_is_polled(emulator, ids, "drain_zone")
    result = run_dag(DAGS, "wait_zone_drain")
    ender.join(timeout=5)
    assert result.state == "success"
    assert {s["session_id"] for s in result.xcom("wait")} == set(ids)
    assert emulator.get_record("brightdata", other)["status"] == "running"  # other zones do not hold the gate


def test_a_drained_session_that_fails_right_after_the_first_poke_fails_the_gate(emulator):
    # The first poke (in the worker) sees it running; it fails before the trigger's first poll. The trigger
    # must know it was watched, or the failure would pass unnoticed and the gate would open.
    (session_id,) = [emulator.add_session("brightdata", duration=None, api_name="drain_zone")["session_id"]]
    ender = _end_one_by_one_as_the_zone_is_polled(emulator, [session_id], "drain_zone", status="failed")
    result = run_dag(DAGS, "wait_zone_drain")
    ender.join(timeout=5)
    assert result.state == "failed"
    assert result.task_states["wait"] == "failed"


def test_a_single_watched_id_costs_one_read_per_poke_not_a_walk_of_every_running_session(emulator):
    from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

    emulator.seed_sessions(platform="brightdata", count=400, seed=3)  # ~30 running: a walk would page
    for _ in range(250):
        emulator.add_session("brightdata", duration=None)
    (watched,) = start(emulator, "brightdata", [3600])
    sensor = BrowserSessionsSensor(task_id="one", conn_id="brightdata_default", session_ids=[watched])
    assert sensor.poke({}).is_done is False
    emulator.end_session("brightdata", watched)
    assert sensor.poke({}).is_done is True
    assert [e["path"] for e in emulator.request_log(platform="brightdata")] == [f"/browser_sessions/{watched}"] * 2


def test_a_deferred_drain_returns_only_the_fields_asked_for(emulator):
    ids = [emulator.add_session("brightdata", duration=None, api_name="drain_zone")["session_id"] for _ in range(2)]
    ender = _end_one_by_one_as_the_zone_is_polled(emulator, ids, "drain_zone")
    result = run_dag(DAGS, "wait_zone_drain_fields")
    ender.join(timeout=5)
    assert result.state == "success", result.task_states
    assert sorted(result.xcom("wait"), key=lambda r: r["session_id"]) == sorted(
        ({"session_id": sid, "status": "finished"} for sid in ids), key=lambda r: r["session_id"]
    )


def _drained(emulator, count, *, url_length=20, **sensor_kwargs):
    """A poke-mode drain of ``count`` sessions that the first poke sees running and the second sees ended."""
    from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

    emulator.set_speed(0)
    url = "https://example.com/" + "p" * url_length  # long URLs make large records with few requests
    ids = [
        emulator.add_session("brightdata", duration=None, api_name="big_zone", target_url=url, end_url=url)[
            "session_id"
        ]
        for _ in range(count)
    ]
    sensor = BrowserSessionsSensor(task_id="drain", conn_id="brightdata_default", api_name="big_zone", **sensor_kwargs)
    assert sensor.poke({}).is_done is False
    for session_id in ids:
        emulator.end_session("brightdata", session_id)
    return sensor


def test_a_drain_past_max_xcom_bytes_fails_naming_the_bound(emulator):
    from airflow_provider_browsersessions.exceptions import XComTooLargeError

    sensor = _drained(emulator, 20, max_xcom_bytes=2_000)
    with pytest.raises(XComTooLargeError, match=r"The wait's return value passed max_xcom_bytes=2000 after"):
        sensor.poke({})


def test_a_drain_above_a_megabyte_warns(emulator, caplog, capfd):
    sensor = _drained(emulator, 300, url_length=2000)
    with caplog.at_level("WARNING"):
        final = sensor.poke({}).xcom_value
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    size = len(json.dumps(final).encode())
    assert size > 1_000_000
    assert f"The return value is {size / 1_000_000:.1f} MB of JSON (300 session(s)), above 1.0 MB" in logs
    assert "fields=[...]" in logs


def test_a_metadata_drain_waits_only_for_the_sessions_tagged_for_it(emulator):
    tagged = [
        emulator.add_session("browserbase", duration=d, userMetadata={"airflow_tag": "t1"})["id"] for d in (20, 30)
    ]
    emulator.add_session("browserbase", duration=None, userMetadata={"airflow_tag": "other"})  # runs forever
    result = run_dag(DAGS, "wait_metadata_drain", conf={"tag": "t1"})
    assert result.state == "success", result.task_states
    assert {s["session_id"] for s in result.xcom("wait")} <= set(tagged)  # what it saw end: tagged ones only
    lists = [e for e in emulator.request_log(platform="browserbase") if e["path"] == "/v1/sessions"]
    assert lists
    assert all(e["query"]["q"] == ["user_metadata['airflow_tag']:'t1'"] for e in lists)
