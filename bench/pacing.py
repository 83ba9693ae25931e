"""Scenario 7, pacing: many poke-mode callers on one Cloudflare token, inside the rate budget or into its lockout."""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

from bench.common import table, verdict


def _worker(env: dict[str, str], conn_id: str, ready: Any, start: Any, seconds: float, results: Any) -> None:
    """One process, like a poke-mode sensor or a list task: list, read the first session, again and again."""
    import logging

    logging.disable(logging.WARNING)
    os.environ.update(env)
    from airflow_provider_browsersessions.exceptions import ApiError
    from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook

    hook = CloudflareBrowserRenderingHook(conn_id=conn_id)
    _ = hook.settings
    ready.release()
    start.wait()
    until = time.monotonic() + seconds
    loops = failures = 0
    while time.monotonic() < until:
        try:
            sessions = hook.list_sessions()
            if sessions:
                hook.get_session(sessions[0].session_id)
            loops += 1
        except ApiError:
            failures += 1  # a 429 that outlived the retries: a failed poke
    results.put((loops, failures))


def _arm(
    emulator: Any, *, pace: bool, workers: int, seconds: float, budget: int, window: float, processes: bool
) -> list[Any]:
    import json
    import queue
    import threading

    conn_id = f"bench_pacing_{'on' if pace else 'off'}"
    connection = {
        "conn_type": "cloudflare_browser_rendering",
        "host": emulator.cloudflare_base_url,
        "password": emulator.cloudflare_api_token,
        "extra": {"account_id": emulator.cloudflare_account_id, "pace": pace},
    }
    env = {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)}
    args: tuple[Any, ...]
    if processes:
        # spawn: fresh interpreters, as separate tasks would be; none shares the pacer of another.
        context = multiprocessing.get_context("spawn")
        ready, start, results = context.Semaphore(0), context.Event(), context.Queue()
        args = (env, conn_id, ready, start, seconds, results)
        runners: list[Any] = [context.Process(target=_worker, args=args) for _ in range(workers)]
    else:  # the smoke run: threads of this process (one shared pacer), no interpreter start-up
        ready, start, results = threading.Semaphore(0), threading.Event(), queue.Queue()
        args = (env, conn_id, ready, start, seconds, results)
        runners = [threading.Thread(target=_worker, args=args) for _ in range(workers)]
    for runner in runners:
        runner.start()
    for _ in runners:
        ready.acquire(timeout=300)
    emulator.set_lockout(budget=budget, window=window)  # a fresh window for each arm
    emulator.clear_log()
    start.set()
    outcomes = [results.get(timeout=seconds + 400) for _ in runners]
    for runner in runners:
        runner.join(timeout=30)
    log = emulator.request_log(platform="cloudflare")
    emulator.set_lockout(budget=None, window=window)
    locked = sum(entry["fault"] == "lockout" for entry in log)
    served = sum(entry["fault"] is None for entry in log)
    loops = sum(loops for loops, _ in outcomes)
    failed = sum(failures for _, failures in outcomes)
    return [
        "on" if pace else "off",
        workers,
        len(log),
        served,
        locked,
        failed,
        loops,
        f"{served / seconds:.2f}",
        verdict(locked == 0) if pace else "(baseline)",
    ]


def run(emulator: Any, *, workers: int, seconds: float, budget: int, window: float, processes: bool = True) -> str:
    """Both arms, pacing on then off, against the emulator's scaled-down Cloudflare budget."""
    emulator.seed_sessions(platform="cloudflare", count=20, seed=7)
    rows = [
        _arm(emulator, pace=pace, workers=workers, seconds=seconds, budget=budget, window=window, processes=processes)
        for pace in (True, False)
    ]
    return table(
        "7. Pacing inside Cloudflare's rate budget",
        [
            "pacing",
            "workers",
            "requests",
            "served",
            "locked out (429)",
            "failed calls",
            "list+read loops",
            "served per s",
            "target: 0 lockouts",
        ],
        rows,
        note=(
            f"{workers} {'processes' if processes else 'threads'} on one token for {seconds:g} s, each listing and "
            "reading in a loop (poke-mode sensors and list tasks), against a budget of "
            f"{budget} requests per {window:g} s with Cloudflare's "
            "lockout (every call refused for a window once it is exceeded). Default retry policy."
        ),
    )
