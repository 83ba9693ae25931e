"""Scenario 2, waiting cost: API requests per poll interval for K waits on one connection, three ways."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import HTTP_BRIGHTDATA, table, verdict

ZONE = "bench_zone"


def _http_sensor_poke_round(emulator: Any, endpoints: list[str], params: dict[str, Any] | None) -> int:
    """One poke of each of K HttpSensors: how a DAG author waits without this package."""
    from airflow.providers.http.sensors.http import HttpSensor

    def drained(response: Any) -> bool:
        return response.json()["total"] == 0

    def ended(response: Any) -> bool:
        return response.json()["session"]["status"] != "running"

    since = len(emulator.request_log())
    for index, endpoint in enumerate(endpoints):
        sensor = HttpSensor(
            task_id=f"http_wait_{index}",
            http_conn_id=HTTP_BRIGHTDATA,
            endpoint=endpoint,
            request_params=params or {},
            response_check=drained if params else ended,
        )
        sensor.poke(context={})
    return len(emulator.request_log()) - since


def _poke_round(emulator: Any, waits: list[dict[str, Any]]) -> int:
    """One poke of each of K BrowserSessionsSensors in poke/reschedule mode."""
    from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

    since = len(emulator.request_log())
    for index, kwargs in enumerate(waits):
        sensor = BrowserSessionsSensor(task_id=f"wait_{index}", conn_id="brightdata_default", **kwargs)
        sensor.poke({})
        sensor.hook.close()
    return len(emulator.request_log()) - since


def _deferred_requests_per_interval(emulator: Any, waits: list[dict[str, Any]], interval: float) -> float:
    """K BrowserSessionsTriggers in one event loop, as in a triggerer: requests per interval, steady state."""
    from airflow_provider_browsersessions.sessions import SessionQuery
    from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

    triggers = [
        BrowserSessionsTrigger(
            conn_id="brightdata_default",
            session_ids=kwargs.get("session_ids"),
            filters=SessionQuery.build(api_name=kwargs.get("api_name")).to_dict(),
            poll_interval=interval,
        )
        for kwargs in waits
    ]
    intervals = 3

    async def scenario() -> float:
        async def consume(trigger: Any) -> None:
            async for _ in trigger.run():
                return

        tasks = [asyncio.create_task(consume(t)) for t in triggers]
        await asyncio.sleep(interval * 1.5)  # everyone subscribed, first polls done
        since, started = len(emulator.request_log()), time.monotonic()
        await asyncio.sleep(interval * intervals)
        made, elapsed = len(emulator.request_log()) - since, time.monotonic() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return made / (elapsed / interval)

    return asyncio.run(scenario())


def run(emulator: Any, *, ks: list[int], interval: float) -> str:
    rows = []
    for shape in ("drain one zone", "own session each"):
        for k in ks:
            emulator.reset()
            if shape == "drain one zone":
                for _ in range(5):
                    emulator.add_session("brightdata", duration=None, api_name=ZONE)
                waits: list[dict[str, Any]] = [{"api_name": ZONE}] * k
                endpoints = ["/browser_sessions"] * k
                params: dict[str, Any] | None = {"status": "running", "api_name": ZONE, "limit": 100}
            else:
                ids = [emulator.add_session("brightdata", duration=None, api_name=ZONE)["session_id"] for _ in range(k)]
                waits = [{"session_ids": [sid], "api_name": ZONE} for sid in ids]
                endpoints = [f"/browser_sessions/{sid}" for sid in ids]
                params = None
            poke = _poke_round(emulator, waits)
            http = _http_sensor_poke_round(emulator, endpoints, params)
            deferred = _deferred_requests_per_interval(emulator, waits, interval)
            running = 5 if shape == "drain one zone" else k
            walk = max(1, -(-running // 100))  # pages of one walk of the running sessions
            rows.append(
                [
                    shape,
                    k,
                    poke,
                    http,
                    f"{deferred:.1f}",
                    f"{http / round(deferred, 1):.0f}x",  # against the figure shown
                    walk,
                    verdict(round(deferred) == 1),
                ]
            )
    note = (
        f"Requests the emulator received per poll interval ({interval:g} s). Poke/reschedule mode and HttpSensor: "
        "one poke of each of the K sensors. Deferred: K `BrowserSessionsTrigger`s in one event loop, as in one "
        "triggerer, counted over three intervals in steady state. HttpSensor baseline: `GET /browser_sessions?"
        "status=running&api_name=…` with a `response_check` on `total` (drain), or `GET /browser_sessions/{id}` "
        "with a check on `status` (own session); it has no deferred form to compare with, because `HttpSensor` "
        "ignores `deferrable=True` when it has a `response_check`. One walk of the running list costs "
        "ceil(running / 100) requests (the API's page maximum): K watched sessions that all run at once need "
        "K/100 pages, whoever asks. Target: 1 request per interval for any K."
    )
    headers = [
        "waits",
        "K",
        "poke mode (ours)",
        "HttpSensor",
        "deferred (ours, shared poll)",
        "HttpSensor ÷ deferred",
        "one walk of the running list",
        "target: 1 request per interval",
    ]
    return table("2. Waiting cost: requests per poll interval", headers, rows, note)
