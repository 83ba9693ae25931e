"""``BrowserSessionEventTrigger``: an asset watcher's event stream, one event per session that ended (Airflow 3).

A DAG scheduled on an asset with this trigger as its watcher starts once per session that reached one of
the ``on`` states ("run the triage DAG whenever a scraping session fails"). Sibling watchers on the same
connection and filters share one poll per interval (``shared_stream_key``); each keeps its own memory of
what it reported, in Airflow 3.3's per-asset state store when there is one, so a restarted watcher
resumes where it stopped. Delivery semantics are in ``docs/howto/events.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.compat import BaseEventTrigger, require_event_triggers
from airflow_provider_browsersessions.exceptions import ApiError, BrowserSessionsError, InvalidQueryError, cut_text
from airflow_provider_browsersessions.sessions import RUNNING_FILTERS, BrowserSession, SessionQuery, SessionStatus
from airflow_provider_browsersessions.waiting import (
    check_seconds,
    next_poll_delay,
    refuse_callable_filters,
    skip_failed_poll,
    trigger_repr,
)
from airflow_provider_browsersessions.watching import (
    OVERLAP_SECONDS,
    EndWatch,
    advance_watermark,
    catch_up_since,
    session_start,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Hashable

    from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook

__all__ = ["BrowserSessionEventTrigger"]

log = logging.getLogger(__name__)
STATE_KEY = "browsersessions_watch"
_ENDED_STATES = (SessionStatus.FINISHED.value, SessionStatus.FAILED.value)


@dataclasses.dataclass(frozen=True)
class _PollSnapshot:
    """
    One shared poll: what every sibling watcher sees.

    :param running: The running sessions that match the running filters.
    :param history: Sessions started since ``since`` (Bright Data; None on Cloudflare, which has no history).
    :param since: Epoch seconds the history reaches back to (the shared watermark minus ``OVERLAP_SECONDS``).
    """

    running: list[BrowserSession]
    history: list[BrowserSession] | None
    since: float


def _queries(filters: dict[str, Any]) -> tuple[SessionQuery, SessionQuery]:
    # The running walk takes only the filters a running session can match (sessions.RUNNING_FILTERS); the
    # others judge the sessions once they ended.
    query = SessionQuery.build(**filters)
    for name in ("status", "sort", "order"):
        if getattr(query, name) is not None:
            raise InvalidQueryError(name, "unset: the watcher reports ended sessions by `on`, newest first")
    running = SessionQuery.build(**{k: v for k, v in query.to_dict().items() if k in RUNNING_FILTERS})
    return query, running.replace(status="running")


def check_watch_arguments(
    *, conn_id: Any, on: Any, filters: Any, poll_interval: Any
) -> tuple[list[str], dict[str, Any], float, SessionQuery, SessionQuery]:
    """
    Validate a watcher's arguments, as the triggerer hands them back or as a DAG file wrote them.

    :return: The ``on`` states (sorted), the filters, the interval, the query and the running-walk query.
    :raises InvalidQueryError: naming the first argument that is not allowed.
    """
    require_event_triggers()
    if not isinstance(conn_id, str) or not conn_id:
        raise InvalidQueryError("conn_id", f"a connection id (text), not {cut_text(repr(conn_id), 100)}")
    chosen = [on] if isinstance(on, str) else list(on) if isinstance(on, list | tuple | set | frozenset) else None
    if not chosen or any(not isinstance(state, str) or state not in _ENDED_STATES for state in chosen):
        raise InvalidQueryError("on", f"one or more of {', '.join(_ENDED_STATES)}, not {cut_text(repr(on), 100)}")
    if filters is None:
        filters = {}
    if not isinstance(filters, Mapping) or not all(isinstance(name, str) for name in filters):
        raise InvalidQueryError("filters", f"a dict of filters by name, not {cut_text(repr(filters), 100)}")
    if "where" in filters and filters["where"] is not None:
        # Airflow stores a callable as its source text, which the triggerer cannot run.
        raise InvalidQueryError(
            "where",
            "unset for a watcher: it runs in the triggerer, which receives its filters as JSON, and a "
            "callable cannot be sent there; filter by the named filters instead",
        )
    interval = check_seconds("poll_interval", poll_interval)
    try:
        query, running = _queries(dict(filters))
    except BrowserSessionsError:
        raise
    except (TypeError, ValueError) as err:  # a value no filter parser expected (e.g. a list for a date)
        raise InvalidQueryError("filters", f"values each filter accepts ({cut_text(str(err), 200)})") from None
    return sorted(set(chosen)), dict(filters), interval, query, running


async def _connect(conn_id: str) -> BrowserSessionsHook:
    """
    The hook of the watched connection, imported when a watcher runs: DAG files build watchers at every parse,
    and the hooks bring the HTTP stack (``requests``, ``httpx``, ``tenacity``) that only the triggerer needs.
    """
    from airflow_provider_browsersessions.hooks.base import aget_browser_sessions_hook

    return await aget_browser_sessions_hook(conn_id)


async def _history(hook: BrowserSessionsHook, query: SessionQuery, since: float) -> list[BrowserSession]:
    """Sessions started since ``since`` (epoch seconds), newest first."""
    after = datetime.fromtimestamp(since, UTC)
    if query.started_after is not None:
        after = max(after, query.started_after)
    window = query.replace(started_after=after, sort="timestamp", order="desc")
    # The server's start-date filter is final: a session it lists in the window stays in it even when its
    # record carries no start time (the watcher's own ``started_after``, if any, is judged at report time).
    return [s async for s in hook.aiter_sessions(window, server_judged=("started_after",))]


class BrowserSessionEventTrigger(BaseEventTrigger):
    """
    Fire one event per browser session that ended in one of the ``on`` states; for ``AssetWatcher``.

    Each event's payload is the session's JSON-safe dict (``BrowserSession.to_dict()``), so the DAG run it
    starts finds the session in ``triggering_asset_events``. One poll walks the running sessions and, on
    Bright Data, lists the sessions started since the previous poll (so a session that starts and ends
    between two polls is reported too); ids that left the running list are read once. Airflow 3 only.

    Building it never raises, whatever the arguments (the triggerer rebuilds it from what Airflow stored):
    an argument that is not allowed is kept in ``problem``. In a DAG file it fails the file's import, naming
    the argument (Airflow serializes the trigger when it parses the file); rebuilt by the triggerer (from
    what an older version stored, or a lambda's source text), the watcher logs it and ends, alone.

    :param conn_id: A ``brightdata``, ``cloudflare_browser_rendering`` or ``browserbase`` connection.
    :param on: The end states that fire: ``finished``, ``failed`` or both.
    :param filters: Filters by name, as ``ListBrowserSessionsOperator`` takes them (``api_name``,
        ``started_after``, ``target_url``, ``has_error``, ``min_duration``, ...); not ``status``, ``sort``,
        ``order`` or ``where``. Pushed down where the platform allows.
    :param poll_interval: Seconds between polls.
    """

    #: Why this watcher cannot run (an argument that is not allowed), or None.
    problem: BrowserSessionsError | None

    def __init__(
        self,
        *,
        conn_id: str,
        on: list[str] | tuple[str, ...] | str = _ENDED_STATES,
        filters: dict[str, Any] | None = None,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()
        # Kept as given until they pass the checks, so that serialize() hands back exactly what was given.
        self.conn_id: Any = conn_id
        self.on: Any = list(on) if isinstance(on, tuple) else on
        self.filters: Any = {} if filters is None else filters
        self.poll_interval: Any = poll_interval
        self.query: SessionQuery | None = None
        self.running_query: SessionQuery | None = None
        try:
            self.on, self.filters, self.poll_interval, self.query, self.running_query = check_watch_arguments(
                conn_id=conn_id, on=on, filters=filters, poll_interval=poll_interval
            )
            self.problem = None
        except BrowserSessionsError as err:
            self.problem = err

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """
        Classpath and exactly the constructor's arguments (a connection id, never a secret).

        Airflow calls it when it parses the DAG file that declares the watcher, never for a watcher the
        triggerer rebuilt with a problem (such a watcher runs alone, see ``shared_stream_key``, and its repr
        does not serialize): so a problem fails the DAG file's import, naming the argument.

        :raises InvalidQueryError: for a callable in ``filters`` (Airflow would store its source text, which the
            triggerer cannot run), or any other argument that is not allowed (``problem``).
        """
        refuse_callable_filters(self.filters, owner=type(self).__name__)
        if self.problem is not None:
            raise self.problem
        return self._classpath_and_kwargs()

    def _classpath_and_kwargs(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"conn_id": self.conn_id, "on": self.on, "filters": self.filters, "poll_interval": self.poll_interval},
        )

    def __repr__(self) -> str:
        # Airflow's repr calls serialize(), which refuses a callable: a repr never raises.
        return trigger_repr(*self._classpath_and_kwargs())

    def shared_stream_key(self) -> Hashable | None:
        """Watchers of the same connection, filters and interval share one poll, whatever their ``on``."""
        if self.query is None:
            return None  # a watcher with a problem runs alone (run() reports it), never in a shared poll
        return (
            "browsersessions-ended",
            self.conn_id,
            json.dumps(self.query.to_dict(), sort_keys=True),
            self.poll_interval,
        )

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """The one poll loop of a group of sibling watchers: a ``_PollSnapshot`` per interval, forever."""
        _on, _filters, interval, query, running_query = check_watch_arguments(
            conn_id=kwargs.get("conn_id"),
            on=kwargs.get("on", _ENDED_STATES),
            filters=kwargs.get("filters"),
            poll_interval=kwargs.get("poll_interval", 60.0),
        )
        hook = await _connect(kwargs["conn_id"])
        has_history = hook.platform.lists_ended_sessions
        # Where "now" is for the history window: the newest start seen, within a tolerance of this clock
        # (watching.advance_watermark, the rule each watcher's memory follows too).
        newest = advance_watermark(None, [], now=time.time())
        failures = 0
        try:
            while True:
                since = newest - OVERLAP_SECONDS
                try:
                    running = [s async for s in hook.aiter_sessions(running_query)]
                    history = await _history(hook, query, since) if has_history else None
                except ApiError as err:
                    if not skip_failed_poll(err, log=log, what="Session watch poll", watcher=True):
                        raise
                    # Retry-After honoured (capped); repeated failures back off instead of polling at full rate.
                    failures += 1
                    await asyncio.sleep(next_poll_delay(interval, err, failures=failures))
                    continue
                failures = 0
                starts = [session_start(s) for s in [*running, *(history or [])]]
                newest = advance_watermark(newest, starts, now=time.time())
                yield _PollSnapshot(running=running, history=history, since=since)
                await asyncio.sleep(interval)
        finally:
            await hook.aclose()

    @metrics.counts_watcher_events
    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Turn the shared snapshots into this watcher's events: its own ``on``, its own memory."""
        if self.query is None:
            self._report_problem()
            return
        hook = await _connect(self.conn_id)
        watch = EndWatch.from_state(await self._load_state(), now=time.time())
        saved = watch.to_state()
        try:
            async for snapshot in shared_stream:
                history = snapshot.history
                gap_since = catch_up_since(watch.history_since(), snapshot.since) if history is not None else None
                if gap_since is not None:
                    # This watcher looked last before the shared window begins (it restarted, or joined a
                    # running group): fetch the gap itself, once.
                    try:
                        history = [*history, *await _history(hook, self.query, gap_since)]
                    except ApiError as err:
                        if not skip_failed_poll(err, log=self.log, what="Catching up", watcher=True):
                            raise
                        # Stepping without the gap would skip it for good: wait for the next snapshot.
                        continue
                poll = watch.step(snapshot.running, history, now=time.time())
                ended = poll.ended
                for session_id in poll.to_read:
                    session = await self._read(hook, session_id)
                    outcome = watch.read(session_id, session, now=time.time())
                    if outcome is not None:
                        ended.append(outcome)
                    elif session is None:
                        self.log.warning(
                            "Session %s ended, but the platform no longer has it: not reported", session_id
                        )
                for warning in watch.take_warnings():
                    self.log.warning("%s", warning)
                for session in ended:
                    if session.status.value in self.on and self.query.matches(session):
                        yield TriggerEvent(session.to_dict())
                if watch.to_state() != saved:
                    saved = watch.to_state()
                    await self._save_state(saved)
        finally:
            await hook.aclose()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Standalone: this watcher's own poll loop (a triggerer without shared streams, or a test)."""
        if self.query is None:
            self._report_problem()
            return
        async for event in self.filter_shared_stream(type(self).open_shared_stream(self._classpath_and_kwargs()[1])):
            yield event

    def _report_problem(self) -> None:
        # This watcher alone ends; the triggerer and every other trigger in it go on.
        self.log.error(
            "This asset watcher cannot run and stops: %s. Fix the arguments in the DAG file that declares it.",
            self.problem,
        )

    async def _read(self, hook: BrowserSessionsHook, session_id: str) -> BrowserSession | None:
        from airflow_provider_browsersessions.triggers.shared_poll import shared_read  # run time only: see _connect

        try:
            return await shared_read(self.conn_id, session_id, lambda: hook.aget_session(session_id))
        except ApiError as err:
            if not skip_failed_poll(err, log=self.log, what=f"Reading session {session_id}", watcher=True):
                raise
            # Counted as still running: it is read again at the next poll.
            return BrowserSession(provider=hook.platform.name, session_id=session_id, status=SessionStatus.RUNNING)

    async def _load_state(self) -> Any:
        # Airflow 3.3 gives watcher triggers a per-asset state store; earlier 3.x releases have none.
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return None
        try:
            return await store.aget(STATE_KEY)
        except (ValueError, KeyError) as err:  # several assets share this watcher: no single store
            self.log.warning("No per-asset state store for this watcher (%s): memory is in-process only", err)
            self.asset_state_store = None
            return None

    async def _save_state(self, state: dict[str, Any]) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is not None:
            await store.aset(STATE_KEY, state)
