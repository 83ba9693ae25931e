"""What the cluster e2e suite reads and does to its cluster: SQL on the metadata DB, killing and replacing parts."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Any

import cluster
import deployment as deploy
from live import WATCHER_MEMORY_SQL, decode_watcher_memory

if TYPE_CHECKING:
    from airflow_api import AirflowApi


class Metadata:
    """Read-only SQL on the cluster's PostgreSQL metadata DB: Airflow's own records."""

    def __init__(self, live: deploy.Deployment) -> None:
        import psycopg2

        url = live.settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2://", "postgresql://")
        self.connection = psycopg2.connect(url)
        self.connection.autocommit = True

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def triggers_by_triggerer(self, classpath_suffix: str) -> dict[str | None, int]:
        """How many triggers of a class each triggerer holds, by the triggerer's name (None: unassigned)."""
        rows = self.rows(
            "SELECT job.hostname, count(*) FROM trigger LEFT JOIN job ON job.id = trigger.triggerer_id "
            "WHERE trigger.classpath LIKE %s GROUP BY job.hostname",
            f"%{classpath_suffix}",
        )
        return {hostname: count for hostname, count in rows}

    def watcher_memory(self, asset: str, key: str) -> dict[str, Any]:
        """What an asset's watcher keeps in Airflow 3.3's asset state store under ``key`` ({} if nothing yet)."""
        return decode_watcher_memory(self.rows(WATCHER_MEMORY_SQL.format(p="%s"), asset, key))

    def task_states(self, dag_id: str, run_id: str) -> dict[str, int]:
        rows = self.rows(
            "SELECT state, count(*) FROM task_instance WHERE dag_id = %s AND run_id = %s GROUP BY state",
            dag_id,
            run_id,
        )
        return {str(state): count for state, count in rows}


def kill(live: deploy.Deployment, name: str) -> float:
    """SIGKILL every process of a component, its task processes too (a lost machine); return when it is gone."""
    deploy.kill(live.processes[name], signal.SIGKILL)
    with_deadline(lambda: not deploy._alive(live.processes[name]), timeout=30, what=f"{name} to die")
    return time.monotonic()


def replace(live: deploy.Deployment, name: str, api: AirflowApi) -> None:
    """Start a killed component again (a replacement machine) and wait until it serves."""
    log = deploy.log_path(live.home, name)
    if name in cluster.WORKERS:
        before = log.read_text(errors="replace").count(" ready.")
        deploy.start_component(live, name)
        with_deadline(
            lambda: log.read_text(errors="replace").count(" ready.") > before, timeout=300, what=f"{name} ready"
        )
        return

    def job_ids(**params: Any) -> set[int]:
        jobs = api.call("GET", "/jobs", params={"job_type": "TriggererJob", "hostname": name, **params})["jobs"]
        return {job["id"] for job in jobs}

    known = job_ids()
    deploy.start_component(live, name)
    with_deadline(lambda: job_ids(is_alive=True) - known, timeout=300, what=f"a heartbeat from the new {name}")


def with_deadline(check: Any, *, timeout: float, what: str, every: float = 1.0) -> Any:
    """Wait until check() is truthy and return it; fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout:.0f} s")
        time.sleep(every)
