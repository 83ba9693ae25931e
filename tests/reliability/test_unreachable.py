"""A rejected key fails at once; a host that never answers fails after ``unreachable_timeout``; short outages wait."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from airflow_harness import run_dag

from airflow_provider_browsersessions.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_browsersessions.exceptions import HostUnreachableError, TransportError
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger
from airflow_provider_browsersessions.waiting import PermanentWaitError, WaitPlan

DAGS = Path(__file__).parent / "dags" / "unreachable_dags.py"


@pytest.fixture
def emulator(frozen_emulator):
    return frozen_emulator


def closed_port() -> int:
    """A loopback port nobody listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def brightdata_at(port: int, password: str = "k") -> str:
    # No retries inside a poll: each poll is one connection, so polls are what the bound counts.
    return json.dumps(
        {
            "conn_type": "brightdata",
            "host": f"http://127.0.0.1:{port}",
            "password": password,
            "extra": {"max_retries": 0},
        }
    )


class FlakyHost:
    """
    A loopback port in front of the emulator that can go down: while down, each connection is reset as soon
    as it is accepted (the client gets no answer at all); while up, bytes are passed both ways.
    """

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.up = True
        self.resets = 0
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def go_down(self) -> None:
        self.up = False
        for sock in self._open:  # pooled keep-alive connections die with the host
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self.up:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
                client.close()
                self.resets += 1
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self._server.close()
        self.go_down()


@pytest.fixture
def flaky(emulator, monkeypatch):
    host = FlakyHost(emulator.port)
    key = json.loads(emulator.connection_env()["AIRFLOW_CONN_BRIGHTDATA_DEFAULT"])["password"]
    monkeypatch.setenv("AIRFLOW_CONN_BRIGHTDATA_FLAKY", brightdata_at(host.port, key))
    yield host
    host.close()


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


async def first_event(trigger: BrowserSessionsTrigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def wait_trigger(conn_id: str, session_id: str, *, unreachable_timeout: float | None) -> BrowserSessionsTrigger:
    return BrowserSessionsTrigger(
        conn_id=conn_id,
        session_ids=[session_id],
        filters=SessionQuery().to_dict(),
        poll_interval=0.05,
        end_time=time.time() + 120,
        unreachable_timeout=unreachable_timeout,
    )


# -- a host that gives no answer -------------------------------------------------------------------------------


@pytest.mark.system
@pytest.mark.timeout(180)
def test_a_sensor_whose_host_refuses_connections_fails_after_its_bound_naming_the_host_in_every_mode(
    airflow_db, caplog, capfd
):
    port = closed_port()
    result = run_dag(DAGS, "unreachable_gates", env={"AIRFLOW_CONN_BRIGHTDATA_REFUSED": brightdata_at(port)})
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert result.task_states == {"wait_poke": "failed", "wait_reschedule": "failed", "wait_deferrable": "failed"}
    assert f"No answer from the host 127.0.0.1:{port} for" in logs
    assert "past the sensor's unreachable_timeout of 1 s" in logs
    assert "Connection refused" in logs or "connection attempts failed" in logs  # the last error, as the client said
    assert "Check the Base URL (Host field) and that this host is reachable" in logs
    if AIRFLOW_V_3_3_PLUS:
        # Every mode kept the bound: none waited for its 20 s timeout.
        assert "Timed out waiting for browser sessions" not in logs
    else:
        # Each reschedule poke is a new process, with no task state store to count in: the timeout ends it.
        assert "Timed out waiting for browser sessions (1 watched session id(s) (a)): the last poll failed" in logs


def test_a_deferred_wait_on_a_host_that_refuses_connections_fails_after_its_bound_with_the_worker_s_hint(
    emulator, monkeypatch
):
    port = closed_port()
    monkeypatch.setenv("AIRFLOW_CONN_BRIGHTDATA_REFUSED", brightdata_at(port))
    payload = asyncio.run(first_event(wait_trigger("brightdata_refused", "a", unreachable_timeout=0.3)))
    assert payload["status"] == "error"
    assert payload["error"] == "HostUnreachableError"
    assert payload["fail_fast"] is False  # the host may come back: the task's retries apply
    message = payload["message"]
    assert f"No answer from the host 127.0.0.1:{port} for" in message
    # The same words as a worker's error: the connection, the host and what to check.
    assert f"Connection 'brightdata_refused', host 127.0.0.1:{port}: Check the Base URL (Host field)" in message
    sensor = BrowserSessionsSensor(task_id="wait", conn_id="brightdata_refused", session_ids=["a"], deferrable=True)
    with pytest.raises(HostUnreachableError, match=rf"127\.0\.0\.1:{port}"):
        sensor.execute_complete({}, payload)


def test_an_outage_shorter_than_the_bound_does_not_fail_a_poking_sensor(emulator, flaky):
    sid = emulator.add_session("brightdata", duration=None)["session_id"]
    sensor = BrowserSessionsSensor(
        task_id="wait", conn_id="brightdata_flaky", session_ids=[sid], unreachable_timeout=3600
    )
    flaky.go_down()
    for _ in range(3):
        assert sensor.poke({}).is_done is False  # skipped, the wait goes on
    assert flaky.resets == 3  # three polls got no answer at all
    flaky.up = True
    assert sensor.poke({}).is_done is False  # the session still runs
    emulator.end_session("brightdata", sid, status="finished")
    done = sensor.poke({})
    assert done.is_done is True
    assert [s["status"] for s in done.xcom_value] == ["finished"]


@pytest.mark.timeout(120)
def test_an_outage_shorter_than_the_bound_does_not_fail_a_deferred_wait(emulator, flaky):
    sid = emulator.add_session("brightdata", duration=None)["session_id"]
    flaky.go_down()

    def outage_then_recovery() -> None:
        wait_until(lambda: flaky.resets >= 5, "five polls without an answer")
        flaky.up = True
        emulator.end_session("brightdata", sid, status="finished")

    thread = threading.Thread(target=outage_then_recovery, daemon=True)
    thread.start()
    payload = asyncio.run(first_event(wait_trigger("brightdata_flaky", sid, unreachable_timeout=3600)))
    thread.join(timeout=5)
    assert flaky.resets >= 5
    assert payload["status"] == "success", payload
    assert [s["session_id"] for s in payload["sessions"]] == [sid]


# -- a rejected key: no retries, in operators and in every sensor mode -----------------------------------------


@pytest.mark.system
@pytest.mark.timeout(180)
def test_a_rejected_key_fails_operators_and_sensors_in_every_mode_without_using_their_retries(
    airflow_db, emulator, caplog, capfd
):
    wrong = json.dumps({"conn_type": "brightdata", "host": emulator.brightdata_base_url, "password": "not-the-key"})
    emulator.clear_log()
    result = run_dag(DAGS, "wrong_key_no_retries", env={"AIRFLOW_CONN_BRIGHTDATA_WRONG_KEY": wrong})
    assert result.task_states == {
        "list": "failed",
        "wait_poke": "failed",
        "wait_reschedule": "failed",
        "wait_deferrable": "failed",
    }
    refused = [entry["path"] for entry in emulator.request_log(platform="brightdata") if entry["status"] == 401]
    # One try each (a 401 is never retried within a try either): before, three tries, three times the requests.
    assert sorted(refused) == [
        "/browser_sessions",
        "/browser_sessions/deferrable",
        "/browser_sessions/poke",
        "/browser_sessions/reschedule",
    ]


def test_a_rejected_key_met_in_the_triggerer_fails_the_task_without_retries_naming_the_field(emulator, monkeypatch):
    wrong = json.dumps({"conn_type": "brightdata", "host": emulator.brightdata_base_url, "password": "not-the-key"})
    monkeypatch.setenv("AIRFLOW_CONN_BRIGHTDATA_WRONG_KEY", wrong)
    payload = asyncio.run(first_event(wait_trigger("brightdata_wrong_key", "a", unreachable_timeout=None)))
    assert payload["status"] == "error"
    assert payload["fail_fast"] is True
    assert "HTTP 401" in payload["message"]
    assert "Connection 'brightdata_wrong_key'" in payload["message"]
    assert "Check the Password field" in payload["message"]  # the hint a worker's error carries
    assert "not-the-key" not in json.dumps(payload)
    sensor = BrowserSessionsSensor(task_id="wait", conn_id="brightdata_wrong_key", session_ids=["a"], deferrable=True)
    with pytest.raises(PermanentWaitError, match="Check the Password field"):
        sensor.execute_complete({}, payload)


@pytest.mark.parametrize("value", ["soon", -1, [1]])
def test_a_trigger_row_with_an_unreachable_timeout_that_is_not_a_duration_ends_with_an_error_event(emulator, value):
    trigger = wait_trigger("brightdata_default", "a", unreachable_timeout=value)  # built as a triggerer does: no raise
    payload = asyncio.run(first_event(trigger))
    assert payload["status"] == "error"
    assert "unreachable_timeout" in payload["message"]
    assert payload["fail_fast"] is True


def test_a_trigger_counts_polls_without_an_answer_from_its_own_start_not_from_a_carried_memory(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BRIGHTDATA_REFUSED", brightdata_at(closed_port()))
    query = SessionQuery.build(api_name="blip")
    earlier = WaitPlan(query=query, session_ids=None)
    # The worker's first poke got no answer a day ago; every poll since was answered, then the triggerer restarted.
    earlier.poll_failed(
        TransportError(platform="Bright Data", method="GET", path="/", status=None, message="x"),
        log=logging.getLogger(__name__),
        now=time.time() - 86400,
    )
    trigger = BrowserSessionsTrigger(
        conn_id="brightdata_refused",
        session_ids=None,
        filters=query.to_dict(),
        poll_interval=0.05,
        end_time=time.time() + 1,
        memory=earlier.to_state(),
        unreachable_timeout=3600,
    )
    payload = asyncio.run(first_event(trigger))
    assert payload["status"] == "timeout", payload  # an hour's bound, not a day-old count: the poll was skipped
