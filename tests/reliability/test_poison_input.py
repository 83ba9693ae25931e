"""One poisoned record, header or error body harms only itself: the page, the listing and every wait go on."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_walk_bounds import logged  # the same directory: hook log lines reach caplog or stdout by Airflow version

from airflow_provider_browsersessions.exceptions import (
    ConnectionConfigError,
    InvalidQueryError,
    MalformedResponseError,
    ServerError,
)
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.transport import RetryPolicy
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger
from airflow_provider_browsersessions.waiting import skip_failed_poll

NO_RETRY = RetryPolicy(max_retries=0, max_wait=1.0)
MODES = ["sync", "async"]
GOOD = {
    "session_id": "good",
    "status": "finished",
    "timestamp": "2020-01-01T00:00:00Z",  # older than every poisoned record's time: the list is newest first
    "duration": 3,
    "navigations": 2,
}
EPOCH = 1_765_000_000  # 2025-12-06T05:46:40Z

# (field, value as sent, attribute of the session, what it holds). Python's JSON writer sends 10**400 as
# its 401 digits, NaN and Infinity as the bare words its reader (and so the provider) accepts.
BRIGHTDATA_POISON = [
    ("navigations", "3", "navigations", 3),
    ("navigations", "3x", "navigations", None),
    ("navigations", -1, "navigations", None),
    ("navigations", 10**400, "navigations", None),
    ("bandwidth", 10**400, "bandwidth", None),
    ("bandwidth", "12 kB", "bandwidth", None),
    ("duration", "5.0", "duration", 5.0),
    ("duration", 10**400, "duration", None),
    ("duration", math.nan, "duration", None),
    ("duration", math.inf, "duration", None),
    ("duration", 1e300, "duration", None),
    ("duration", -5, "duration", None),
    ("duration", "3s", "duration", None),
    ("timestamp", EPOCH, "started_at", "2025-12-06T05:46:40+00:00"),
    ("timestamp", EPOCH * 1000, "started_at", "2025-12-06T05:46:40+00:00"),
    ("timestamp", "tuesday", "started_at", None),
    ("timestamp", "12:00", "started_at", None),  # a time of no day: pendulum would make it today
    ("timestamp", 10**400, "started_at", None),
    ("timestamp", "9999-12-31T23:59:59Z", "ended_at", None),
    ("api_name", ["zone"], "api_name", None),
    ("error", [[[[[]]]]], "error_message", "[[[[[]]]]]"),
]
CLOUDFLARE_POISON = [
    ("startTime", "2025-12-16T18:33:41Z", "started_at", "2025-12-16T18:33:41+00:00"),
    ("startTime", "now", "started_at", None),
    ("startTime", math.nan, "started_at", None),
    ("startTime", math.inf, "started_at", None),
    ("startTime", 1e20, "started_at", None),
    ("startTime", 10**400, "started_at", None),
    ("startTime", -(10**400), "started_at", None),
    ("endTime", -1e20, "ended_at", None),
    ("closeReason", [1], "close_reason", None),
    ("closeReasonText", {"a": 1}, "close_reason", None),
]


@pytest.fixture
def emulator(browsersessions_connections):
    return browsersessions_connections.emulator


def listed(hook, mode: str, **filters) -> list:
    if mode == "sync":
        return hook.list_sessions(**filters)

    async def listing():
        try:
            return [s async for s in hook.aiter_sessions(SessionQuery.build(**filters))]
        finally:
            await hook.aclose()

    return asyncio.run(listing())


def value_of(session, attribute: str):
    value = getattr(session, attribute)
    return value.isoformat() if hasattr(value, "isoformat") else value


def bright_data_page(*records) -> str:
    return json.dumps({"sessions": list(records), "total": len(records), "pagination": {"has_more": False}})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("field", "sent", "attribute", "kept"), BRIGHTDATA_POISON, ids=lambda v: str(v)[:20])
def test_a_bright_data_field_that_does_not_parse_harms_only_itself(emulator, mode, field, sent, attribute, kept):
    poisoned = {**GOOD, "session_id": "poisoned", field: sent}
    emulator.script_faults([{"kind": "body", "body": bright_data_page(poisoned, GOOD)}], platform="brightdata")
    sessions = {s.session_id: s for s in listed(BrightDataBrowserHook(retry=NO_RETRY), mode)}
    assert sorted(sessions) == ["good", "poisoned"]
    assert value_of(sessions["poisoned"], attribute) == kept
    assert sessions["good"].navigations == 2
    assert sessions["good"].duration == 3.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("field", "sent", "attribute", "kept"), CLOUDFLARE_POISON, ids=lambda v: str(v)[:20])
def test_a_cloudflare_field_that_does_not_parse_harms_only_itself(emulator, mode, field, sent, attribute, kept):
    good = {"sessionId": "good", "startTime": EPOCH * 1000}
    emulator.script_faults(
        [{"kind": "body", "body": json.dumps([good, {**good, "sessionId": "poisoned", field: sent}])}],
        platform="cloudflare",
    )
    sessions = {s.session_id: s for s in listed(CloudflareBrowserRenderingHook(retry=NO_RETRY), mode)}
    assert sorted(sessions) == ["good", "poisoned"]
    assert value_of(sessions["poisoned"], attribute) == kept
    assert value_of(sessions["good"], "started_at") == "2025-12-06T05:46:40+00:00"


def test_odd_fields_are_one_warning_per_field_and_listing_however_many_records(emulator, caplog, capfd):
    records = [GOOD, *({**GOOD, "session_id": f"p{i}", "navigations": "many"} for i in range(37))]
    records.append({**GOOD, "session_id": "late", "duration": "long"})
    emulator.script_faults([{"kind": "body", "body": bright_data_page(*records)}], platform="brightdata")
    hook = BrightDataBrowserHook(retry=NO_RETRY)
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        assert len(hook.list_sessions()) == 39
    text = logged(caplog, capfd, "not understood")
    assert text.count("not understood in") == 2
    assert "field 'duration' not understood in 1 record(s) of this listing, e.g. session 'late'" in text
    assert "field 'navigations' not understood in 37 record(s) of this listing, e.g. session 'p0'" in text


@pytest.mark.parametrize("mode", MODES)
def test_a_record_without_a_usable_id_is_dropped_and_the_rest_kept(emulator, caplog, capfd, mode):
    body = bright_data_page(GOOD, {"status": "finished"}, 7, {**GOOD, "session_id": ".."}, {**GOOD, "session_id": 5})
    emulator.script_faults([{"kind": "body", "body": body}], platform="brightdata")
    hook = BrightDataBrowserHook(retry=NO_RETRY)
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        sessions = listed(hook, mode)
    assert [s.session_id for s in sessions] == ["good"]
    text = logged(caplog, capfd, "not understood")
    assert text.count("not understood in") == 1
    assert "field 'session_id' not understood in 4 record(s)" in text
    assert "record dropped" in text


def test_a_running_list_with_a_record_it_cannot_identify_is_not_used_but_retried(emulator):
    # A drain opens when nothing runs: a running record left out for want of an id could open it early.
    body = bright_data_page({"status": "running"})
    emulator.script_faults([{"kind": "body", "body": body}], platform="brightdata")
    with pytest.raises(MalformedResponseError, match="no usable id") as caught:
        BrightDataBrowserHook(retry=NO_RETRY).list_sessions(status="running")
    assert skip_failed_poll(caught.value, log=logging.getLogger("test"), what="Poll")


def first_event(trigger: BrowserSessionsTrigger):
    async def run():
        async for event in trigger.run():
            return event.payload
        return None

    return asyncio.run(asyncio.wait_for(run(), 60))


def test_a_deferred_wait_goes_on_past_a_poisoned_record_in_the_running_list(frozen_emulator):
    watched = frozen_emulator.add_session("brightdata", duration=None)["session_id"]
    frozen_emulator.end_session("brightdata", watched)
    poisoned = {"session_id": "other", "status": "running", "navigations": "3", "duration": "5.0", "timestamp": EPOCH}
    frozen_emulator.script_faults([{"kind": "body", "body": bright_data_page(poisoned)}], platform="brightdata")
    trigger = BrowserSessionsTrigger(
        conn_id="brightdata_default", session_ids=[watched], filters=SessionQuery().to_dict(), poll_interval=0.05
    )
    payload = first_event(trigger)
    assert payload["status"] == "success", payload


def test_an_error_body_nested_60000_deep_is_an_api_error_and_a_wait_skips_that_poll(frozen_emulator):
    nested = "[" * 60_000 + "]" * 60_000
    frozen_emulator.script_faults([{"kind": "body", "status": 500, "body": nested}], platform="cloudflare")
    with pytest.raises(ServerError, match=r"HTTP 500: \[\[\[") as caught:
        CloudflareBrowserRenderingHook(retry=NO_RETRY).list_sessions()
    assert len(str(caught.value)) < 1200
    # A deferred wait on an ended session: the poisoned answer is skipped, the next poll decides.
    frozen_emulator.script_faults([{"kind": "body", "status": 500, "body": nested}], platform="cloudflare")
    trigger = BrowserSessionsTrigger(
        conn_id="cloudflare_browser_rendering_default",
        session_ids=["gone"],
        filters=SessionQuery().to_dict(),
        poll_interval=0.05,
    )
    payload = first_event(trigger)
    assert payload["status"] == "success", payload


# -- rate-limit headers a broken proxy sends ------------------------------------------------------------


class _Answers(BaseHTTPRequestHandler):
    headers_to_send: dict[str, str] = {}
    body = bright_data_page(GOOD).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        for name, value in self.headers_to_send.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_BD_PROXY",
        json.dumps({"conn_type": "brightdata", "host": f"http://127.0.0.1:{server.server_port}", "password": "k"}),
    )
    yield _Answers
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "ratelimit",
    ['"default";r=1.2.3;t=5', '"default";r=0;t=1.2.3', '"default";r=0;t=99999999999', "r=..;t=.", "r=0;t=1e400"],
)
def test_a_garbage_ratelimit_header_on_a_200_is_ignored(proxy, monkeypatch, mode, ratelimit):
    monkeypatch.setattr(proxy, "headers_to_send", {"Ratelimit": ratelimit, "Ratelimit-Policy": "q=1.2.3;w=x"})
    hook = BrightDataBrowserHook(conn_id="bd_proxy", retry=NO_RETRY)
    assert [s.session_id for s in listed(hook, mode)] == ["good"]
    assert hook.client.get_conn()._pacer.delay() == 0.0  # nothing was learned from the garbage


# -- ids that cannot be a path segment -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("session_id", [".", ".."])
def test_dot_ids_are_refused_naming_the_parameter_before_any_request(emulator, mode, session_id):
    for hook in (BrightDataBrowserHook(retry=NO_RETRY), CloudflareBrowserRenderingHook(retry=NO_RETRY)):
        calls = [hook.get_session] if mode == "sync" else [lambda sid, h=hook: asyncio.run(h.aget_session(sid))]
        if isinstance(hook, CloudflareBrowserRenderingHook):
            calls.append(
                hook.close_session if mode == "sync" else lambda sid, h=hook: asyncio.run(h.aclose_session(sid))
            )
        for call in calls:
            with pytest.raises(InvalidQueryError, match=r"'session_id'.*path steps"):
                call(session_id)
    assert emulator.request_count() == 0


def test_dot_ids_in_a_sensor_are_refused_naming_session_ids():
    sensor = BrowserSessionsSensor(task_id="wait", conn_id="brightdata_default", session_ids=["ok", ".."])
    with pytest.raises(InvalidQueryError, match="'session_ids'"):
        _ = sensor.plan


def test_a_dot_account_id_is_a_connection_problem(monkeypatch, emulator):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CF_DOTS",
        json.dumps(
            {
                "conn_type": "cloudflare_browser_rendering",
                "host": emulator.cloudflare_base_url,
                "password": emulator.cloudflare_api_token,
                "extra": {"account_id": ".."},
            }
        ),
    )
    with pytest.raises(ConnectionConfigError, match="account_id"):
        CloudflareBrowserRenderingHook(conn_id="cf_dots").list_sessions()
    assert emulator.request_count() == 0
