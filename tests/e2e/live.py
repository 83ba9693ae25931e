"""What the single-node and cluster e2e suites share about their live deployment: start, stop, clients."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

import deployment as deploy
from airflow_api import AirflowApi

from airflow_provider_browsersessions.testing.emulator.client import EmulatorClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@contextlib.contextmanager
def running(home: Path, start: Callable[..., deploy.Deployment]) -> Iterator[deploy.Deployment]:
    """
    Start a deployment in ``home`` and stop it at the end whatever happened (a failed test included).

    :param home: The deployment's folder (ports, logs, database).
    :param start: Starts it, called with ``home=``: ``deployment.up`` or ``cluster.up`` with their other arguments.
    """
    started = start(home=home)
    try:
        yield started
    finally:
        stopped = deploy.down(home=home, quiet=True)
        print(f"\nStopped {stopped}; logs were in {home / 'logs'}")


class StatsdListener:
    """
    A UDP socket on 127.0.0.1 the deployment's StatsD lines go to, read by a daemon thread into ``lines``.

    Start it before the deployment (``deployment.up(statsd_port=...)``); each line is kept as sent, e.g.
    ``airflow.scheduler.browsersessions.requests,platform=brightdata,outcome=2xx:1|c``.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port: int = self.sock.getsockname()[1]
        self._lines: list[str] = []
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="e2e-statsd", daemon=True)

    def __enter__(self) -> StatsdListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._guard:
                self._lines.extend(data.decode(errors="replace").splitlines())

    def lines(self) -> list[str]:
        """Every line received so far, oldest first."""
        with self._guard:
            return list(self._lines)

    def wait_for(self, prefix: str, *, tags: dict[str, str] | None = None, timeout: float = 300) -> str:
        """
        The first line whose name starts with ``prefix`` and that carries ``tags``, waiting up to ``timeout`` s.

        :raises AssertionError: when none came in time (the message lists the names seen under ``prefix``'s root).
        """
        wanted = [f",{name}={value}" for name, value in (tags or {}).items()]
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines():
                head = line.partition(":")[0]
                if head.startswith(prefix) and all(f"{tag}," in f"{head}," for tag in wanted):
                    return line
            if time.monotonic() > deadline:
                root = prefix.split(".browsersessions")[0]
                seen = sorted({line.partition(":")[0] for line in self.lines() if root in line})
                raise AssertionError(f"no StatsD line {prefix} {tags or ''} within {timeout:g} s; seen: {seen[:40]}")
            time.sleep(1)


def api_client(live: deploy.Deployment) -> AirflowApi:
    """The REST API v2 client, logged in as the deployment's admin."""
    return AirflowApi(live.api_url, username=deploy.USERNAME, password=live.password)


def emulator_client(live: deploy.Deployment) -> EmulatorClient:
    """The client of the deployment's emulator (its control API: add, end, fail sessions; request log)."""
    return EmulatorClient(live.emulator_url)


@contextlib.contextmanager
def port_taken(port: int) -> Iterator[None]:
    """Another program listening on ``port`` of 127.0.0.1 while the block runs."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield


# A watcher's memory in Airflow 3.3's per-asset state store, by asset name and key ({p}: the driver's placeholder).
WATCHER_MEMORY_SQL = (
    "SELECT store.value FROM asset_state_store store JOIN asset ON asset.id = store.asset_id "
    "WHERE asset.name = {p} AND store.key = {p}"
)


def decode_watcher_memory(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The stored memory from ``WATCHER_MEMORY_SQL``'s rows ({} if nothing yet), as the store's backend encoded it."""
    if not rows:
        return {}
    state = json.loads(rows[0][0])
    return json.loads(state) if isinstance(state, str) else state


def sqlite_watcher_memory(live: deploy.Deployment, asset: str, key: str) -> dict[str, Any]:
    """
    What an asset's watcher keeps under ``key``, read from the single-node deployment's SQLite metadata DB.

    Read-only; a read that meets Airflow's write lock counts as nothing seen yet (the caller polls again).
    """
    path = live.settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            return decode_watcher_memory(db.execute(WATCHER_MEMORY_SQL.format(p="?"), (asset, key)).fetchall())
    except sqlite3.OperationalError:
        return {}
