"""
The end-to-end suite's deployment: the emulator and a real Airflow 3 (api-server, scheduler, dag-processor,
triggerer), started once per session by ``scripts/deployment.py`` on free ports in a temporary directory,
and stopped at the end whatever happened (a failed test included), with its ports checked free.

Run with ``make e2e``; the root conftest leaves this folder out of the other suites' collection.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import deployment as deploy
from airflow_api import AirflowApi

from airflow_provider_browsersessions.testing.emulator.client import EmulatorClient

if TYPE_CHECKING:
    from collections.abc import Iterator


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Each test waits on the live deployment for tens of seconds; pytest's default 300 s is a hang guard.
    for item in items:
        item.add_marker(pytest.mark.timeout(600))


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[deploy.Deployment]:
    home = tmp_path_factory.mktemp("deployment")
    started = deploy.up(home=home, ports=deploy.Ports.free(), timeout=240)
    try:
        yield started
    finally:
        stopped = deploy.down(home=home, quiet=True)
        print(f"\nStopped {stopped}; logs were in {home / 'logs'}")


@pytest.fixture(scope="session")
def api(live: deploy.Deployment) -> AirflowApi:
    return AirflowApi(live.api_url, username=deploy.USERNAME, password=live.password)


@pytest.fixture(scope="session")
def live_emulator(live: deploy.Deployment) -> EmulatorClient:
    return EmulatorClient(live.emulator_url)
