"""A small client of Airflow 3's REST API v2, authenticated the way a script is: ``POST /auth/token``."""

from __future__ import annotations

import time
from typing import Any

import requests
from deployment import api_token


class AirflowApi:
    """
    Call ``/api/v2`` of a running Airflow 3 API server with a JWT from the simple auth manager.

    :param url: The API server's ``http://host:port``.
    :param username: The user to log in as.
    :param password: Its password.
    """

    def __init__(self, url: str, *, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.token = api_token(self.url, password, username=username)
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def call(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        """One request; fails with the API's answer when the status is not ``expect``."""
        answer = self.http.request(method, f"{self.url}/api/v2{path}", timeout=30, **kwargs)
        assert answer.status_code == expect, f"{method} {path}: HTTP {answer.status_code} {answer.text[:1000]}"
        return answer.json() if answer.content else None

    def asset_events(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """
        A list of asset events (``/assets/events`` or a run's ``upstreamAssetEvents``).

        Airflow 3.3.2 answers these with HTTP 500 while a run that consumed one of the events is queued
        but not started: its response model requires ``created_dagruns[].start_date``, which such a run
        does not have yet (apache/airflow#71360, fixed after 3.3.2). Runs start within seconds, so the call
        is tried again for up to a minute.
        """
        deadline = time.monotonic() + 60
        while True:
            answer = self.http.get(f"{self.url}/api/v2{path}", params=params, timeout=30)
            if answer.status_code != 500 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert answer.status_code == 200, f"GET {path}: HTTP {answer.status_code} {answer.text[:1000]}"
        return list(answer.json()["asset_events"])

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str) -> str:
        """Start a manual run now; return its run id."""
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
        return str(run["dag_run_id"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.call("GET", path)["value"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"])

    def wait_for_run(
        self, dag_id: str, run_id: str, *, timeout: float, watch_task: str | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        """
        Poll a run until it ends; return it and the states ``watch_task`` went through, in order.

        :param watch_task: A task whose state changes to record (e.g. to see a sensor go ``deferred``).
        """
        deadline = time.monotonic() + timeout
        states: list[str] = []
        while time.monotonic() < deadline:
            if watch_task:
                state = self.task_instance(dag_id, run_id, watch_task)["state"]
                if state and (not states or states[-1] != state):
                    states.append(state)
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run, states
            time.sleep(0.5)
        raise AssertionError(f"{dag_id} run {run_id} not finished after {timeout} s; {watch_task} went {states}")
