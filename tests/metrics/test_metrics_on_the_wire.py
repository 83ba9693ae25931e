"""The provider's metrics as StatsD lines on a loopback UDP socket, sent by real runs against the emulator.

Airflow's own ``[metrics]`` settings (``statsd_on``, host, port, InfluxDB-style tags so the tags travel too)
point its ``Stats`` at a socket this module binds; then real DAG runs (a listing, a poke, a deferred wait, a
close), a paced walk and an asset watcher's steps send what they send, and the tests read every line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import select
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow_harness import run_dag

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Iterator

# Airflow's StatsD logger needs the ``statsd`` client (Airflow's ``statsd`` extra), a test dependency here.
pytest.importorskip("statsd", reason="Airflow's StatsD logger needs the statsd package (pip install statsd)")

DAGS = Path(__file__).parent / "dags" / "metrics_dags.py"
CF, BD = "cloudflare_browser_rendering_default", "brightdata_default"

#: Sent only where asset watchers exist (Airflow 3).
AIRFLOW3_ONLY = {metrics.WATCHER_EVENTS}


@dataclasses.dataclass(frozen=True)
class Line:
    """One StatsD line: ``airflow.<name>,tag=value,...:<value>|<type>``."""

    raw: str
    name: str
    tags: dict[str, str]
    kind: str


def parse(raw: str) -> Line:
    head, _, rest = raw.partition(":")
    name, *pairs = head.split(",")
    tags = dict(pair.split("=", 1) for pair in pairs)
    return Line(raw=raw, name=name.removeprefix("airflow."), tags=tags, kind=rest.rpartition("|")[2])


class StatsdSocket:
    """A UDP socket on loopback that StatsD lines are sent to; ``drain`` reads what arrived."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lines: list[Line] = []

    def drain(self) -> list[Line]:
        # Loopback datagrams are queued when sent: whatever is not readable now was never sent.
        while select.select([self.sock], [], [], 0.05)[0]:
            for raw in self.sock.recv(65535).decode().splitlines():
                self.lines.append(parse(raw))
        return self.lines


def _point_airflow_stats_at_config() -> None:
    """What Airflow does when its processes start: build ``Stats`` from the ``[metrics]`` settings."""
    try:  # Airflow 3: the Task SDK's stats module, initialized by the task runner and the triggerer
        from airflow.sdk.observability import stats
        from airflow.sdk.observability.metrics.stats_utils import get_stats_factory

        stats.initialize(factory=get_stats_factory(), export_legacy_names=False)
    except ImportError:  # Airflow 2.11: the Stats metaclass picks its factory once, at import
        from airflow.configuration import conf
        from airflow.metrics.base_stats_logger import NoStatsLogger
        from airflow.metrics.statsd_logger import get_statsd_logger
        from airflow.stats import Stats

        type(Stats).factory = get_statsd_logger if conf.getboolean("metrics", "statsd_on") else NoStatsLogger
        Stats.instance = None


@contextlib.contextmanager
def statsd_settings(**settings: str) -> Iterator[None]:
    """Airflow's ``[metrics]`` settings from the environment for the block, ``Stats`` rebuilt from them."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(f"AIRFLOW__METRICS__{name.upper()}", value)
        _point_airflow_stats_at_config()
        try:
            yield
        finally:
            patch.undo()
            _point_airflow_stats_at_config()


@dataclasses.dataclass
class Scenario:
    lines: list[Line]
    session_ids: list[str]
    base_url: str


async def _watch_one_end(emulator: Any, session_id: str) -> None:
    """Step an asset watcher until it reported the session's end (bounded: the test fails, never hangs)."""
    from airflow_provider_browsersessions.triggers.events import BrowserSessionEventTrigger

    def history_polls() -> int:
        return sum(1 for e in emulator.request_log(platform="brightdata") if "status" not in e["query"])

    events = BrowserSessionEventTrigger(conn_id=BD, poll_interval=0.1).run()
    try:
        async with asyncio.timeout(60):
            first_event = asyncio.ensure_future(anext(events))
            polls = history_polls()
            while history_polls() < polls + 2:  # the watcher saw it running: its end is news
                await asyncio.sleep(0.05)
            emulator.end_session("brightdata", session_id, status="failed")
            await first_event
    finally:
        await events.aclose()


@pytest.fixture(scope="module")
def scenario(airflow_db: Path) -> Iterator[Scenario]:
    """Everything that sends metrics, run once with StatsD on; the lines it sent."""
    from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook
    from airflow_provider_browsersessions.testing.emulator import Emulator

    wire = StatsdSocket()
    ids: list[str] = []
    with (
        Emulator(seed=0, sessions=0, speed=10.0) as emulator,
        pytest.MonkeyPatch.context() as patch,
        statsd_settings(
            statsd_on="True",
            statsd_host="127.0.0.1",
            statsd_port=str(wire.port),
            statsd_prefix="airflow",
            statsd_influxdb_enabled="True",
        ),
    ):
        for name, value in emulator.connection_env().items():
            patch.setenv(name, value)
        ids += [emulator.add_session("brightdata", duration=5)["session_id"] for _ in range(5)]
        assert run_dag(DAGS, "metrics_list").state == "success"

        # The deferred wait's session outlives the poke's wait (2 s here), so the trigger really waits for it.
        poke, deferred = ([emulator.add_session("cloudflare", duration=d)["sessionId"]] for d in (20, 60))
        ids += poke + deferred
        assert run_dag(DAGS, "metrics_waits", conf={"poke": poke, "deferred": deferred}).state == "success"

        to_close = [emulator.add_session("cloudflare", duration=None)["sessionId"] for _ in range(2)]
        ids += to_close
        assert run_dag(DAGS, "metrics_close", conf={"ids": to_close}).state == "success"

        # A refusal and a server error before an answer: each attempt is counted by its own outcome.
        emulator.script_faults([{"kind": "429", "retry_after": 0.1}, {"kind": "503"}], platform="cloudflare")
        hook = get_browser_sessions_hook(CF)
        try:
            hook.get_session(to_close[0])
        finally:
            hook.close()

        # A budget small enough that the pacer spreads the last requests of the window (and the headers say so).
        emulator.set_lockout(budget=12, window=2.0)
        hook = get_browser_sessions_hook(CF)
        try:
            for session_id in to_close * 4:
                hook.get_session(session_id)
        finally:
            hook.close()
            emulator.set_lockout(budget=None)

        if AIRFLOW_V_3_0_PLUS:
            watched = emulator.add_session("brightdata", duration=None)["session_id"]
            ids.append(watched)
            asyncio.run(_watch_one_end(emulator, watched))
        yield Scenario(lines=list(wire.drain()), session_ids=ids, base_url=emulator.url)
    wire.sock.close()


def ours(scenario: Scenario) -> list[Line]:
    return [line for line in scenario.lines if line.name.startswith(f"{metrics.PREFIX}.")]


def test_every_metric_is_seen_on_the_wire(scenario):
    seen = {line.name for line in ours(scenario)}
    expected = set(metrics.METRIC_NAMES) - (set() if AIRFLOW_V_3_0_PLUS else AIRFLOW3_ONLY)
    assert expected - seen == set()
    assert seen <= set(metrics.METRIC_NAMES)  # nothing sent under our prefix that the docs do not list


def test_requests_are_told_apart_by_platform_and_outcome(scenario):
    requests = [line for line in ours(scenario) if line.name == metrics.REQUESTS]
    assert {(line.tags["platform"], line.tags["outcome"]) for line in requests} >= {
        ("brightdata", "2xx"),
        ("cloudflare", "2xx"),
        ("cloudflare", "429"),
        ("cloudflare", "5xx"),
    }
    assert all(line.kind == "c" for line in requests)
    durations = [line for line in ours(scenario) if line.name == metrics.REQUEST_DURATION]
    assert durations
    assert all(line.kind == "ms" for line in durations)


def test_waits_are_counted_by_mode_and_outcome(scenario):
    waits = {(line.tags["mode"], line.tags["outcome"]) for line in ours(scenario) if line.name == metrics.WAITS}
    assert waits == {("poke", "success"), ("deferred", "success")}


def test_closes_and_watcher_events_say_what_happened(scenario):
    closes = [line for line in ours(scenario) if line.name == metrics.SESSIONS_CLOSED]
    assert [(line.tags["platform"], line.tags["outcome"]) for line in closes] == [("cloudflare", "closed")] * 2
    if AIRFLOW_V_3_0_PLUS:
        events = [line.tags["status"] for line in ours(scenario) if line.name == metrics.WATCHER_EVENTS]
        assert events == ["failed"]


def test_the_rate_budget_is_reported_in_requests_and_percent(scenario):
    percents = [
        float(line.raw.split(":")[1].split("|")[0])
        for line in ours(scenario)
        if line.name == metrics.RATE_BUDGET_REMAINING_PERCENT
    ]
    assert percents
    assert all(0 <= value <= 100 for value in percents)
    assert min(percents) < 50  # the budget ran low enough to be paced


def test_no_line_names_a_session_a_url_or_a_connection(scenario):
    assert scenario.lines
    forbidden = [*scenario.session_ids, CF, BD, "127.0.0.1", "http", "localhost", scenario.base_url]
    leaks = [(token, line.raw) for line in scenario.lines for token in forbidden if token in line.raw]
    assert leaks == []


def test_tag_values_come_from_small_fixed_sets(scenario):
    allowed = {
        "platform": {"cloudflare", "brightdata", metrics.OTHER},
        "outcome": set(metrics.REQUEST_OUTCOMES | metrics.WAIT_OUTCOMES | metrics.POLL_OUTCOMES) | {"closed"},
        "mode": set(metrics.WAIT_MODES),
        "status": {"running", "finished", "failed"},
    }
    for line in ours(scenario):
        for key, value in line.tags.items():
            assert value in allowed[key], line.raw
