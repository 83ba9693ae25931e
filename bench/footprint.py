"""Scenario 3, triggerer footprint: N deferred waits in one event loop, RSS growth and CPU per interval.

Run as a child process (``python -m bench.footprint N INTERVAL ZONES``) so its RSS is its own; the parent
passes the emulator's connection variables in the environment. The waits are spread over ZONES zones, so
over ZONES shared polls. CPU is the process's CPU time over whole intervals, divided by their number: the
cost of one interval's poll, wake-ups and decisions, which does not depend on the interval's length, so it
is also stated as a share of one core at a 30 s interval (the issue's target).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.common import rss_mb, table, verdict

TARGET_MB = 64.0
TARGET_CORE_SHARE = 0.05
TARGET_INTERVAL = 30.0
MEASURED_INTERVALS = 3


def child(count: int, interval: float, zones: int) -> dict[str, float]:
    import airflow_provider_browsersessions.triggers.sessions  # noqa: F401 - import cost is not footprint
    from airflow_provider_browsersessions.sessions import SessionQuery
    from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger
    from airflow_provider_browsersessions.triggers.shared_poll import _state

    ids_by_zone: list[list[str]] = json.loads(os.environ["BENCH_SESSION_IDS"])
    before = rss_mb()

    async def scenario() -> dict[str, float]:
        triggers = [
            BrowserSessionsTrigger(
                conn_id="brightdata_default",
                session_ids=[ids_by_zone[index % zones][index // zones % len(ids_by_zone[index % zones])]],
                filters=SessionQuery.build(api_name=f"bench_zone_{index % zones}").to_dict(),
                poll_interval=interval,
            )
            for index in range(count)
        ]

        async def consume(trigger: Any) -> None:
            async for _ in trigger.run():
                return

        tasks = [asyncio.create_task(consume(t)) for t in triggers]
        # Setting up 10,000 waits (a task, a parsed plan and a subscription each) can take longer than an interval
        # on a slow machine: the CPU window opens only once every wait is subscribed and has seen a poll.
        while sum(poll.subscribers for poll in _state().polls.values()) < count:
            await asyncio.sleep(0.1)
        await asyncio.sleep(interval * 1.5)
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(interval * MEASURED_INTERVALS)
        cpu_per_interval = (time.process_time() - cpu) / ((time.monotonic() - wall) / interval)
        after = rss_mb()
        finished = sum(task.done() for task in tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {"before": before, "after": after, "cpu": cpu_per_interval, "finished_early": finished}

    return asyncio.run(scenario())


def _measure(emulator: Any, *, count: int, interval: float, zones: int) -> list[Any]:
    emulator.reset()
    ids = [
        [emulator.add_session("brightdata", duration=None, api_name=f"bench_zone_{z}")["session_id"] for _ in range(50)]
        for z in range(zones)
    ]
    env = {**os.environ, **emulator.connection_env(), "BENCH_SESSION_IDS": json.dumps(ids)}
    result = subprocess.run(
        [sys.executable, "-m", "bench.footprint", str(count), str(interval), str(zones)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    growth = figures["after"] - figures["before"]
    core_share = figures["cpu"] / TARGET_INTERVAL
    return [
        count,
        zones,
        f"{figures['before']:.1f}",
        f"{figures['after']:.1f}",
        f"{growth:.1f}",
        f"{growth * 1024 / count:.1f}",
        f"{figures['cpu'] * 1000:.0f}",
        f"{core_share * 100:.2f}",
        f"{interval:g}",
        verdict(growth < TARGET_MB and core_share < TARGET_CORE_SHARE and figures["finished_early"] == 0),
    ]


def run(emulator: Any, *, cases: list[tuple[int, int]], interval: float) -> str:
    """
    :param cases: (deferred waits, zones) per row; each row is one child process.
    :param interval: The poll interval the children run at (CPU per interval is scaled to 30 s, see above).
    """
    rows = [_measure(emulator, count=count, interval=interval, zones=zones) for count, zones in cases]
    note = (
        "One child process per row, one event loop, N `BrowserSessionsTrigger`s spread over Z zones of 50 running "
        "sessions each (Z shared polls, each fetching its zone's running list once per interval). RSS from /proc "
        "before the triggers exist (Airflow and this package imported) and after every wait is subscribed plus "
        f"{MEASURED_INTERVALS + 1.5:g} intervals; CPU time of the process over {MEASURED_INTERVALS} whole intervals, "
        "per interval. A poll's cost does not grow with the interval, so the share of one core at a "
        f"{TARGET_INTERVAL:g} s interval is that CPU time / {TARGET_INTERVAL:g} s (measured at a shorter interval "
        f"to keep the run short). Target: growth < {TARGET_MB:.0f} MB and < {TARGET_CORE_SHARE:.0%} of one core "
        f"at {TARGET_INTERVAL:g} s."
    )
    headers = [
        "deferred waits",
        "zones (shared polls)",
        "RSS before (MB)",
        "RSS after (MB)",
        "growth (MB)",
        "per wait (KB)",
        "CPU per interval (ms)",
        f"core share at {TARGET_INTERVAL:g} s (%)",
        "measured at interval (s)",
        "target",
    ]
    return table("3. Triggerer footprint", headers, rows, note)


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]))))
