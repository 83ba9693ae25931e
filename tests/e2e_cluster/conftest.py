"""
The cluster e2e suite's deployment: the emulator and a distributed Airflow 3 (PostgreSQL, Redis, CeleryExecutor,
two Celery workers, two triggerers), started once by ``scripts/cluster.py`` on free ports in a temporary
directory with this folder's test DAGs next to the examples, and stopped at the end whatever happened.

Run with ``make e2e-cluster``; the root conftest leaves this folder out of the other suites' collection.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # cluster.py, deployment.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # the REST client, the single-node helpers
sys.path.insert(0, str(Path(__file__).resolve().parent / "dags"))  # the test DAGs (their constants)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "example_dags"))

import cluster
from cluster_checks import Metadata
from live import api_client, emulator_client, running

if TYPE_CHECKING:
    from collections.abc import Iterator

    import deployment as deploy
    from airflow_api import AirflowApi

    from airflow_provider_browsersessions.testing.emulator.client import EmulatorClient

TEST_DAGS = sorted((Path(__file__).resolve().parent / "dags").glob("cluster_*.py"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Each test waits on the live cluster for minutes; pytest's default 300 s is a hang guard.
    for item in items:
        item.add_marker(pytest.mark.timeout(1500))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[deploy.Deployment]:
    start = functools.partial(cluster.up, timeout=900, extra_dags=TEST_DAGS)
    with running(tmp_path_factory.mktemp("cluster"), start) as started:
        yield started


@pytest.fixture(scope="module")
def api(live: deploy.Deployment) -> AirflowApi:
    return api_client(live)


@pytest.fixture(scope="module")
def live_emulator(live: deploy.Deployment) -> EmulatorClient:
    return emulator_client(live)


@pytest.fixture(scope="module")
def metadata(live: deploy.Deployment) -> Iterator[Metadata]:
    db = Metadata(live)
    yield db
    db.connection.close()
