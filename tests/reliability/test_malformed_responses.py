"""Bodies that are not what the API documents become an ApiError naming platform and endpoint, never a deep crash."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_browsersessions.exceptions import ApiError, MalformedResponseError, ServerError, TransportError
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.transport import RetryPolicy
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

NO_RETRY = RetryPolicy(max_retries=0, max_wait=1.0)
ONE_RETRY = RetryPolicy(max_retries=1, max_wait=1.0, backoff=0.01, max_backoff=0.01)
GOOD_SESSION = {"session_id": "a1", "status": "finished", "timestamp": "2026-01-01T00:00:00Z", "duration": 3}

BRIGHTDATA_LIST_BODIES = {
    "not an object": "[]",
    "null sessions": json.dumps({"sessions": None, "pagination": {"has_more": False}}),
    "sessions not a list": json.dumps({"sessions": {"a": 1}, "pagination": {"has_more": False}}),
    "no pagination": json.dumps({"sessions": []}),
    "has_more not a bool": json.dumps({"sessions": [], "pagination": {"has_more": "yes"}}),
    "next_offset missing": json.dumps({"sessions": [GOOD_SESSION], "pagination": {"has_more": True}}),
    "next_offset does not advance": json.dumps(
        {"sessions": [GOOD_SESSION], "pagination": {"has_more": True, "next_offset": 0}}
    ),
    "nested 100000 deep": "[" * 100_000 + "]" * 100_000,
}
CLOUDFLARE_LIST_BODIES = {
    "an object": json.dumps({"sessions": []}),
    "null": "null",
    "envelope with a non-list result": json.dumps({"success": True, "result": {"a": 1}}),
    "envelope with success false": json.dumps({"success": False, "result": [], "errors": [{"code": 1}]}),
    "nested 100000 deep": "[" * 100_000 + "]" * 100_000,
}
CLOUDFLARE_READ_BODIES = {
    "an array": "[]",
    "a string": json.dumps("closed"),
    "sessionId as a number": json.dumps({"sessionId": 5}),
    "envelope with a list result": json.dumps({"success": True, "result": []}),
}


@pytest.fixture
def emulator(browsersessions_connections):
    return browsersessions_connections.emulator


def expect_api_error(call, platform: str, path_part: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    error = caught.value
    assert error.platform == platform
    assert path_part in error.path
    assert platform in str(error)
    assert error.path in str(error)
    return error


@pytest.mark.parametrize("case", sorted(BRIGHTDATA_LIST_BODIES))
def test_bright_data_list_bodies_of_the_wrong_shape(emulator, case):
    emulator.script_faults([{"kind": "body", "body": BRIGHTDATA_LIST_BODIES[case]}], platform="brightdata")
    hook = BrightDataBrowserHook(retry=NO_RETRY)
    error = expect_api_error(hook.list_sessions, "Bright Data", "/browser_sessions")
    assert isinstance(error, MalformedResponseError)


@pytest.mark.parametrize("case", sorted(CLOUDFLARE_LIST_BODIES))
def test_cloudflare_list_bodies_of_the_wrong_shape(emulator, case):
    emulator.script_faults([{"kind": "body", "body": CLOUDFLARE_LIST_BODIES[case]}], platform="cloudflare")
    hook = CloudflareBrowserRenderingHook(retry=NO_RETRY)
    error = expect_api_error(hook.list_sessions, "Cloudflare Browser Rendering", "/devtools/session")
    assert isinstance(error, MalformedResponseError)


@pytest.mark.parametrize(
    "body", ['{"sessions": [', '{"session": ', "", "\x00\x01garbage"], ids=["cut", "cut-get", "empty", "binary"]
)
def test_truncated_or_garbled_bodies_are_retried_then_reported(emulator, body):
    emulator.add_session("brightdata", session_id="abc", duration=1)
    emulator.script_faults([{"kind": "body", "body": body}] * 2, platform="brightdata")
    hook = BrightDataBrowserHook(retry=ONE_RETRY)
    if body == "":
        # An empty 200 body is malformed (never "no such session"), retried like a cut one.
        error = expect_api_error(lambda: hook.get_session("abc"), "Bright Data", "/browser_sessions/abc")
    else:
        error = expect_api_error(hook.list_sessions, "Bright Data", "/browser_sessions")
    assert "gave up after 2 attempt(s)" in str(error)
    assert isinstance(error, MalformedResponseError)


def test_a_huge_body_is_read_whole_and_parsed(emulator):
    sessions = [{**GOOD_SESSION, "session_id": f"s{i}", "end_url": "x" * 2000} for i in range(100)]
    huge = json.dumps({"sessions": sessions, "pagination": {"has_more": False}})
    assert len(huge) > 200_000
    emulator.script_faults([{"kind": "body", "body": huge}], platform="brightdata")
    assert len(BrightDataBrowserHook(retry=NO_RETRY).list_sessions()) == 100


@pytest.mark.parametrize("status", [502, 504])
def test_an_html_error_page_from_a_proxy(emulator, status):
    page = f"<html><body><h1>{status} Gateway</h1><p>nginx</p></body></html>"
    emulator.script_faults(
        [{"kind": "body", "status": status, "body": page, "content_type": "text/html"}], platform="cloudflare"
    )
    hook = CloudflareBrowserRenderingHook(retry=NO_RETRY)
    error = expect_api_error(hook.list_sessions, "Cloudflare Browser Rendering", "/devtools/session")
    assert isinstance(error, ServerError)
    assert error.status == status
    assert f"{status} Gateway" in str(error)


@pytest.mark.parametrize("case", sorted(CLOUDFLARE_READ_BODIES))
def test_cloudflare_reads_of_the_wrong_shape(emulator, case):
    emulator.script_faults([{"kind": "body", "body": CLOUDFLARE_READ_BODIES[case]}], platform="cloudflare")
    hook = CloudflareBrowserRenderingHook(retry=NO_RETRY)
    error = expect_api_error(lambda: hook.get_session("x"), "Cloudflare Browser Rendering", "/devtools/session/x")
    assert isinstance(error, MalformedResponseError)


@pytest.mark.parametrize("platform", ["brightdata", "cloudflare"])
def test_a_connection_closed_mid_body_on_every_attempt_is_a_transport_error(emulator, platform):
    emulator.script_faults([{"kind": "close_mid_body"}] * 2, platform=platform)
    hook = (
        BrightDataBrowserHook(retry=ONE_RETRY)
        if platform == "brightdata"
        else CloudflareBrowserRenderingHook(retry=ONE_RETRY)
    )
    name = "Bright Data" if platform == "brightdata" else "Cloudflare Browser Rendering"
    error = expect_api_error(
        hook.list_sessions, name, "/browser_sessions" if platform == "brightdata" else "/devtools/session"
    )
    assert isinstance(error, TransportError)
    assert error.status is None
    assert "gave up after 2 attempt(s)" in str(error)


def test_a_malformed_answer_ends_a_deferred_wait_with_an_error_event_naming_the_endpoint(emulator):
    sid = emulator.add_session("brightdata", duration=None)["session_id"]
    emulator.script_faults([{"kind": "body", "body": BRIGHTDATA_LIST_BODIES["null sessions"]}], platform="brightdata")
    trigger = BrowserSessionsTrigger(
        conn_id="brightdata_default", session_ids=[sid, "another"], filters=SessionQuery().to_dict(), poll_interval=0.05
    )

    async def first_event():
        async for event in trigger.run():
            return event
        return None

    event = asyncio.run(asyncio.wait_for(first_event(), 30))
    assert event.payload["status"] == "error"
    assert event.payload["message"].startswith("Bright Data API GET /browser_sessions failed: HTTP 200: unexpected")


def test_a_read_of_the_wrong_shape(emulator):
    emulator.script_faults([{"kind": "body", "body": json.dumps({"data": {}})}], platform="brightdata")
    error = expect_api_error(
        lambda: BrightDataBrowserHook(retry=NO_RETRY).get_session("abc"), "Bright Data", "/browser_sessions/abc"
    )
    assert isinstance(error, MalformedResponseError)


def test_the_async_transport_reports_the_same_way(emulator):
    emulator.script_faults([{"kind": "body", "body": BRIGHTDATA_LIST_BODIES["null sessions"]}], platform="brightdata")
    hook = BrightDataBrowserHook(retry=NO_RETRY)

    async def walk():
        try:
            return [s async for s in hook.aiter_sessions(SessionQuery())]
        finally:
            await hook.aclose()

    with pytest.raises(MalformedResponseError, match="Bright Data") as caught:
        asyncio.run(walk())
    assert caught.value.path == "/browser_sessions"
