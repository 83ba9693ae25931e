"""Two hundred concurrent clients on both platforms at once: no errors, every answer complete and correct."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from airflow_provider_browsersessions.testing import (
    DEFAULT_BRIGHTDATA_API_KEY,
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_API_TOKEN,
    Emulator,
)

CLIENTS = 200
SESSIONS = 150  # per platform: two Bright Data pages of at most 100
CF_LIST = f"/client/v4/accounts/{DEFAULT_CLOUDFLARE_ACCOUNT_ID}/browser-rendering/devtools/session"


def list_brightdata(session: requests.Session, url: str) -> list[dict[str, Any]]:
    """Every Bright Data session, page by page, checking each page's counts on the way."""
    listed: list[dict[str, Any]] = []
    offset = 0
    while offset is not None:
        response = session.get(
            f"{url}/browser_sessions",
            params={"limit": 100, "offset": offset},
            headers={"Authorization": f"Bearer {DEFAULT_BRIGHTDATA_API_KEY}"},
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
        assert body["total"] == SESSIONS
        assert body["count"] == len(body["sessions"])
        listed += body["sessions"]
        offset = body["pagination"]["next_offset"]
    return listed


def list_cloudflare(session: requests.Session, url: str) -> list[dict[str, Any]]:
    """Cloudflare's active sessions, one page of 200."""
    response = session.get(
        f"{url}{CF_LIST}",
        params={"limit": 200},
        headers={"Authorization": f"Bearer {DEFAULT_CLOUDFLARE_API_TOKEN}"},
        timeout=60,
    )
    response.raise_for_status()
    return list(response.json())


def test_two_hundred_concurrent_clients():
    # A frozen clock: every client must see exactly the same data, whenever its turn comes.
    with Emulator(speed=0) as emulator:
        emulator.seed_sessions(platform="both", count=SESSIONS, seed=8)
        # What a lone client gets is the reference; it is checked against the emulator's own records.
        with requests.Session() as lone:
            expected_bd = list_brightdata(lone, emulator.url)
            expected_cf = list_cloudflare(lone, emulator.url)
        assert sorted(expected_bd, key=lambda r: r["session_id"]) == sorted(
            emulator.sessions("brightdata"), key=lambda r: r["session_id"]
        )
        active = [r for r in emulator.sessions("cloudflare") if not r.get("endTime")]
        assert active
        assert sorted(expected_cf, key=lambda r: r["sessionId"]) == sorted(active, key=lambda r: r["sessionId"])
        emulator.clear_log()
        start = threading.Barrier(CLIENTS)

        def client(index: int) -> list[dict[str, Any]]:
            with requests.Session() as session:  # each client its own connection
                start.wait(timeout=60)
                return (list_cloudflare if index % 2 else list_brightdata)(session, emulator.url)

        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            results = list(pool.map(client, range(CLIENTS)))  # re-raises the first client error, if any

        assert len(results) == CLIENTS
        # Complete and correct: every answer equals the lone client's, record for record and in order.
        for index, result in enumerate(results):
            assert result == (expected_cf if index % 2 else expected_bd)
        log = emulator.request_log()
        assert len(log) == CLIENTS // 2 * 2 + CLIENTS // 2  # two Bright Data pages per even client, one CF call
        assert {entry["status"] for entry in log} == {200}
        assert {entry["fault"] for entry in log} == {None}
