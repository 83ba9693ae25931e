"""
The end-to-end suite's deployment: the emulator and a real Airflow 3 (api-server, scheduler, dag-processor,
triggerer), started once per session by ``scripts/deployment.py`` on free ports in a temporary directory,
and stopped at the end whatever happened (a failed test included), with its ports checked free.

Run with ``make e2e``; the root conftest leaves this folder out of the other suites' collection.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import deployment as deploy
from live import StatsdListener, api_client, emulator_client, running

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_api import AirflowApi

    from airflow_provider_browsersessions.testing.emulator.client import EmulatorClient


# Stops the session's deployment (its `down` is the test): it runs after every other test.
RUNS_LAST = "test_up_then_down_leaves_no_process_and_no_port"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Each test waits on the live deployment for tens of seconds; pytest's default 300 s is a hang guard.
    for item in items:
        item.add_marker(pytest.mark.timeout(600))
    items.sort(key=lambda item: item.name == RUNS_LAST)  # stable: the others keep their order


@pytest.fixture(scope="session")
def statsd() -> Iterator[StatsdListener]:
    """The UDP socket the deployment sends its StatsD lines to, listening before the deployment starts."""
    with StatsdListener() as listener:
        yield listener


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, statsd: StatsdListener) -> Iterator[deploy.Deployment]:
    start = functools.partial(deploy.up, ports=deploy.Ports.free(), timeout=240, statsd_port=statsd.port)
    with running(tmp_path_factory.mktemp("deployment"), start) as started:
        yield started


@pytest.fixture(scope="session")
def api(live: deploy.Deployment) -> AirflowApi:
    return api_client(live)


@pytest.fixture(scope="session")
def live_emulator(live: deploy.Deployment) -> EmulatorClient:
    return emulator_client(live)
