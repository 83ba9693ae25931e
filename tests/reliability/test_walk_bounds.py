"""
Bounded walks and answers that are not what the platforms document, against the emulator's faults.

Repeated pages and the page bound (sync and async walks, the triggerer's wait), Bright Data's 404 rule,
Cloudflare's empty read, values the provider does not know, Bright Data's 429 reason headers, text caps
and MemoryError while decoding (in a child process with a memory limit). Every test proves termination
and bounds (request counts, sizes), never timings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time

import pytest

from airflow_provider_browsersessions.exceptions import (
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    WalkLimitError,
)
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sessions import MAX_TEXT_CHARS, SessionQuery, SessionStatus
from airflow_provider_browsersessions.transport import RetryPolicy
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger
from airflow_provider_browsersessions.waiting import WaitPlan

NO_RETRY = RetryPolicy(max_retries=0, max_wait=1.0)
TWO_RETRIES = RetryPolicy(max_retries=2, max_wait=1.0, backoff=0.01, max_backoff=0.01)
HOOKS = {"brightdata": BrightDataBrowserHook, "cloudflare": CloudflareBrowserRenderingHook}
NAMES = {"brightdata": "Bright Data", "cloudflare": "Cloudflare Browser Rendering"}


@pytest.fixture
def emulator(frozen_emulator):
    return frozen_emulator


def with_extra(emulator, monkeypatch, platform: str, conn_id: str, **extra) -> str:
    """A connection to the emulator with extras of our own."""
    ids = {"brightdata_conn_id": "unused_bd", "cloudflare_conn_id": "unused_cf", f"{platform}_conn_id": conn_id}
    value = json.loads(emulator.connection_env(**ids)[f"AIRFLOW_CONN_{conn_id.upper()}"])
    value.setdefault("extra", {}).update(extra)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
    return conn_id


def list_requests(emulator, platform: str) -> int:
    return emulator.request_count(platform=platform, path_contains="session")


def logged(caplog, capfd, needle: str) -> str:
    """
    Hook log lines: Airflow 2's logging reaches caplog (and its console handler repeats them on stderr),
    Airflow 3's structlog writes them to stdout only. One of the two, so no line is counted twice.
    """
    out, err = capfd.readouterr()
    return caplog.text if needle in caplog.text else out + err


async def walk_async(hook, query: SessionQuery) -> list:
    try:
        return [session async for session in hook.aiter_sessions(query)]
    finally:
        await hook.aclose()


def list_all(hook, driver: str) -> list:
    """The whole listing through the task's sync walk or the triggerer's async one."""
    if driver == "sync":
        return hook.list_sessions()
    return asyncio.run(walk_async(hook, SessionQuery()))


# -- repeated pages ----------------------------------------------------------------------------------


def fill(emulator, platform: str, count: int) -> None:
    for _ in range(count):
        emulator.add_session(platform, duration=None)


@pytest.mark.parametrize("platform", ["brightdata", "cloudflare"])
@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_server_answering_the_first_page_at_every_offset_is_stopped_at_the_second_request(emulator, platform, driver):
    fill(emulator, platform, 12)
    emulator.script_faults([{"kind": "repeat_page"}] * 1000, platform=platform)
    hook = HOOKS[platform](page_size=5, retry=NO_RETRY)
    with pytest.raises(MalformedResponseError) as raised:
        list_all(hook, driver)
    assert list_requests(emulator, platform) == 2
    message = str(raised.value)
    assert message.startswith(f"{NAMES[platform]} API GET ")
    assert "pagination repeats itself: page 2 (" in message
    assert "exactly the previous page's sessions" in message


def test_a_deferred_wait_on_a_repeating_server_ends_with_an_error_event(emulator):
    fill(emulator, "cloudflare", 200)  # one full page at the shared poll's page size: it asks for more
    emulator.script_faults([{"kind": "repeat_page"}] * 1000, platform="cloudflare")
    trigger = BrowserSessionsTrigger(
        conn_id="cloudflare_browser_rendering_default", session_ids=None, filters={}, poll_interval=0.05
    )

    async def first_event():
        async for event in trigger.run():
            return event
        return None

    event = asyncio.run(asyncio.wait_for(first_event(), 60))
    assert event.payload["status"] == "error"
    assert "pagination repeats itself" in event.payload["message"]
    assert list_requests(emulator, "cloudflare") == 2


# -- the page bound --------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["brightdata", "cloudflare"])
@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_listing_longer_than_max_pages_ends_with_an_error_naming_the_extra(emulator, monkeypatch, platform, driver):
    fill(emulator, platform, 20)
    conn_id = with_extra(emulator, monkeypatch, platform, "bounded", max_pages=3)
    hook = HOOKS[platform](conn_id=conn_id, page_size=2, retry=NO_RETRY)
    with pytest.raises(WalkLimitError) as raised:
        list_all(hook, driver)
    assert list_requests(emulator, platform) == 3
    message = str(raised.value)
    assert "did not end within 3 pages (6 sessions scanned" in message
    assert "raise the connection extra 'max_pages' (now 3, default 2,000)" in message


def test_a_listing_within_max_pages_is_whole(emulator, monkeypatch):
    fill(emulator, "brightdata", 20)
    conn_id = with_extra(emulator, monkeypatch, "brightdata", "bounded", max_pages=10)
    assert len(BrightDataBrowserHook(conn_id=conn_id, page_size=2).list_sessions()) == 20


@pytest.mark.parametrize("bad", [0, -2, 1.5, "many"])
def test_a_bad_max_pages_extra_is_a_configuration_error_naming_it(emulator, monkeypatch, bad):
    conn_id = with_extra(emulator, monkeypatch, "brightdata", "bounded", max_pages=bad)
    with pytest.raises(Exception, match="max_pages") as raised:
        BrightDataBrowserHook(conn_id=conn_id).list_sessions()
    assert "bounded" in str(raised.value)
    assert list_requests(emulator, "brightdata") == 0


def test_a_long_listing_logs_its_progress_every_ten_pages(emulator, caplog, capfd):
    fill(emulator, "brightdata", 25)
    capfd.readouterr()
    with caplog.at_level(logging.INFO):
        sessions = BrightDataBrowserHook(page_size=1).list_sessions(status="running")
    assert len(sessions) == 25
    text = logged(caplog, capfd, "listing in progress")
    assert text.count("listing in progress") == 2
    assert "Bright Data: listing in progress: 10 pages, 10 sessions scanned, 10 matched so far" in text
    assert "Bright Data: listing in progress: 20 pages, 20 sessions scanned, 20 matched so far" in text


# -- Bright Data's 404 rule --------------------------------------------------------------------------------


def test_bright_data_reads_an_unknown_id_as_unknown_from_the_apis_own_body(emulator):
    hook = BrightDataBrowserHook(retry=NO_RETRY)
    assert hook.get_session("no-such-session") is None

    async def read():
        try:
            return await hook.aget_session("no-such-session")
        finally:
            await hook.aclose()

    assert asyncio.run(read()) is None


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html><body><h1>404 Not Found</h1><hr>nginx</body></html>", "text/html"),
        ('{"error": "Not found"}', "application/json"),
        ("", "text/plain"),
    ],
    ids=["proxy-html", "other-json", "empty"],
)
def test_a_bright_data_404_from_a_proxy_or_a_wrong_base_url_is_an_error_not_a_vanished_session(
    emulator, body, content_type
):
    sid = emulator.add_session("brightdata", duration=None)["session_id"]
    fault = {"kind": "body", "status": 404, "body": body, "content_type": content_type}
    emulator.script_faults([fault, fault], platform="brightdata")
    hook = BrightDataBrowserHook(retry=NO_RETRY)
    with pytest.raises(NotFoundError, match="HTTP 404"):
        hook.get_session(sid)

    async def read():
        try:
            return await hook.aget_session(sid)
        finally:
            await hook.aclose()

    with pytest.raises(NotFoundError):
        asyncio.run(read())


# -- Cloudflare's empty read ------------------------------------------------------------------------------


def test_a_cloudflare_read_answering_an_empty_200_is_an_error_never_an_unknown_session(emulator):
    sid = emulator.add_session("cloudflare", duration=None)["sessionId"]
    emulator.script_faults([{"kind": "body", "status": 200, "body": ""}] * 3, platform="cloudflare")
    hook = CloudflareBrowserRenderingHook(retry=TWO_RETRIES)
    with pytest.raises(MalformedResponseError, match="the body is empty") as raised:
        hook.get_session(sid)
    assert "gave up after 3 attempt(s)" in str(raised.value)


def test_a_cloudflare_empty_read_is_retried_like_any_cut_body(emulator):
    sid = emulator.add_session("cloudflare", duration=None)["sessionId"]
    emulator.script_faults([{"kind": "body", "status": 200, "body": ""}], platform="cloudflare")
    session = CloudflareBrowserRenderingHook(retry=TWO_RETRIES).get_session(sid)
    assert session is not None
    assert session.status is SessionStatus.RUNNING


def test_a_cloudflare_null_read_still_means_unknown(emulator):
    emulator.set_options(cloudflare_null_for_missing=True)
    assert CloudflareBrowserRenderingHook(retry=NO_RETRY).get_session("gone") is None


def test_a_deferred_wait_never_concludes_from_an_empty_cloudflare_read(emulator):
    """The issue's case: missing=finished used to read the empty body as "ended"; now the wait fails loudly."""
    sid = emulator.add_session("cloudflare", duration=None)["sessionId"]
    emulator.end_session("cloudflare", sid)  # off the running list: the trigger reads it
    emulator.script_faults([{"kind": "body", "status": 200, "body": ""}] * 50, platform="cloudflare", path_contains=sid)
    trigger = BrowserSessionsTrigger(
        conn_id="cloudflare_browser_rendering_default",
        session_ids=[sid],
        filters={},
        poll_interval=0.05,
        missing="finished",
        end_time=time.time() + 3,
    )

    async def first_event():
        async for event in trigger.run():
            return event
        return None

    event = asyncio.run(asyncio.wait_for(first_event(), 60))
    assert event.payload["status"] == "timeout"  # the reads kept failing: never "success" from an empty body
    assert "the last poll failed" in event.payload["message"]


# -- values the provider does not know -------------------------------------------------------------------


def test_an_unknown_status_keeps_the_listing_and_counts_as_running(emulator, caplog, capfd):
    emulator.seed_sessions(platform="brightdata", count=30, seed=5)
    odd = emulator.add_session("brightdata", duration=None, wire={"status": "paused", "bandwidth": "12 kB"})
    hook = BrightDataBrowserHook(retry=NO_RETRY)
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        sessions = hook.list_sessions()
    assert len(sessions) == 31
    (kept,) = [s for s in sessions if s.session_id == odd["session_id"]]
    assert kept.status is SessionStatus.RUNNING
    assert kept.bandwidth is None
    text = logged(caplog, capfd, "has status 'paused'")
    assert text.count("has status 'paused'") == 1
    assert f"session {odd['session_id']!r} has status 'paused'" in text
    assert f"session {odd['session_id']!r} has bandwidth '12 kB'" in text


def test_a_wait_on_a_session_of_unknown_status_does_not_end(emulator):
    odd = emulator.add_session("brightdata", duration=None, wire={"status": "paused"})["session_id"]
    hook = BrightDataBrowserHook(retry=NO_RETRY)
    plan = WaitPlan(query=SessionQuery(), session_ids=(odd,))
    running = list(hook.iter_sessions(plan.running_query))  # the server's status=running list
    reads = {sid: hook.get_session(sid) for sid in plan.record_running_and_ids_to_read(s.session_id for s in running)}
    outcome = plan.evaluate(running, reads)
    assert not outcome.done
    assert odd in outcome.running


# -- Bright Data's 429 reason ---------------------------------------------------------------------------


def test_a_bright_data_429_names_its_header_reason(emulator):
    emulator.script_faults([{"kind": "429", "retry_after": 0}], platform="brightdata")
    with pytest.raises(RateLimitedError) as raised:
        BrightDataBrowserHook(retry=NO_RETRY).list_sessions()
    message = str(raised.value)
    assert "HTTP 429: x-brd-err-msg: Too many requests: rate limit exceeded, slow down" in message
    assert "x-brd-error: too_many_requests" in message


# -- text caps ---------------------------------------------------------------------------------------------


def test_a_50_mb_error_text_becomes_a_short_error(emulator):
    emulator.script_faults(
        [{"kind": "body", "status": 500, "body": json.dumps({"error": "e" * 50_000_000})}], platform="brightdata"
    )
    with pytest.raises(ServerError) as raised:
        BrightDataBrowserHook(retry=NO_RETRY).list_sessions()
    assert len(str(raised.value)) < 1000


def test_huge_texts_in_a_record_are_cut_before_xcom(emulator):
    huge = "https://example.com/" + "x" * 5_000_000
    record = {
        "session_id": "big",
        "status": "failed",
        "timestamp": "2026-01-01T00:00:00Z",
        "duration": 1,
        "target_url": huge,
        "error": {"code": "c", "message": "m" * 5_000_000},
    }
    emulator.script_faults(
        [{"kind": "body", "body": json.dumps({"sessions": [record], "pagination": {"has_more": False}})}],
        platform="brightdata",
    )
    (session,) = BrightDataBrowserHook(retry=NO_RETRY).list_sessions()
    assert len(session.target_url) == MAX_TEXT_CHARS
    assert len(session.error_message) == MAX_TEXT_CHARS
    assert len(json.dumps(session.to_dict(include_raw=True))) < 40_000


# -- MemoryError ----------------------------------------------------------------------------------------

_MEMORY_CHILD = textwrap.dedent(
    """
    import resource, sys
    from airflow_provider_browsersessions.exceptions import ApiError, BrowserSessionsError
    from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
    from airflow_provider_browsersessions.transport import RetryPolicy

    hook = BrightDataBrowserHook(retry=RetryPolicy(max_retries=0, max_wait=1.0))
    hook.get_conn()  # everything imported and built before the limit
    with open("/proc/self/status") as status:
        size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    # Room for the 40 MB body and a little more, not for 10 million decoded objects (about 400 MB).
    limit = (size_kb + 160 * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        hook.list_sessions()
    except MemoryError:
        print("RAW MemoryError")
        sys.exit(3)
    except ApiError as err:
        print(type(err).__name__, isinstance(err, BrowserSessionsError), err.retryable)
        print(str(err))
        sys.exit(0)
    print("no error")
    sys.exit(4)
    """
)


@pytest.mark.timeout(300)
def test_a_body_that_exhausts_memory_while_decoding_is_an_api_error(emulator, tmp_path):
    body = '{"sessions": [' + ",".join(["[0,0,0,0]"] * 4_000_000) + '], "pagination": {"has_more": false}}'
    assert len(body) > 39_000_000
    emulator.script_faults([{"kind": "body", "body": body}], platform="brightdata")
    env = {**os.environ, **emulator.connection_env()}
    # The 40 MB body passes the size cap on purpose (default 32 MiB): what is tested is decoding it.
    connection = json.loads(env["AIRFLOW_CONN_BRIGHTDATA_DEFAULT"])
    env["AIRFLOW_CONN_BRIGHTDATA_DEFAULT"] = json.dumps({**connection, "extra": {"max_response_bytes": 64 << 20}})
    child = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD], env=env, capture_output=True, text=True, timeout=280, check=False
    )
    assert child.returncode == 0, child.stdout + child.stderr[-3000:]
    (verdict,) = [line for line in child.stdout.splitlines() if line.startswith("MalformedResponseError ")]
    kind, is_ours, retryable = verdict.split()
    assert (kind, is_ours, retryable) == ("MalformedResponseError", "True", "False")
    assert "needs more memory to decode than this process has" in child.stdout
