"""Two hundred concurrent clients on both platforms at once: no errors, every answer complete."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from airflow_provider_browsersessions.testing import (
    DEFAULT_BRIGHTDATA_API_KEY,
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_API_TOKEN,
    Emulator,
)

CLIENTS = 200
CF_LIST = f"/client/v4/accounts/{DEFAULT_CLOUDFLARE_ACCOUNT_ID}/browser-rendering/devtools/session"


def test_two_hundred_concurrent_clients():
    with Emulator(speed=0) as emulator:
        emulator.seed_sessions(platform="both", count=150, seed=8)
        expected_bd = {r["session_id"] for r in emulator.sessions("brightdata")}
        expected_cf = {r["sessionId"] for r in emulator.sessions("cloudflare") if not r.get("endTime")}
        start = threading.Barrier(CLIENTS)

        def client(index: int) -> set[str]:
            with requests.Session() as session:  # each client its own connection
                start.wait(timeout=30)
                if index % 2:
                    response = session.get(
                        f"{emulator.url}{CF_LIST}",
                        params={"limit": 200},
                        headers={"Authorization": f"Bearer {DEFAULT_CLOUDFLARE_API_TOKEN}"},
                        timeout=60,
                    )
                    response.raise_for_status()
                    return {s["sessionId"] for s in response.json()}
                ids: set[str] = set()
                offset = 0
                while offset is not None:
                    response = session.get(
                        f"{emulator.url}/browser_sessions",
                        params={"limit": 100, "offset": offset},
                        headers={"Authorization": f"Bearer {DEFAULT_BRIGHTDATA_API_KEY}"},
                        timeout=60,
                    )
                    response.raise_for_status()
                    body = response.json()
                    ids |= {s["session_id"] for s in body["sessions"]}
                    offset = body["pagination"]["next_offset"]
                return ids

        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            results = list(pool.map(client, range(CLIENTS)))

        assert all(result == (expected_cf if i % 2 else expected_bd) for i, result in enumerate(results))
        log = emulator.request_log()
        assert len(log) == CLIENTS // 2 * 2 + CLIENTS // 2  # two Bright Data pages per even client, one CF call
        assert {entry["status"] for entry in log} == {200}
