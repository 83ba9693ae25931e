"""The provider's metrics: names, tag rules and one small function per event, sent through Airflow's ``Stats``.

Airflow's ``[metrics]`` settings decide where they go (StatsD, Datadog, OpenTelemetry, or nowhere), so users get
them from the setup they already have. Every tag value comes from a small fixed set (a value outside it is sent
as ``other``): never a session id, a URL or a connection id, which would grow a metrics store without bound and
could leak what a URL carries. Sending a metric never raises into the caller: a broken StatsD must not fail a
task or a trigger. The list of names, their types and tags is in ``docs/metrics.md``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import logging
import threading
import time
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping

__all__ = [
    "METRIC_NAMES",
    "PACING_SLEEP",
    "PAGES",
    "RATE_BUDGET_REMAINING",
    "RATE_BUDGET_REMAINING_PERCENT",
    "REQUESTS",
    "REQUEST_DURATION",
    "SESSIONS_CLOSED",
    "SHARED_POLLS_LIVE",
    "SHARED_POLL_DURATION",
    "SHARED_POLL_WAITS",
    "WAITS",
    "WAIT_DURATION",
    "WATCHER_EVENTS",
    "RequestTally",
    "tallied",
]

log = logging.getLogger(__name__)

PREFIX = "browsersessions"

#: Counter, tags ``platform``, ``outcome``: one per HTTP attempt (a retry is another attempt).
REQUESTS = f"{PREFIX}.requests"
#: Timer, tags ``platform``, ``outcome``: one attempt, from sending to the whole body read (pacing not included).
REQUEST_DURATION = f"{PREFIX}.request.duration"
#: Counter, tag ``platform``: list pages a walk consumed.
PAGES = f"{PREFIX}.pages"
#: Gauge, tag ``platform``: requests left in the rate window, as the platform's ``Ratelimit`` header said last.
RATE_BUDGET_REMAINING = f"{PREFIX}.rate_budget.remaining"
#: Gauge, tag ``platform``: the same, in percent of the window's quota (when the platform says the quota).
RATE_BUDGET_REMAINING_PERCENT = f"{PREFIX}.rate_budget.remaining_percent"
#: Timer, tag ``platform``: a pacing wait before a request (sent only when the pacer waits).
PACING_SLEEP = f"{PREFIX}.pacing.sleep"
#: Gauge: shared polls live in the triggerer's event loop.
SHARED_POLLS_LIVE = f"{PREFIX}.shared_poll.live"
#: Gauge: waits (deferred sensors) the poll that just ran serves.
SHARED_POLL_WAITS = f"{PREFIX}.shared_poll.waits"
#: Timer, tag ``outcome`` (``ok``, ``error``): one shared poll's walk of the running sessions.
SHARED_POLL_DURATION = f"{PREFIX}.shared_poll.duration"
#: Counter, tags ``mode``, ``outcome``: waits concluded.
WAITS = f"{PREFIX}.waits"
#: Timer, tags ``mode``, ``outcome``: how long a concluded wait took.
WAIT_DURATION = f"{PREFIX}.wait.duration"
#: Counter, tag ``status``: events an asset watcher fired.
WATCHER_EVENTS = f"{PREFIX}.watcher.events"
#: Counter, tags ``platform``, ``outcome``: sessions a close task handled, by what became of each.
SESSIONS_CLOSED = f"{PREFIX}.sessions.closed"

#: Every name this module sends (docs/metrics.md lists each; a test checks each is seen on the wire).
METRIC_NAMES = (
    REQUESTS,
    REQUEST_DURATION,
    PAGES,
    RATE_BUDGET_REMAINING,
    RATE_BUDGET_REMAINING_PERCENT,
    PACING_SLEEP,
    SHARED_POLLS_LIVE,
    SHARED_POLL_WAITS,
    SHARED_POLL_DURATION,
    WAITS,
    WAIT_DURATION,
    WATCHER_EVENTS,
    SESSIONS_CLOSED,
)

#: What sent a value outside its tag's allowed set.
OTHER = "other"

#: ``outcome`` of a request: the status class, or why no status came.
REQUEST_OUTCOMES = frozenset({"2xx", "3xx", "4xx", "429", "5xx", "network", "deadline", "malformed"})
#: ``mode`` of a wait: the sensor's mode, ``deferred`` for a deferrable one.
WAIT_MODES = frozenset({"poke", "reschedule", "deferred"})
#: ``outcome`` of a wait: the sensor's and the trigger's ends (a failed session that fails the gate is ``failed``).
WAIT_OUTCOMES = frozenset({"success", "failed", "timeout", "error"})
#: ``outcome`` of a shared poll.
POLL_OUTCOMES = frozenset({"ok", "error"})

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


# -- tag rules ---------------------------------------------------------------------------------------------------


def allowed(value: object, choices: frozenset[str]) -> str:
    """The tag value when ``choices`` holds it, else ``other``: no tag ever takes an unbounded value."""
    text = str(value)
    return text if text in choices else OTHER


#: The platforms' ``name``s: each ``Platform`` subclass adds its own when it is defined (``platforms.base``), so a
#: new platform needs no edit here, and this module imports no layer above it.
_PLATFORMS: set[str] = set()


def register_platform(name: str) -> None:
    """Allow ``name`` as a ``platform`` tag (called by ``Platform.__init_subclass__``)."""
    _PLATFORMS.add(name)


def platform_tag(name: object) -> str:
    """``platform``: a registered platform's ``name`` (``cloudflare``, ``brightdata``, ...), else ``other``."""
    return name if isinstance(name, str) and name in _PLATFORMS else OTHER


def _statuses() -> frozenset[str]:
    from airflow_provider_browsersessions.sessions import SessionStatus

    return frozenset(status.value for status in SessionStatus)


def request_outcome(*, status: int | None = None, error: BaseException | None = None) -> str:
    """
    A request's ``outcome``: ``2xx``, ``3xx``, ``4xx``, ``429``, ``5xx``, or ``network``, ``deadline``, ``malformed``.

    :param status: The HTTP status, when an answer came.
    :param error: The attempt's error, if it failed.
    """
    from airflow_provider_browsersessions.exceptions import (
        MalformedResponseError,
        RequestDeadlineError,
        ResponseTooLargeError,
        TransportError,
    )

    if isinstance(error, RequestDeadlineError):
        return "deadline"
    if isinstance(error, MalformedResponseError | ResponseTooLargeError):
        return "malformed"
    if error is not None:
        status = getattr(error, "status", None)
        if status is None:
            return "network" if isinstance(error, TransportError) else OTHER
    if status is None:
        return OTHER
    if status == 429:
        return "429"
    return allowed(f"{status // 100}xx", REQUEST_OUTCOMES)


def wait_outcome_of(error: BaseException) -> str | None:
    """
    How a sensor's ``execute`` that raised ``error`` ended its wait; None when the wait goes on (deferred, rescheduled).

    Read from the class names along the error's MRO, so it holds on Airflow 2.11 and 3 alike.
    """
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & {"TaskDeferred", "AirflowRescheduleException"}:
        return None
    if "SessionsFailedError" in names:
        return "failed"
    if "AirflowSensorTimeout" in names:
        return "timeout"
    if "AirflowSkipException" in names:
        # soft_fail: the skip stands for a failed session (its cause) or the deadline.
        cause = error.__cause__
        return "failed" if cause is not None and type(cause).__name__ == "SessionsFailedError" else "timeout"
    return "error"


# -- tallies: what the requests of one piece of work cost, for a caller that shows it (the UI view) ---------------


@dataclasses.dataclass
class RequestTally:
    """
    The HTTP attempts made within one :func:`tallied` block, in this thread and the page fetchers it starts.

    Fed by the same per-attempt hooks that send the metrics, so it counts exactly what ``REQUESTS`` counts.

    :param requests: Attempts that ended (a retry is another attempt).
    :param throttled_at: ``time.monotonic()`` of each attempt answered 429.
    :param remaining: The rate budget left, as the last answer that said so reported it.
    :param quota: The window's quota, from that same answer (None when it did not say).
    """

    requests: int = 0
    throttled_at: list[float] = dataclasses.field(default_factory=list)
    remaining: float | None = None
    quota: float | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)

    def attempt(self, outcome: str) -> None:
        """One attempt ended with ``outcome`` (``request_outcome``)."""
        with self._lock:
            self.requests += 1
            if outcome == "429":
                self.throttled_at.append(time.monotonic())

    def budget(self, *, remaining: float, quota: float | None) -> None:
        """An answer reported its rate budget."""
        with self._lock:
            self.remaining, self.quota = remaining, quota


_TALLY: contextvars.ContextVar[RequestTally | None] = contextvars.ContextVar("browsersessions_tally", default=None)


@contextlib.contextmanager
def tallied() -> Iterator[RequestTally]:
    """
    Count the attempts made inside the block (and in page fetchers started with its context) into a new tally.

    The block's requests only: another thread's or task's requests meanwhile are not in it.
    """
    tally = RequestTally()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


# -- sending -----------------------------------------------------------------------------------------------------


_STATS: Any = None


def _stats() -> Any:
    # Imported at the first metric (a DAG file's parse imports our operators and needs none of this), then
    # kept: the compat module resolves a name on every access. ``Stats`` reads Airflow's current backend at
    # each call, so keeping the class keeps following Airflow's own (re)initialization.
    global _STATS
    if _STATS is None:
        from airflow.providers.common.compat.sdk import Stats

        _STATS = Stats
    return _STATS


def _send(kind: str, name: str, value: float | timedelta | None, tags: Mapping[str, str]) -> None:
    """Send one metric; any failure (no StatsD, a bad setting) is logged at DEBUG and swallowed."""
    try:
        stats = _stats()
        if kind == "incr":
            stats.incr(name, tags=dict(tags))
        elif kind == "gauge":
            stats.gauge(name, value, tags=dict(tags))
        else:
            stats.timing(name, value, tags=dict(tags))
    except Exception:
        log.debug("Metric %s not sent", name, exc_info=True)


def _seconds(seconds: float) -> timedelta:
    # A timedelta, which every Airflow stats backend turns into its own unit (StatsD: milliseconds).
    return timedelta(seconds=max(0.0, seconds))


def request_done(*, platform: str, outcome: str, seconds: float) -> None:
    """One HTTP attempt ended: counted and timed by platform and outcome."""
    tags = {"platform": platform_tag(platform), "outcome": allowed(outcome, REQUEST_OUTCOMES)}
    _send("incr", REQUESTS, None, tags)
    _send("timing", REQUEST_DURATION, _seconds(seconds), tags)


def page_walked(*, platform: str) -> None:
    """A walk consumed one list page."""
    _send("incr", PAGES, None, {"platform": platform_tag(platform)})


def budget_seen(*, platform: str, remaining: float | None, quota: float | None) -> None:
    """
    An answer's rate budget (``pacing.parse_ratelimit`` of its headers): remaining, absolute and in percent.

    :param platform: The platform's ``name``.
    :param remaining: Requests left in the window, when the answer said.
    :param quota: The window's quota, when the answer said.
    """
    if remaining is None:
        return
    tally = _TALLY.get()
    if tally is not None:
        tally.budget(remaining=remaining, quota=quota)
    tags = {"platform": platform_tag(platform)}
    _send("gauge", RATE_BUDGET_REMAINING, remaining, tags)
    if quota:
        _send("gauge", RATE_BUDGET_REMAINING_PERCENT, min(100.0, 100.0 * remaining / quota), tags)


# The pacing waits of the attempt running in this thread or task, left out of its request duration.
_PAUSED: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("browsersessions_paused", default=None)


def paced(*, platform: str, seconds: float) -> None:
    """A pacing wait of ``seconds`` is about to be slept (nothing is sent for no wait)."""
    if seconds <= 0:
        return
    paused = _PAUSED.get()
    if paused is not None:
        paused[0] += seconds
    _send("timing", PACING_SLEEP, _seconds(seconds), {"platform": platform_tag(platform)})


def _attempt_done(transport: Any, started: float, paused: list[float], error: BaseException | None) -> None:
    try:
        outcome = request_outcome(status=None if error else 200, error=error)
        tally = _TALLY.get()
        if tally is not None:
            tally.attempt(outcome)
        seconds = time.monotonic() - started - paused[0]
        request_done(platform=getattr(transport.platform, "name", OTHER), outcome=outcome, seconds=seconds)
    except Exception:
        log.debug("Request metric not sent", exc_info=True)


def counted_request(once: Callable[[S, T], Any]) -> Callable[[S, T], Any]:
    """Decorate a sync transport's one attempt: count and time it by platform and outcome."""

    @functools.wraps(once)
    def attempt(transport: S, request: T) -> Any:
        paused = [0.0]
        token = _PAUSED.set(paused)
        started = time.monotonic()
        try:
            result = once(transport, request)
        except Exception as err:  # a cancellation (a trigger stopped) is no request outcome: not counted
            _attempt_done(transport, started, paused, err)
            raise
        finally:
            _PAUSED.reset(token)
        _attempt_done(transport, started, paused, None)
        return result

    return attempt


def acounted_request(once: Callable[[S, T], Awaitable[Any]]) -> Callable[[S, T], Awaitable[Any]]:
    """Decorate an async transport's one attempt: count and time it by platform and outcome."""

    @functools.wraps(once)
    async def attempt(transport: S, request: T) -> Any:
        paused = [0.0]
        token = _PAUSED.set(paused)
        started = time.monotonic()
        try:
            result = await once(transport, request)
        except Exception as err:  # a cancellation (a trigger stopped) is no request outcome: not counted
            _attempt_done(transport, started, paused, err)
            raise
        finally:
            _PAUSED.reset(token)
        _attempt_done(transport, started, paused, None)
        return result

    return attempt


def poll_done(*, seconds: float, failed: bool, waits: int, live: int) -> None:
    """A shared poll walked the running sessions for ``waits`` waits; ``live`` polls share this event loop."""
    _send("timing", SHARED_POLL_DURATION, _seconds(seconds), {"outcome": "error" if failed else "ok"})
    _send("gauge", SHARED_POLL_WAITS, waits, {})
    _send("gauge", SHARED_POLLS_LIVE, live, {})


def polls_live(*, live: int) -> None:
    """The number of shared polls changed (the last wait of one left)."""
    _send("gauge", SHARED_POLLS_LIVE, live, {})


def wait_concluded(*, mode: str, outcome: str, seconds: float | None) -> None:
    """A wait ended: counted, and timed when its start is known, by mode and outcome."""
    tags = {"mode": allowed(mode, WAIT_MODES), "outcome": allowed(outcome, WAIT_OUTCOMES)}
    _send("incr", WAITS, None, tags)
    if seconds is not None:
        _send("timing", WAIT_DURATION, _seconds(seconds), tags)


def _sensor_mode(sensor: Any) -> str:
    if getattr(sensor, "deferrable", False):
        return "deferred"
    return "reschedule" if getattr(sensor, "reschedule", False) else "poke"


def reports_wait(execute: Callable[[S, T], Any]) -> Callable[[S, T], Any]:
    """
    Decorate a sensor's ``execute``: a wait it concludes (returns, fails, times out) is counted and timed.

    The sensor's ``deferrable``/``reschedule`` give the mode and its ``_wait_started`` (monotonic) the start;
    a deferral or a reschedule concludes nothing (the trigger reports a deferred wait's end).
    """

    def report(sensor: Any, outcome: str | None) -> None:
        if outcome is None:
            return
        try:
            started = getattr(sensor, "_wait_started", None)
            seconds = time.monotonic() - started if isinstance(started, int | float) else None
            wait_concluded(mode=_sensor_mode(sensor), outcome=outcome, seconds=seconds)
        except Exception:
            log.debug("Wait metric not sent", exc_info=True)

    @functools.wraps(execute)
    def wrapped(sensor: S, context: T) -> Any:
        try:
            result = execute(sensor, context)
        except BaseException as err:
            report(sensor, wait_outcome_of(err))
            raise
        report(sensor, "success")
        return result

    return wrapped


def _status_of(event: Any) -> str | None:
    payload = getattr(event, "payload", None)
    return payload.get("status") if isinstance(payload, dict) else None


def reports_deferred_wait(run: Callable[P, AsyncIterator[Any]]) -> Callable[P, AsyncIterator[Any]]:
    """Decorate a wait trigger's ``run``: its final event (not a checkpoint) is counted and timed, mode ``deferred``."""

    @functools.wraps(run)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Any]:
        started = time.monotonic()
        events = run(*args, **kwargs)
        try:
            async for event in events:
                status = _status_of(event)
                if status in WAIT_OUTCOMES:
                    wait_concluded(mode="deferred", outcome=str(status), seconds=time.monotonic() - started)
                yield event
        finally:
            await _aclose(events)

    return wrapped


def counts_watcher_events(stream: Callable[P, AsyncIterator[Any]]) -> Callable[P, AsyncIterator[Any]]:
    """Decorate an event trigger's stream of events: each is counted by the session status it reports."""

    @functools.wraps(stream)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Any]:
        events = stream(*args, **kwargs)
        try:
            async for event in events:
                _send("incr", WATCHER_EVENTS, None, {"status": allowed(_status_of(event), _statuses())})
                yield event
        finally:
            await _aclose(events)

    return wrapped


async def _aclose(events: AsyncIterator[Any]) -> None:
    # Closing the wrapper closes what it wraps, so the trigger's own cleanup (hooks, leases) runs at once.
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def session_closed(*, platform: str, outcome: Enum) -> None:
    """
    A close task is done with one session: counted by what became of it.

    :param outcome: A ``closing.CloseOutcome`` (an enum member: its values are bounded by construction; this
        module does not import ``closing``, a layer above it).
    """
    tags = {"platform": platform_tag(platform), "outcome": str(outcome.value) if isinstance(outcome, Enum) else OTHER}
    _send("incr", SESSIONS_CLOSED, None, tags)
