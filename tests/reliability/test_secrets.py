"""Canary credentials go through every code path and never come out: logs, exceptions, reprs, XCom, the metadata DB."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from airflow_harness import run_dag
from conftest import AIRFLOW_HOME

from airflow_provider_browsersessions.exceptions import ApiError, BrowserSessionsError, TransportError
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.browserbase import BrowserbaseHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.testing import Emulator
from airflow_provider_browsersessions.transport import RetryPolicy
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

CANARIES = {
    "brightdata": "CANARY-bd-7f3a9c2e51",
    "cloudflare_token": "CANARY-cf-token-0b8d4e",
    "cloudflare_global_key": "CANARY-cf-global-6a1f",
    "wrong": "CANARY-wrong-key-99d2",
    "browserbase": "CANARY-bb-key-31c7e0",
    # Browserbase's read gives away the live browser: connectUrl, seleniumRemoteUrl and signingKey hold this.
    "browserbase_live": "CANARY-bb-live",
}
#: A Browserbase session the canary DAG waits for by id (its read carries the live-browser credentials).
BB_SESSION = "bb-canary-session"
FAST = RetryPolicy(max_retries=2, max_wait=2.0, backoff=0.01, max_backoff=0.02)
DAGS = Path(__file__).parent / "dags" / "secrets_dags.py"


def assert_clean(text: str, where: str) -> None:
    leaked = [name for name, canary in CANARIES.items() if canary in text]
    assert not leaked, f"{leaked} leaked into {where}"
    # Not even a fragment: every canary starts with this marker, so a secret cut short is caught too.
    assert "CANARY" not in text, f"part of a canary leaked into {where}: ...{text[text.find('CANARY') - 40 :][:90]}..."


def exception_text(error: BaseException) -> str:
    """The error, its repr, its args and every chained cause: all a log or a UI could show."""
    parts = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        parts += [str(error), repr(error), repr(error.args), repr(vars(error))]
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


@pytest.fixture
def emulator(monkeypatch):
    with Emulator(
        speed=0,
        brightdata_api_key=CANARIES["brightdata"],
        cloudflare_api_token=CANARIES["cloudflare_token"],
        cloudflare_global_key=CANARIES["cloudflare_global_key"],
        browserbase_api_key=CANARIES["browserbase"],
    ) as emulator:
        for name, value in emulator.connection_env().items():
            monkeypatch.setenv(name, value)
        legacy = {
            "conn_type": "cloudflare_browser_rendering",
            "host": emulator.cloudflare_base_url,
            "login": emulator.cloudflare_email,
            "password": CANARIES["cloudflare_global_key"],
            "extra": {"account_id": emulator.cloudflare_account_id},
        }
        wrong = {"conn_type": "brightdata", "host": emulator.brightdata_base_url, "password": CANARIES["wrong"]}
        monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_LEGACY", json.dumps(legacy))
        monkeypatch.setenv("AIRFLOW_CONN_BRIGHTDATA_WRONG_KEY", json.dumps(wrong))
        emulator.seed_sessions(platform="both", count=30, seed=12)
        for index, session in enumerate(emulator.store.sessions["browserbase"].values()):
            session.fields["token"] = f"{CANARIES['browserbase_live']}-{index}"
        emulator.add_session(
            "browserbase",
            session_id=BB_SESSION,
            started_at=emulator.now() - 100,
            duration=10,
            token=f"{CANARIES['browserbase_live']}-dag",
        )
        yield emulator


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def log_text(logs) -> str:
    return "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in logs.records)


def closed_port() -> int:
    """A loopback port nobody listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_hooks_on_every_path(emulator, logs):
    hooks = [
        BrightDataBrowserHook(retry=FAST),
        CloudflareBrowserRenderingHook(retry=FAST),
        CloudflareBrowserRenderingHook(conn_id="cloudflare_legacy", retry=FAST),
        BrowserbaseHook(retry=FAST),
    ]
    errors: list[BaseException] = []
    for hook in hooks:
        sessions = hook.list_sessions()
        assert sessions
        reads = [hook.get_session(s.session_id) for s in sessions[:5]]
        assert None not in reads
        # A read's whole record, as XCom would carry it with include_raw (Browserbase's holds the live browser).
        assert_clean(json.dumps([r.to_dict(include_raw=True) for r in reads if r is not None]), "read sessions")
        assert hook.test_connection()[0]
        assert_clean(repr(hook) + repr(hook.settings) + repr(hook.get_conn()) + repr(sessions), "reprs")
        assert_clean(json.dumps([s.to_dict(include_raw=True) for s in sessions]), "session dicts")
        # Every error class: retried 429 / 500 / 503 / cut bodies / bad JSON until the budget is gone, then the
        # ones never retried: 400, 403, 404 and a body of the wrong shape.
        for kind in ("429", "500", "503", "close_mid_body", "malformed_json", "html_error"):
            emulator.script_faults([{"kind": kind, "retry_after": 0.01}] * 3)
            with pytest.raises(ApiError) as caught:
                hook.list_sessions()
            errors.append(caught.value)
        for status, body in ((400, '{"error": "bad"}'), (403, '{"error": "no"}'), (404, "{}"), (200, '{"x": 1}')):
            emulator.script_faults([{"kind": "body", "status": status, "body": body}])
            with pytest.raises(ApiError) as caught:
                hook.list_sessions()
            errors.append(caught.value)
        emulator.clear_faults()
        with pytest.raises(BrowserSessionsError) as caught:
            hook.list_sessions(sort="sideways")
        errors.append(caught.value)

    wrong = BrightDataBrowserHook(conn_id="brightdata_wrong_key", retry=FAST)
    with pytest.raises(ApiError) as caught:
        wrong.list_sessions()
    errors.append(caught.value)
    ok, message = wrong.test_connection()
    assert not ok
    assert_clean(message, "test_connection message")

    for error in errors:
        assert_clean(exception_text(error), f"exception {type(error).__name__}")
    assert_clean("\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in logs.records), "logs")
    assert len(logs.records) > 10  # the retries were logged: the check above had something to look at
    assert_clean(json.dumps(emulator.request_log()), "the emulator's request log")


def test_async_paths_and_the_trigger(emulator, logs):
    trigger = BrowserSessionsTrigger(
        conn_id="cloudflare_legacy", session_ids=None, filters=SessionQuery().to_dict(), poll_interval=0.05
    )
    classpath, kwargs = trigger.serialize()
    assert_clean(json.dumps(kwargs) + classpath + repr(trigger), "the trigger's serialized kwargs")

    async def scenario():
        hook = CloudflareBrowserRenderingHook(conn_id="cloudflare_legacy", retry=FAST)
        emulator.script_faults([{"kind": "503"}] * 3, platform="cloudflare")
        with pytest.raises(ApiError) as caught:
            [s async for s in hook.aiter_sessions(SessionQuery())]
        await hook.aclose()
        for record in emulator.sessions("cloudflare"):
            if not record.get("endTime"):
                emulator.end_session("cloudflare", record["sessionId"])
        event = await asyncio.wait_for(anext(trigger.run()), 30)
        return caught.value, event

    error, event = asyncio.run(scenario())
    assert event.payload["status"] == "success"
    assert_clean(exception_text(error) + json.dumps(event.payload), "async error and trigger event")
    assert_clean("\n".join(r.getMessage() for r in logs.records), "logs")


ECHO_BODIES = {
    # A proxy or an API that echoes the request's credentials back in its error page, at every place the
    # 300-character cut of error texts can fall: before, inside and after the echoed secret.
    "html": lambda secret, pad: f"<html><body><pre>{'x' * pad} Authorization: Bearer {secret}</pre></body></html>",
    "json": lambda secret, pad: json.dumps({"error": f"{'y' * pad} bad key {secret} for this account"}),
}


@pytest.mark.parametrize("shape", sorted(ECHO_BODIES))
def test_credentials_echoed_back_in_error_bodies_are_redacted_wherever_the_text_is_cut(emulator, logs, shape):
    hooks = {
        "brightdata": (BrightDataBrowserHook(retry=FAST), CANARIES["brightdata"]),
        "cloudflare": (CloudflareBrowserRenderingHook(retry=FAST), CANARIES["cloudflare_token"]),
        "legacy": (
            CloudflareBrowserRenderingHook(conn_id="cloudflare_legacy", retry=FAST),
            CANARIES["cloudflare_global_key"],
        ),
    }
    errors: list[BaseException] = []
    for name, (hook, secret) in hooks.items():
        platform = "brightdata" if name == "brightdata" else "cloudflare"
        for pad in range(250, 300, 2):
            body = ECHO_BODIES[shape](secret, pad)
            # A 401 fails at once; a 503 is retried (the retry log line carries the text) and then given up.
            for status in (401, 503) if pad % 10 == 0 else (401,):
                faults = [{"kind": "body", "status": status, "body": body, "content_type": "text/html"}] * 3
                emulator.script_faults(faults, platform=platform)
                with pytest.raises(ApiError) as caught:
                    hook.list_sessions()
                errors.append(caught.value)
                emulator.clear_faults()
    assert len(errors) == 3 * (25 + 5)
    assert any("***" in str(error) for error in errors)  # the echo reached the message, redacted
    for error in errors:
        assert_clean(exception_text(error), f"exception {type(error).__name__}")
    assert_clean(log_text(logs), "logs")

    async def through_the_async_transport():
        hook = BrightDataBrowserHook(retry=FAST)
        body = ECHO_BODIES[shape](CANARIES["brightdata"], 270)
        emulator.script_faults([{"kind": "body", "status": 401, "body": body}], platform="brightdata")
        try:
            with pytest.raises(ApiError) as caught:
                [s async for s in hook.aiter_sessions(SessionQuery())]
        finally:
            await hook.aclose()
        return caught.value

    assert_clean(exception_text(asyncio.run(through_the_async_transport())), "async exception")


def test_an_echoed_credential_in_the_test_connection_message_is_redacted(emulator):
    body = json.dumps({"error": f"{'z' * 265} key {CANARIES['brightdata']} is not valid"})
    emulator.script_faults([{"kind": "body", "status": 401, "body": body}], platform="brightdata")
    ok, message = BrightDataBrowserHook().test_connection()
    assert not ok
    assert "rejected the API key" in message
    assert_clean(message, "test_connection message")


def test_transport_failures_refused_and_timed_out_connections(emulator, monkeypatch, logs):
    dead = {"conn_type": "brightdata", "host": f"http://127.0.0.1:{closed_port()}", "password": CANARIES["brightdata"]}
    slow = {
        "conn_type": "cloudflare_browser_rendering",
        "host": emulator.cloudflare_base_url,
        "password": CANARIES["cloudflare_token"],
        "extra": {"account_id": emulator.cloudflare_account_id, "timeout": 0.2},
    }
    monkeypatch.setenv("AIRFLOW_CONN_BRIGHTDATA_DEAD", json.dumps(dead))
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_SLOW", json.dumps(slow))
    refused = BrightDataBrowserHook(conn_id="brightdata_dead", retry=FAST)
    timing_out = CloudflareBrowserRenderingHook(conn_id="cloudflare_slow", retry=FAST)
    # Every request to the slow connection outlasts its 0.2 s read timeout: 3 + 2 + 3 attempts below.
    emulator.script_faults([{"kind": "latency", "seconds": 0.5}] * 8, platform="cloudflare")
    errors: list[BaseException] = []
    for hook in (refused, timing_out):
        with pytest.raises(TransportError) as caught:
            hook.list_sessions()
        errors.append(caught.value)
        ok, message = hook.test_connection()
        assert not ok
        assert_clean(message, "test_connection message")

        async def walk(hook=hook):
            try:
                return [s async for s in hook.aiter_sessions(SessionQuery())]
            finally:
                await hook.aclose()

        with pytest.raises(TransportError) as caught:
            asyncio.run(walk())
        errors.append(caught.value)
    # The emulator answers (too late) each timed-out request in its own thread: let those finish first.
    deadline = time.monotonic() + 10
    while emulator.request_count(platform="cloudflare") < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.request_count(platform="cloudflare") == 8  # every request to the slow connection timed out
    assert "refused" in str(errors[0]).lower()
    assert "timed out" in str(errors[2]).lower() or "timeout" in str(errors[2]).lower()
    for error in errors:
        assert error.status is None
        assert "gave up after 3 attempt(s)" in str(error)
        assert_clean(exception_text(error), f"exception {type(error).__name__}")
    assert_clean(log_text(logs), "logs")


def test_operators_and_sensors_reprs_and_template_fields(emulator):
    operator = ListBrowserSessionsOperator(task_id="t", conn_id="brightdata_default", status="failed")
    sensor = BrowserSessionsSensor(task_id="s", conn_id="cloudflare_legacy")
    for task in (operator, sensor):
        fields = {name: getattr(task, name) for name in task.template_fields}
        assert_clean(repr(task) + repr(fields) + repr(task.hook), f"{task.task_id}")


@pytest.mark.system
def test_a_real_dag_run_leaves_no_secret_in_the_metadata_db_xcom_or_logs(emulator, airflow_db, logs, capfd):
    for record in emulator.sessions("brightdata"):
        if record["status"] == "running":
            emulator.end_session("brightdata", record["session_id"])
    for record in emulator.sessions("cloudflare"):
        if not record.get("endTime"):
            emulator.end_session("cloudflare", record["sessionId"])
    for record in emulator.sessions("browserbase"):
        if "endedAt" not in record:
            emulator.end_session("browserbase", record["id"])

    result = run_dag(DAGS, "secrets_canary")

    assert result.task_states["list_brightdata"] == "success"
    assert result.task_states["list_wrong_key"] == "failed"  # the failure path ran too
    assert result.task_states["wait_deferred"] == "success"
    assert result.task_states["wait_browserbase"] == "success"
    assert result.xcom("wait_browserbase")[0]["session_id"] == BB_SESSION  # read, with its live credentials
    assert_clean(repr(result.xcoms), "XCom")
    assert result.xcom("list_brightdata")  # there was XCom to look at
    out, err = capfd.readouterr()
    # dag.test() writes no task log files: Airflow 3 sends task logs to stdout, Airflow 2.11 through logging.
    task_logs = log_text(logs) + out + err
    assert "rejected" in task_logs or "Invalid credentials" in task_logs  # the wrong key's failure was logged
    assert_clean(task_logs, "task logs")
    # Every row of every table of the metadata DB: rendered template fields, XCom, events, trigger rows.
    with sqlite3.connect(AIRFLOW_HOME / "airflow.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(repr(db.execute(f'SELECT * FROM "{table}"').fetchall()) for table in tables)
    assert "rendered_task_instance_fields" in tables
    assert "list_wrong_key" in dump
    assert_clean(dump, "the metadata DB")
    rendered = dump_rows(AIRFLOW_HOME / "airflow.db", "rendered_task_instance_fields", "secrets_canary")
    assert len(rendered) >= 6  # every task's rendered template fields were stored, and checked above


def dump_rows(db_path: Path, table: str, dag_id: str) -> list[tuple]:
    with sqlite3.connect(db_path) as db:
        return db.execute(f'SELECT * FROM "{table}" WHERE dag_id = ?', (dag_id,)).fetchall()
