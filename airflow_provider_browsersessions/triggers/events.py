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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_browsersessions.compat import BaseEventTrigger, require_event_triggers
from airflow_provider_browsersessions.exceptions import ApiError, InvalidQueryError
from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook, aget_browser_sessions_hook
from airflow_provider_browsersessions.sessions import RUNNING_FILTERS, BrowserSession, SessionQuery, SessionStatus
from airflow_provider_browsersessions.triggers.shared_poll import shared_read
from airflow_provider_browsersessions.waiting import next_poll_delay, skip_failed_poll
from airflow_provider_browsersessions.watching import OVERLAP_SECONDS, EndWatch

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Hashable

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
    :param since: Epoch seconds the history reaches back to (None: the newest session only, a baseline).
    """

    running: list[BrowserSession]
    history: list[BrowserSession] | None
    since: float | None


def _queries(filters: dict[str, Any]) -> tuple[SessionQuery, SessionQuery]:
    # The running walk takes only the filters a running session can match (sessions.RUNNING_FILTERS); the
    # others judge the sessions once they ended.
    query = SessionQuery.build(**filters)
    for name in ("status", "sort", "order"):
        if getattr(query, name) is not None:
            raise InvalidQueryError(name, "unset: the watcher reports ended sessions by `on`, newest first")
    running = SessionQuery.build(**{k: v for k, v in query.to_dict().items() if k in RUNNING_FILTERS})
    return query, running.replace(status="running")


async def _history(hook: BrowserSessionsHook, query: SessionQuery, since: float | None) -> list[BrowserSession]:
    """Sessions started since ``since`` (newest first); with no ``since``, just the newest one."""
    after = None if since is None else datetime.fromtimestamp(since, UTC)
    if query.started_after is not None and after is not None:
        after = max(after, query.started_after)
    window = query.replace(started_after=after, sort="timestamp", order="desc")
    return [s async for s in hook.aiter_sessions(window, max_results=1 if since is None else None)]


class BrowserSessionEventTrigger(BaseEventTrigger):
    """
    Fire one event per browser session that ended in one of the ``on`` states; for ``AssetWatcher``.

    Each event's payload is the session's JSON-safe dict (``BrowserSession.to_dict()``), so the DAG run it
    starts finds the session in ``triggering_asset_events``. One poll walks the running sessions and, on
    Bright Data, lists the sessions started since the previous poll (so a session that starts and ends
    between two polls is reported too); ids that left the running list are read once. Airflow 3 only.

    :param conn_id: A ``brightdata`` or ``cloudflare_browser_rendering`` connection.
    :param on: The end states that fire: ``finished``, ``failed`` or both.
    :param filters: Filters by name, as ``ListBrowserSessionsOperator`` takes them (``api_name``,
        ``started_after``, ``target_url``, ``has_error``, ``min_duration``, ...); not ``status``, ``sort``,
        ``order``. Pushed down where the platform allows.
    :param poll_interval: Seconds between polls.
    """

    def __init__(
        self,
        *,
        conn_id: str,
        on: list[str] | tuple[str, ...] | str = _ENDED_STATES,
        filters: dict[str, Any] | None = None,
        poll_interval: float = 60.0,
    ) -> None:
        require_event_triggers()
        super().__init__()
        chosen = [on] if isinstance(on, str) else list(on)
        if not chosen or any(state not in _ENDED_STATES for state in chosen):
            raise InvalidQueryError("on", f"one or more of {', '.join(_ENDED_STATES)}, not {on!r}")
        if not float(poll_interval) > 0:
            raise InvalidQueryError("poll_interval", f"a positive number of seconds, not {poll_interval!r}")
        self.conn_id = conn_id
        self.on = sorted(set(chosen))
        self.filters = dict(filters or {})
        self.poll_interval = float(poll_interval)
        self.query, self.running_query = _queries(self.filters)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and exactly the constructor's arguments (a connection id, never a secret)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"conn_id": self.conn_id, "on": self.on, "filters": self.filters, "poll_interval": self.poll_interval},
        )

    def shared_stream_key(self) -> Hashable | None:
        """Watchers of the same connection, filters and interval share one poll, whatever their ``on``."""
        return (
            "browsersessions-ended",
            self.conn_id,
            json.dumps(self.query.to_dict(), sort_keys=True),
            self.poll_interval,
        )

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """The one poll loop of a group of sibling watchers: a ``_PollSnapshot`` per interval, forever."""
        query, running_query = _queries(dict(kwargs.get("filters") or {}))
        interval = float(kwargs["poll_interval"])
        hook = await aget_browser_sessions_hook(kwargs["conn_id"])
        has_history = hook.platform.lists_ended_sessions
        newest: float | None = None
        failures = 0
        try:
            while True:
                try:
                    running = [s async for s in hook.aiter_sessions(running_query)]
                    history = None
                    if has_history and newest is None:
                        # The first poll: the newest session says where "now" is on the platform's clock,
                        # and the window before it is the baseline every watcher starts from.
                        latest = await _history(hook, query, None)
                        newest = latest[0].started_at.timestamp() if latest and latest[0].started_at else None
                    since = None if newest is None else newest - OVERLAP_SECONDS
                    if has_history:
                        history = await _history(hook, query, since)
                except ApiError as err:
                    if not skip_failed_poll(err, log=log, what="Session watch poll", watcher=True):
                        raise
                    # Retry-After honoured (capped); repeated failures back off instead of polling at full rate.
                    failures += 1
                    await asyncio.sleep(next_poll_delay(interval, err, failures=failures))
                    continue
                failures = 0
                starts = [s.started_at.timestamp() for s in [*running, *(history or [])] if s.started_at]
                if starts:
                    newest = max([*starts, newest] if newest is not None else starts)
                yield _PollSnapshot(running=running, history=history, since=since)
                await asyncio.sleep(interval)
        finally:
            await hook.aclose()

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Turn the shared snapshots into this watcher's events: its own ``on``, its own memory."""
        hook = await aget_browser_sessions_hook(self.conn_id)
        watch = EndWatch.from_state(await self._load_state())
        saved = watch.to_state()
        try:
            async for snapshot in shared_stream:
                history = snapshot.history
                own_since = watch.history_since()
                behind = own_since is not None and (snapshot.since is None or own_since < snapshot.since)
                if history is not None and behind:
                    # This watcher looked last before the shared window begins (it restarted, or joined a
                    # running group): fetch the gap itself, once.
                    try:
                        history = [*history, *await _history(hook, self.query, own_since)]
                    except ApiError as err:
                        if not skip_failed_poll(err, log=self.log, what="Catching up", watcher=True):
                            raise
                        # Stepping without the gap would skip it for good: wait for the next snapshot.
                        continue
                ended, to_read = watch.step(snapshot.running, history)
                for session_id in to_read:
                    session = await self._read(hook, session_id)
                    outcome = watch.read(session_id, session)
                    if outcome is not None:
                        ended.append(outcome)
                    elif session is None:
                        self.log.warning(
                            "Session %s ended, but the platform no longer has it: not reported", session_id
                        )
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
        async for event in self.filter_shared_stream(type(self).open_shared_stream(self.serialize()[1])):
            yield event

    async def _read(self, hook: BrowserSessionsHook, session_id: str) -> BrowserSession | None:
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
