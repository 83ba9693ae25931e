"""Scenario 6, memory: peak RSS while iterating N sessions lazily against holding them in a list.

Each measurement runs in its own child process (``python -m bench.memory MODE``) so the peak is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.common import HTTP_BRIGHTDATA, peak_rss_mb, rss_mb, table, verdict


def child(mode: str) -> dict[str, float]:
    from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook

    hook = BrightDataBrowserHook()
    # Importing Airflow peaks higher than where it settles, so the peak while listing is read as VmHWM
    # after resetting it (``echo 5 > /proc/self/clear_refs``), against the RSS right before listing.
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    start = rss_mb()
    count = 0
    if mode == "iterate":
        for _ in hook.iter_sessions():
            count += 1
    elif mode == "list":
        count = len(hook.list_sessions())
    else:  # the HTTP provider: HttpOperator keeps every page's response, then flattens them
        from airflow.providers.http.operators.http import HttpOperator

        from bench.listing import _brightdata_next_page

        operator = HttpOperator(
            task_id="all",
            http_conn_id=HTTP_BRIGHTDATA,
            method="GET",
            endpoint="/browser_sessions",
            data={"limit": 100, "offset": 0},
            pagination_function=_brightdata_next_page,
            response_filter=lambda responses: [s for r in responses for s in r.json()["sessions"]],
        )
        count = len(operator.execute(context={}))
    return {"count": count, "start": start, "peak": peak_rss_mb()}


def _measure(emulator: Any, mode: str, env: dict[str, str]) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory", mode], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(emulator: Any, *, sizes: list[int]) -> str:
    from bench.common import http_connections

    rows = []
    growth: dict[str, list[float]] = {"iterate": [], "list": [], "http": []}
    for size in sizes:
        emulator.reset()
        emulator.seed_sessions(platform="brightdata", count=size, seed=size)
        env = {**os.environ, **emulator.connection_env(), **http_connections(emulator)}
        row: list[Any] = [f"{size:,}"]
        for mode in ("iterate", "list", "http"):
            figures = _measure(emulator, mode, env)
            assert figures["count"] == size, f"{mode} saw {figures['count']} of {size}"
            growth[mode].append(figures["peak"] - figures["start"])
            row.append(f"{figures['peak']:.0f} (+{figures['peak'] - figures['start']:.1f})")
        rows.append(row)
    flat = growth["iterate"][-1] - growth["iterate"][0] < 5.0
    rows.append(["growth from smallest to largest N (MB)"] + [f"{g[-1] - g[0]:.1f}" for g in growth.values()])
    rows.append(["target: iterating is flat in N (< 5 MB more)", verdict(flat), "", ""])
    note = (
        "Peak RSS (MB) of a child process that walks every Bright Data session through the hook lazily "
        "(`iter_sessions`), collects them (`list_sessions`), or lists them with `HttpOperator` and a "
        "`pagination_function` (which keeps every page's response until it returns); in brackets, growth "
        "over the RSS after imports."
    )
    headers = ["sessions", "iter_sessions (ours)", "list_sessions (ours)", "HttpOperator"]
    return table("6. Memory: peak RSS (MB)", headers, rows, note)


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1])))
