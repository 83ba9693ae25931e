"""The hook resolves the connection and builds its internal ``client`` from it; the hook's methods go through it."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_browsersessions.client import BrowserSessionsClient
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sessions import SessionQuery

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def emulator(frozen_emulator):
    return frozen_emulator  # a frozen clock: the hook and its client see the same sessions


def test_the_hook_has_one_client_bound_to_it(emulator):
    hook = BrightDataBrowserHook()
    assert isinstance(hook.client, BrowserSessionsClient)
    assert hook.client is hook.client
    # Built from what the hook resolved, never from the hook itself (the client knows nothing of hooks).
    assert (hook.client.platform, hook.client.settings, hook.client.limits) == (
        hook.platform,
        hook.settings,
        hook.limits,
    )
    assert hook.get_conn() is hook.client.get_conn()  # one pooled transport, whichever way it is reached


def test_the_client_lists_and_reads_what_the_hook_does(emulator):
    emulator.seed_sessions(platform="brightdata", count=30, seed=7)
    hook = BrightDataBrowserHook(page_size=10)
    through_hook = [s.session_id for s in hook.list_sessions(status="finished")]
    through_client = [s.session_id for s in hook.client.list_sessions(status="finished")]
    assert through_hook
    assert through_hook == through_client
    first = through_hook[0]
    assert hook.client.get_session(first) == hook.get_session(first)
    assert hook.client.get_session("no-such-session") is None


def test_the_async_twins_go_through_the_client(emulator):
    running = emulator.add_session("cloudflare", duration=3600)["sessionId"]
    hook = CloudflareBrowserRenderingHook()

    async def run() -> tuple[list[str], str]:
        try:
            listed = [s.session_id async for s in hook.aiter_sessions(SessionQuery())]
            return listed, await hook.aclose_session(running)
        finally:
            await hook.aclose()

    listed, answer = asyncio.run(run())
    assert listed == [running]
    assert answer == "closing"
    assert hook.client._async_transport is None  # the hook's aclose released the client's transport


def test_closing_the_hook_releases_the_clients_transports(emulator):
    emulator.seed_sessions(platform="brightdata", count=5, seed=1)
    hook = BrightDataBrowserHook(page_size=2)
    assert len(hook.list_sessions()) == 5  # a pipelined walk: the client pools extra page transports
    hook.close()
    assert hook.client._transport is None
    assert hook.client._page_transports == []
