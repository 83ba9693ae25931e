"""Scenario 9, listing on a slow network: every request delayed, pages fetched one at a time or pipelined."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from bench.common import table, traffic, verdict
from bench.listing import http_provider_list

SEQUENTIAL_CONN = "bench_brightdata_sequential"
TARGET = 0.35


def _sequential_connection(emulator: Any) -> None:
    """A Bright Data connection with the extra ``pages_in_flight`` 1: the walk as it was, one page at a time."""
    ids = {"brightdata_conn_id": SEQUENTIAL_CONN, "cloudflare_conn_id": "bench_unused_cf"}
    value = json.loads(emulator.connection_env(**ids)[f"AIRFLOW_CONN_{SEQUENTIAL_CONN.upper()}"])
    value.setdefault("extra", {})["pages_in_flight"] = 1
    os.environ[f"AIRFLOW_CONN_{SEQUENTIAL_CONN.upper()}"] = json.dumps(value)


def _ours(conn_id: str) -> int:
    from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook

    hook = get_browser_sessions_hook(conn_id)
    try:
        return len(hook.list_sessions())
    finally:
        hook.close()


def _measure(emulator: Any, call: Any) -> tuple[int, float, int]:
    since = len(emulator.request_log())
    started = time.perf_counter()
    found = call()
    seconds = time.perf_counter() - started
    return traffic(emulator, since)[0], seconds, found


def run(emulator: Any, *, sizes: list[int], latency: float) -> str:
    _sequential_connection(emulator)
    rows = []
    for size in sizes:
        emulator.reset()
        emulator.set_lockout(budget=None)
        emulator.seed_sessions(platform="brightdata", count=size, seed=size)
        _measure(emulator, lambda: _ours("brightdata_default"))  # warm-up without latency: pools, imports
        emulator.set_random_faults(rate=1.0, kinds=["latency"], seed=0, latency=latency, platform="brightdata")
        try:
            pipelined = _measure(emulator, lambda: _ours("brightdata_default"))
            sequential = _measure(emulator, lambda: _ours(SEQUENTIAL_CONN))
            baseline = _measure(emulator, lambda: len(http_provider_list("brightdata", "", None, all_statuses=True)))
        finally:
            emulator.set_random_faults(rate=0.0, kinds=[], seed=0)
        assert pipelined[2] == sequential[2] == baseline[2] == size, (pipelined, sequential, baseline, size)
        worst = max(pipelined[1] / sequential[1], pipelined[1] / baseline[1])
        rows.append(
            [
                f"{size:,}",
                f"{pipelined[0]} / {sequential[0]} / {baseline[0]}",
                f"{pipelined[1]:.2f} / {sequential[1]:.2f} / {baseline[1]:.2f}",
                f"{pipelined[1] / sequential[1]:.2f}x",
                f"{pipelined[1] / baseline[1]:.2f}x",
                verdict(worst <= TARGET and pipelined[0] == sequential[0]),
            ]
        )
    note = (
        f"Every Bright Data request delayed {latency * 1000:.0f} ms by the emulator (`set_random_faults(rate=1, "
        "kinds=['latency'])`), all sessions listed (100 a page). *Pipelined*: our hook with the default "
        "`pages_in_flight` 4 (the pages the server's `total` says exist are fetched ahead, fed to the walk in "
        "order); *sequential*: the same hook with `pages_in_flight` 1; *HTTP provider*: `HttpOperator` with a "
        "`pagination_function` (scenario 1's baseline). Requests counted in the emulator's log."
    )
    headers = [
        "sessions",
        "requests (pipelined / sequential / HTTP provider)",
        "seconds (pipelined / sequential / HTTP provider)",
        "pipelined ÷ sequential",
        "pipelined ÷ HTTP provider",
        f"target: ≤ {TARGET}x both, same requests",
    ]
    return table("9. Listing on a slow network: pipelined paging", headers, rows, note)
