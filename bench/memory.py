"""Scenario 6, memory: peak RSS while iterating N sessions lazily against holding them in a list.

Each measurement runs in its own child process (``python -m bench.memory MODE``) so the peak is its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
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


def _measure_all(modes: tuple[str, ...], env: dict[str, str]) -> dict[str, dict[str, float]]:
    """One child per mode, run side by side: each peak is its own process's, so they need not take turns."""
    figures = {}
    with contextlib.ExitStack() as files:
        # Output to files, not pipes: a child blocked on a full pipe would wait for its turn to be read.
        outputs = {
            mode: (files.enter_context(tempfile.TemporaryFile()), files.enter_context(tempfile.TemporaryFile()))
            for mode in modes
        }
        children = {
            mode: subprocess.Popen([sys.executable, "-m", "bench.memory", mode], env=env, stdout=out, stderr=err)
            for mode, (out, err) in outputs.items()
        }
        for mode, child in children.items():
            out, err = outputs[mode]
            returncode = child.wait()
            out.seek(0)
            err.seek(0)
            if returncode:
                raise RuntimeError(f"memory child {mode!r} failed: {err.read().decode()[-2000:]}")
            figures[mode] = json.loads(out.read().decode().strip().splitlines()[-1])
    return figures


def run(emulator: Any, *, sizes: list[int]) -> str:
    from bench.common import http_connections

    modes = ("iterate", "list", "http")
    rows = []
    growth: dict[str, list[float]] = {mode: [] for mode in modes}
    for size in sizes:
        emulator.reset()
        emulator.seed_sessions(platform="brightdata", count=size, seed=size)
        env = {**os.environ, **emulator.connection_env(), **http_connections(emulator)}
        measured = _measure_all(modes, env)
        row: list[Any] = [f"{size:,}"]
        for mode in modes:
            figures = measured[mode]
            assert figures["count"] == size, f"{mode} saw {figures['count']} of {size}"
            growth[mode].append(figures["peak"] - figures["start"])
            row.append(f"{figures['peak']:.0f} (+{figures['peak'] - figures['start']:.1f})")
        rows.append(row)
    flat = growth["iterate"][-1] - growth["iterate"][0] < 5.0
    rows.append(["growth from smallest to largest N (MB)"] + [f"{g[-1] - g[0]:.1f}" for g in growth.values()])
    largest = {mode: max(g[-1], 0.1) for mode, g in growth.items()}  # 0.1 MB: no division by a flat zero
    rows.append([f"growth at {sizes[-1]:,} ÷ HttpOperator's", *(f"{largest[m] / largest['http']:.2f}x" for m in modes)])
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
