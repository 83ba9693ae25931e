"""Scenario 3, triggerer footprint: N deferred waits in one event loop, RSS growth and CPU per interval.

Run as a child process (``python -m bench.footprint N INTERVAL``) so its RSS is its own; the parent passes
the emulator's connection variables in the environment.
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


def child(count: int, interval: float) -> dict[str, float]:
    import airflow_provider_browsersessions.triggers.sessions  # noqa: F401 - import cost is not footprint
    from airflow_provider_browsersessions.sessions import SessionQuery
    from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

    ids = json.loads(os.environ["BENCH_SESSION_IDS"])
    before = rss_mb()

    async def scenario() -> dict[str, float]:
        triggers = [
            BrowserSessionsTrigger(
                conn_id="brightdata_default",
                session_ids=[ids[index % len(ids)]],
                filters=SessionQuery.build(api_name="bench_zone").to_dict(),
                poll_interval=interval,
            )
            for index in range(count)
        ]

        async def consume(trigger: Any) -> None:
            async for _ in trigger.run():
                return

        tasks = [asyncio.create_task(consume(t)) for t in triggers]
        await asyncio.sleep(interval * 1.5)
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(interval * 4)
        cpu_per_interval = (time.process_time() - cpu) / ((time.monotonic() - wall) / interval)
        after = rss_mb()
        finished = sum(task.done() for task in tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {"before": before, "after": after, "cpu": cpu_per_interval, "finished_early": finished}

    return asyncio.run(scenario())


def run(emulator: Any, *, count: int, interval: float) -> str:
    emulator.reset()
    ids = [emulator.add_session("brightdata", duration=None, api_name="bench_zone")["session_id"] for _ in range(50)]
    env = {**os.environ, **emulator.connection_env(), "BENCH_SESSION_IDS": json.dumps(ids)}
    result = subprocess.run(
        [sys.executable, "-m", "bench.footprint", str(count), str(interval)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    growth = figures["after"] - figures["before"]
    rows = [
        [
            count,
            f"{figures['before']:.1f}",
            f"{figures['after']:.1f}",
            f"{growth:.1f}",
            f"{growth * 1024 / count:.1f}",
            f"{figures['cpu'] * 1000:.0f}",
            f"{interval:g}",
            verdict(growth < TARGET_MB and figures["finished_early"] == 0),
        ]
    ]
    note = (
        "One child process, one event loop, N `BrowserSessionsTrigger`s waiting on 50 running sessions of one "
        "zone (the shared poll fetches the zone's running list once per interval). RSS from /proc before the "
        "triggers exist (Airflow and this package imported) and after four intervals; CPU time of the process "
        f"per interval. Target: growth < {TARGET_MB:.0f} MB."
    )
    headers = [
        "deferred waits",
        "RSS before (MB)",
        "RSS after (MB)",
        "growth (MB)",
        "per wait (KB)",
        "CPU per interval (ms)",
        "interval (s)",
        "target",
    ]
    return table("3. Triggerer footprint", headers, rows, note)


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]), float(sys.argv[2]))))
