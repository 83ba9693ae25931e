"""DAGs exercising BrowserSessionsSensor in every mode against the emulator (ids and policy from params)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

START = pendulum.datetime(2025, 1, 1, tz="UTC")
CONNECTIONS = {
    "brightdata": "brightdata_default",
    "cloudflare": "cloudflare_browser_rendering_default",
    "browserbase": "browserbase_default",
}


def _gate(dag_id: str, conn_id: str, **sensor_kwargs: object) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        params={"ids": [], "missing": "finished", "zone": None},
    ) as dag:
        sensor = BrowserSessionsSensor(
            task_id="wait",
            conn_id=conn_id,
            session_ids="{{ params.ids }}",
            missing="{{ params.missing }}",
            poke_interval=1,
            **sensor_kwargs,  # type: ignore[arg-type]
        )

        @task
        def after(final_states: list[dict]) -> int:
            return len(final_states)

        after(sensor.output)
    return dag


for _platform, _conn_id in CONNECTIONS.items():
    for _mode in ("poke", "reschedule", "deferrable"):
        _kwargs: dict[str, object] = {"timeout": 120}
        if _mode == "deferrable":
            _kwargs["deferrable"] = True
        else:
            _kwargs["mode"] = _mode
        globals()[f"wait_{_platform}_{_mode}"] = _gate(f"wait_{_platform}_{_mode}", _conn_id, **_kwargs)

wait_soft_fail = _gate("wait_soft_fail", "brightdata_default", soft_fail=True, timeout=120)
wait_report_failed = _gate("wait_report_failed", "brightdata_default", fail_on_failed=False, timeout=120)
wait_timeout_poke = _gate("wait_timeout_poke", "brightdata_default", timeout=3)
wait_timeout_deferred = _gate("wait_timeout_deferred", "brightdata_default", timeout=3, deferrable=True)

with DAG(dag_id="wait_zone_drain", schedule=None, start_date=START, catchup=False) as wait_zone_drain:
    BrowserSessionsSensor(
        task_id="wait", conn_id="brightdata_default", api_name="drain_zone", poke_interval=1, deferrable=True
    )

with DAG(dag_id="wait_zone_drain_fields", schedule=None, start_date=START, catchup=False) as wait_zone_drain_fields:
    # A drain returns every session it saw end: the list operator's XCom controls keep that small.
    BrowserSessionsSensor(
        task_id="wait",
        conn_id="brightdata_default",
        api_name="drain_zone",
        poke_interval=1,
        deferrable=True,
        fields="{{ params.fields }}",
        max_xcom_bytes=100_000,
        params={"fields": "session_id,status"},
    )

with DAG(
    dag_id="wait_metadata_drain",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"tag": "none"},
) as wait_metadata_drain:
    # Only the sessions tagged with this run's value: another running session never holds the gate.
    BrowserSessionsSensor(
        task_id="wait",
        conn_id="browserbase_default",
        metadata={"airflow_tag": "{{ params.tag }}"},
        poke_interval=1,
        deferrable=True,
        timeout=120,
    )
