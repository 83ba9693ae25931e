"""Run every example DAG end to end against the embedded emulator, and print one short result per DAG.

`make demo` calls this inside the Airflow 3 environment. It makes a throwaway Airflow home under
``.demo/``, migrates its SQLite metadata DB, starts the emulator on a free loopback port with a seeded
data set, wires both connections to it through ``AIRFLOW_CONN_*`` variables, runs each DAG with
``airflow dags test``, and stops the emulator. Nothing is left running.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".demo" / "airflow"
DAGS = (
    "example_brightdata_daily_report",
    "example_brightdata_failed_triage",
    "example_brightdata_zone_gate",
    "example_cloudflare_housekeeping",
    "example_browserbase_run_sessions",
    "example_brightdata_failed_session_watcher",
    "example_brightdata_session_audit",
)
# Lines Airflow itself writes start with a timestamp, a bracket or indentation; the rest is what tasks printed.
_AIRFLOW_LINE = re.compile(r"^(\d{4}-\d\d-\d\d|\[|\s|Traceback|During handling|\w+Error:|$)")


def airflow_env() -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
            # `dags test` warns that graphviz is missing; the demo draws no graphs.
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def prepare(dag_id: str, emulator) -> None:  # type: ignore[no-untyped-def]
    """Give a DAG something to do just before it runs."""
    if dag_id == "example_brightdata_zone_gate":
        # The seeded data has sessions running up to two more minutes; end the zone's now to keep the demo
        # short, then start three that are still running when the sensor starts (Airflow needs ~10 s).
        for record in emulator.sessions("brightdata"):
            if record["status"] == "running" and record["api_name"] == "checkout_monitor":
                emulator.end_session("brightdata", record["session_id"])
        for seconds in (25, 30, 35):
            emulator.add_session("brightdata", duration=seconds, api_name="checkout_monitor")
    if dag_id == "example_cloudflare_housekeeping":
        now = emulator.now()
        for age in (900, 600, 30):  # two of them run longer than the 3-minute threshold
            emulator.add_session("cloudflare", started_at=now - age)


def watch(emulator, env: dict[str, str]) -> list[str]:  # type: ignore[no-untyped-def]
    """
    The watcher example's trigger, run in this process as a triggerer would run it: two sessions fail
    and one finishes while it watches; it must report exactly the two failures.
    """
    import asyncio

    from airflow_provider_browsersessions.triggers.events import BrowserSessionEventTrigger

    os.environ.update({k: v for k, v in env.items() if k.startswith("AIRFLOW_CONN_")})
    ids = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(3)]
    trigger = BrowserSessionEventTrigger(conn_id="brightdata_default", on=["failed"], poll_interval=0.5)
    events: list[dict] = []

    async def scenario() -> None:
        async def consume() -> None:
            async for event in trigger.run():
                events.append(event.payload)

        task = asyncio.create_task(consume())
        await asyncio.sleep(1.0)
        emulator.end_session("brightdata", ids[0], status="failed", error={"code": "timeout", "message": "Timed out"})
        emulator.end_session("brightdata", ids[1], status="finished")
        emulator.end_session("brightdata", ids[2], status="failed", error={"code": "blocked", "message": "Blocked"})
        await asyncio.sleep(2.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    lines = [f"watcher event: {e['session_id']} {e['status']} ({e['error_code']})" for e in events]
    # The seeded data runs in real time: a seeded session may also fail while the trigger watches, and
    # reporting it is right. The check is about the demo's own three sessions.
    reported = sorted(e["session_id"] for e in events if e["session_id"] in ids)
    ok = reported == sorted([ids[0], ids[2]])
    others = len(events) - len(reported)
    lines.append(
        f"{len(reported)} event(s) for the demo's 2 failed sessions and its finished one: "
        f"{'exactly once each failed one' if ok else 'WRONG'}"
        + (f" (and {others} for seeded sessions that failed meanwhile)" if others else "")
    )
    return lines if ok else [*lines, "FAILED"]


def run(dag_id: str, env: dict[str, str]) -> tuple[bool, float, list[str]]:
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = process.stdout + process.stderr
    printed = [line for line in output.splitlines() if not _AIRFLOW_LINE.match(line)]
    succeeded = process.returncode == 0 and "state=success" in output
    if not succeeded:
        printed += output.splitlines()[-25:]
    return succeeded, time.monotonic() - started, printed


def main() -> int:
    from airflow_provider_browsersessions.testing import Emulator

    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    env = airflow_env()
    print("Preparing a throwaway Airflow home in .demo/airflow (SQLite metadata DB)...", flush=True)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    results = []
    # Real-time clock: the DAGs compare session times with the wall clock (e.g. "running > 3 min").
    with Emulator(seed=42, speed=1) as emulator:
        emulator.seed_sessions(platform="both", count=300, seed=42)
        env.update(emulator.connection_env())
        print(f"Emulator serving Bright Data, Cloudflare and Browserbase at {emulator.url}\n", flush=True)
        for dag_id in DAGS:
            print(f"▶ {dag_id}", flush=True)
            prepare(dag_id, emulator)
            ok, seconds, lines = run(dag_id, env)
            if dag_id == "example_brightdata_failed_session_watcher":
                # `dags test` runs the DAG's tasks; the asset watcher's trigger runs in the triggerer, so
                # the demo runs that trigger here, as a triggerer would, against the same emulator.
                watched = watch(emulator, env)
                ok = ok and "FAILED" not in watched
                lines = [*lines, *watched]
            for line in lines:
                print(f"    {line}")
            print(f"  {'✔ success' if ok else '✘ FAILED'} in {seconds:.1f} s\n", flush=True)
            results.append(ok)
        requests = emulator.request_count()
    print(f"Emulator stopped after {requests} API requests.")
    print(f"{sum(results)} of {len(results)} example DAGs succeeded.")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
