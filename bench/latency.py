"""Scenario 4, detection latency: from a session ending (emulator clock) to the deferred wait's event."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.common import median, table, verdict


def _one(emulator: Any, interval: float, delay: float) -> float:
    from airflow_provider_browsersessions.sessions import SessionQuery
    from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

    session_id = emulator.add_session("brightdata", duration=None)["session_id"]
    trigger = BrowserSessionsTrigger(
        conn_id="brightdata_default", session_ids=[session_id], filters=SessionQuery().to_dict(), poll_interval=interval
    )

    async def scenario() -> float:
        async def consume() -> float:
            async for _ in trigger.run():
                return time.monotonic()
            raise RuntimeError("the trigger ended without an event")

        task = asyncio.create_task(consume())
        await asyncio.sleep(delay)  # end it at an arbitrary point of the poll cycle
        emulator.end_session("brightdata", session_id)
        ended = time.monotonic()
        noticed = await asyncio.wait_for(task, interval * 4 + 10)
        return noticed - ended

    return asyncio.run(scenario())


def run(emulator: Any, *, intervals: list[float], trials: int) -> str:
    emulator.reset()
    rng = random.Random(4)
    rows = []
    for interval in intervals:
        latencies = [_one(emulator, interval, rng.uniform(0.2, interval * 2)) for _ in range(trials)]
        worst = max(latencies)
        rows.append(
            [
                f"{interval:g}",
                trials,
                f"{median(latencies):.2f}",
                f"{worst:.2f}",
                f"{interval + 1:g}",
                verdict(worst <= interval + 1),
            ]
        )
    note = (
        "A deferred wait (`BrowserSessionsTrigger`) on one running session; the emulator ends the session at a "
        "random point of the poll cycle; latency is from that moment to the trigger's event. "
        "Target: at most interval + 1 s."
    )
    headers = ["poll interval (s)", "trials", "median latency (s)", "worst (s)", "target (s)", "target"]
    return table("4. Detection latency", headers, rows, note)
