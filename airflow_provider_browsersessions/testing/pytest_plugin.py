"""pytest plugin: fixtures that start the embedded emulator and wire Airflow connections to it.

Registered through the ``pytest11`` entry point, so it loads in every pytest run where this package is
installed: it imports nothing heavy until a fixture is used.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_browsersessions.testing.emulator import Emulator

__all__ = ["EmulatorConnections", "browsersessions_connections", "browsersessions_emulator"]


@dataclasses.dataclass(frozen=True)
class EmulatorConnections:
    """
    What ``browsersessions_connections`` gives a test.

    :param emulator: The running emulator (seed data, inject faults, read the request log).
    :param brightdata_conn_id: The Bright Data connection id wired to it.
    :param cloudflare_conn_id: The Cloudflare connection id wired to it.
    """

    emulator: Emulator
    brightdata_conn_id: str = "brightdata_default"
    cloudflare_conn_id: str = "cloudflare_browser_rendering_default"


@pytest.fixture
def browsersessions_emulator() -> Iterator[Emulator]:
    """A started emulator of both APIs on a free loopback port (no sessions, real-time clock)."""
    from airflow_provider_browsersessions.testing.emulator import Emulator

    with Emulator(seed=0, sessions=0, speed=1.0) as emulator:
        yield emulator


@pytest.fixture
def browsersessions_connections(
    browsersessions_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> EmulatorConnections:
    """Both default connections (``brightdata_default``, ``cloudflare_browser_rendering_default``) on the emulator."""
    for name, value in browsersessions_emulator.connection_env().items():
        monkeypatch.setenv(name, value)
    return EmulatorConnections(emulator=browsersessions_emulator)
