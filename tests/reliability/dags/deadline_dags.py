"""Long poke intervals with short timeouts, drains by URL, and drains that remember (issues #19, #21, #25)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

START = pendulum.datetime(2025, 1, 1, tz="UTC")
CONNECTIONS = {"brightdata": "brightdata_default", "cloudflare": "cloudflare_browser_rendering_default"}


def _dag(dag_id: str, **sensor_kwargs: object) -> DAG:
    with DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, params={"ids": []}) as dag:
        BrowserSessionsSensor(task_id="wait", **sensor_kwargs)  # type: ignore[arg-type]
    return dag


# A poke interval far longer than the timeout: the wait must still end at its deadline, naming what runs.
for _mode in ("poke", "reschedule", "deferrable"):
    _mode_kwargs: dict[str, object] = {"deferrable": True} if _mode == "deferrable" else {"mode": _mode}
    globals()[f"deadline_{_mode}"] = _dag(
        f"deadline_{_mode}",
        conn_id="brightdata_default",
        session_ids="{{ params.ids }}",
        poke_interval=30,
        timeout=5,
        **_mode_kwargs,
    )

# A drain by URL: a running session has no URL yet, so this must be refused, never a silent success.
for _platform, _conn_id in CONNECTIONS.items():
    globals()[f"drain_by_url_{_platform}"] = _dag(
        f"drain_by_url_{_platform}", conn_id=_conn_id, target_url="shop", poke_interval=1, timeout=60
    )

# Reschedule-mode drains that must remember what they saw running between pokes (Airflow 3.3's store).
memory_drain = _dag(
    "memory_drain",
    conn_id="brightdata_default",
    api_name="memory_zone",
    mode="reschedule",
    poke_interval=1,
    timeout=120,
)
memory_drain_report = _dag(
    "memory_drain_report",
    conn_id="brightdata_default",
    api_name="memory_zone",
    mode="reschedule",
    poke_interval=1,
    timeout=120,
    fail_on_failed=False,
)
# A poke-mode drain whose first try dies mid-wait: the retry resumes from the store.
memory_retry = _dag(
    "memory_retry",
    conn_id="brightdata_default",
    api_name="retry_zone",
    poke_interval=1,
    timeout=120,
    fail_on_failed=False,
    retries=1,
    retry_delay=timedelta(seconds=0),
)
# A deferred drain whose trigger sees a session start: it hands its memory back to the sensor (a checkpoint),
# which defers again with it (and, on Airflow 3.3, saves it in the task state store).
memory_deferred = _dag(
    "memory_deferred",
    conn_id="brightdata_default",
    api_name="deferred_memory_zone",
    deferrable=True,
    poke_interval=1,
    timeout=120,
)
