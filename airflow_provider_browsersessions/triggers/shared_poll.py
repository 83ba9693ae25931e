"""One poll loop per connection and query in an event loop, shared by every trigger that waits on it.

K deferred sensors watching the same connection and filters would otherwise each walk the running
list every interval: K requests where one answers them all. Triggers here subscribe to a
``SharedRunningPoll`` keyed by (connection, running-query, interval); the poll owns its own hook,
fetches once per interval while it has subscribers, and hands every subscriber the same snapshot.
State lives per event loop (a ``WeakKeyDictionary`` keyed by the running loop), so nothing crosses
loops or threads. Terminal session states are immutable, so reads of ended sessions are shared too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook, aget_browser_sessions_hook

if TYPE_CHECKING:
    from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery

log = logging.getLogger(__name__)

PollKey = tuple[str, str, float]

# Final states kept per event loop; a bounded LRU because a triggerer runs for weeks.
_FINAL_STATE_CACHE_SIZE = 10_000


def poll_key(conn_id: str, running_query: SessionQuery, interval: float) -> PollKey:
    """Triggers whose keys are equal share one poll."""
    return conn_id, json.dumps(running_query.to_dict(), sort_keys=True), float(interval)


class SharedRunningPoll:
    """
    Walks the running sessions of one query once per interval, for as long as anyone listens.

    :param conn_id: The Airflow connection.
    :param running_query: The query to walk (already restricted to running sessions).
    :param interval: Seconds between polls.
    """

    def __init__(self, *, conn_id: str, running_query: SessionQuery, interval: float) -> None:
        self.conn_id = conn_id
        self.running_query = running_query
        self.interval = interval
        self.subscribers = 0
        self.version = 0
        self.polls = 0
        self._snapshot: list[BrowserSession] = []
        self._error: BaseException | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._hook: BrowserSessionsHook | None = None

    def start(self) -> None:
        """Start the loop if it is not running."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"shared-poll:{self.conn_id}")

    async def _run(self) -> None:
        try:
            while self.subscribers > 0:
                delay = self.interval
                try:
                    if self._hook is None:
                        self._hook = await aget_browser_sessions_hook(self.conn_id)
                    snapshot = [s async for s in self._hook.aiter_sessions(self.running_query)]
                    error: BaseException | None = None
                except Exception as err:
                    snapshot, error = [], err
                    retry_after = getattr(err, "retry_after", None)
                    if retry_after:
                        delay = max(delay, float(retry_after))
                self.polls += 1
                async with self._changed:
                    self.version += 1
                    self._snapshot, self._error = snapshot, error
                    self._changed.notify_all()
                await asyncio.sleep(delay)
        finally:
            if self._hook is not None:
                await self._hook.aclose()
                self._hook = None

    async def next_snapshot(self, after_version: int) -> tuple[int, list[BrowserSession]]:
        """
        Wait for a snapshot newer than ``after_version``; raise the poll's error if it failed.

        :return: (version, running sessions).
        """
        async with self._changed:
            await self._changed.wait_for(lambda: self.version > after_version)
            if self._error is not None:
                raise self._error
            return self.version, list(self._snapshot)

    async def stop(self) -> None:
        """Cancel the loop (called when the last subscriber leaves)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class _LoopState:
    def __init__(self) -> None:
        self.polls: dict[PollKey, SharedRunningPoll] = {}
        self.final_states: OrderedDict[tuple[str, str], BrowserSession] = OrderedDict()


_STATE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()


def _state() -> _LoopState:
    loop = asyncio.get_running_loop()
    state = _STATE.get(loop)
    if state is None:
        state = _STATE[loop] = _LoopState()
    return state


class Subscription:
    """
    A trigger's place in a shared poll: use ``async with subscribe(...) as sub`` then ``await sub.next()``.

    :param poll: The shared poll.
    """

    def __init__(self, poll: SharedRunningPoll) -> None:
        self.poll = poll
        self._version = poll.version

    async def next(self) -> list[BrowserSession]:
        """The next snapshot of running sessions (raises the poll's ``ApiError`` if that poll failed)."""
        self._version, snapshot = await self.poll.next_snapshot(self._version)
        return snapshot

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.poll.subscribers -= 1
        if self.poll.subscribers <= 0:
            state = _state()
            for key, poll in list(state.polls.items()):
                if poll is self.poll:
                    del state.polls[key]
            await self.poll.stop()


def subscribe(*, conn_id: str, running_query: SessionQuery, interval: float) -> Subscription:
    """Join (or start) the shared poll for this connection, query and interval in the running loop."""
    state = _state()
    key = poll_key(conn_id, running_query, interval)
    poll = state.polls.get(key)
    if poll is None:
        poll = state.polls[key] = SharedRunningPoll(conn_id=conn_id, running_query=running_query, interval=interval)
    poll.subscribers += 1
    poll.start()
    return Subscription(poll)


def cached_final_state(conn_id: str, session_id: str) -> BrowserSession | None:
    """A terminal state some trigger in this loop already read, if any."""
    cache = _state().final_states
    session = cache.get((conn_id, session_id))
    if session is not None:
        cache.move_to_end((conn_id, session_id))
    return session


def remember_final_state(conn_id: str, session: BrowserSession) -> None:
    """Share a terminal state with the other triggers in this loop."""
    if not session.status.is_terminal():
        return
    cache = _state().final_states
    cache[(conn_id, session.session_id)] = session
    cache.move_to_end((conn_id, session.session_id))
    while len(cache) > _FINAL_STATE_CACHE_SIZE:
        cache.popitem(last=False)
