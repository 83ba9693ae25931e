"""Scenario 4, detection latency: from a session ending (emulator clock) to the wait noticing, three ways."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from bench.common import HTTP_BRIGHTDATA, median, table, verdict

if TYPE_CHECKING:
    from collections.abc import Callable

WAYS = ("deferred (ours, trigger)", "poke mode (ours, sensor)", "HttpSensor (poke)")


def _end_later(emulator: Any, session_id: str, delay: float) -> list[float]:
    """End the session ``delay`` seconds from now, from another thread; the list receives the moment it ended."""
    ended: list[float] = []

    def end() -> None:
        emulator.end_session("brightdata", session_id)
        ended.append(time.monotonic())

    threading.Timer(delay, end).start()
    return ended


def _deferred(emulator: Any, session_id: str, interval: float, delay: float) -> float:
    from airflow_provider_browsersessions.sessions import SessionQuery
    from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

    trigger = BrowserSessionsTrigger(
        conn_id="brightdata_default", session_ids=[session_id], filters=SessionQuery().to_dict(), poll_interval=interval
    )

    async def scenario() -> float:
        ended = _end_later(emulator, session_id, delay)
        async for _ in trigger.run():
            return time.monotonic() - ended[0]
        raise RuntimeError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(scenario(), delay + interval * 4 + 10))


def _poke_loop(poke: Callable[[], bool], emulator: Any, session_id: str, interval: float, delay: float) -> float:
    """What a sensor in poke mode does: poke, sleep ``poke_interval``, poke again."""
    ended = _end_later(emulator, session_id, delay)
    deadline = time.monotonic() + delay + interval * 4 + 10
    while not poke():
        if time.monotonic() > deadline:
            raise RuntimeError("the sensor never noticed the session ending")
        time.sleep(interval)
    return time.monotonic() - ended[0]


def _ours_poke(emulator: Any, session_id: str, interval: float, delay: float) -> float:
    from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

    sensor = BrowserSessionsSensor(
        task_id="wait", conn_id="brightdata_default", session_ids=[session_id], poke_interval=interval
    )
    try:
        return _poke_loop(lambda: sensor.poke({}).is_done, emulator, session_id, interval, delay)
    finally:
        sensor.hook.close()


def _http_poke(emulator: Any, session_id: str, interval: float, delay: float) -> float:
    from airflow.providers.http.sensors.http import HttpSensor

    sensor = HttpSensor(
        task_id="http_wait",
        http_conn_id=HTTP_BRIGHTDATA,
        endpoint=f"/browser_sessions/{session_id}",
        response_check=lambda response: response.json()["session"]["status"] != "running",
        poke_interval=interval,
    )
    return _poke_loop(lambda: bool(sensor.poke({})), emulator, session_id, interval, delay)


def run(emulator: Any, *, intervals: list[float], trials: int) -> str:
    emulator.reset()
    rng = random.Random(4)
    measure = dict(zip(WAYS, (_deferred, _ours_poke, _http_poke), strict=True))
    rows = []
    for interval in intervals:
        for way, one in measure.items():
            latencies = []
            for _ in range(trials):
                session_id = emulator.add_session("brightdata", duration=None)["session_id"]
                # The session ends at a random point of the poll cycle, so the latencies sample all phases.
                latencies.append(one(emulator, session_id, interval, rng.uniform(0.2, interval + 0.2)))
            worst = max(latencies)
            rows.append(
                [
                    way,
                    f"{interval:g}",
                    trials,
                    f"{median(latencies):.2f}",
                    f"{worst:.2f}",
                    f"{interval + 1:g}",
                    verdict(worst <= interval + 1),
                ]
            )
    note = (
        "One wait on one running Bright Data session; another thread ends the session in the emulator at a "
        "random point of the poll cycle; latency is from that moment to the wait noticing: the trigger's event "
        "(deferred), or a `poke()` returning done in a loop that sleeps the poke interval between pokes, as a "
        "sensor in poke mode does (our `BrowserSessionsSensor`; `HttpSensor` reading `GET /browser_sessions/{id}` "
        "with a `response_check` on `status`). Target: at most interval + 1 s, for every trial."
    )
    headers = ["wait", "poll interval (s)", "trials", "median latency (s)", "worst (s)", "target (s)", "target"]
    return table("4. Detection latency", headers, rows, note)
