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
from airflow_provider_browsersessions.waiting import next_poll_delay

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

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
                try:
                    if self._hook is None:
                        self._hook = await aget_browser_sessions_hook(self.conn_id)
                    snapshot = [s async for s in self._hook.aiter_sessions(self.running_query, read_ahead=True)]
                    error: BaseException | None = None
                except Exception as err:
                    snapshot, error = [], err
                # Retry-After is honoured but capped: a server asking for days must not park the poll (and
                # each trigger's own deadline wakes it regardless, see BrowserSessionsTrigger.run). No
                # doubling here: the transport already backed off within the poll, and waits have deadlines.
                delay = next_poll_delay(self.interval, error, failures=1 if error else 0)
                async with self._changed:
                    self.version += 1
                    self._snapshot, self._error = snapshot, error
                    self._changed.notify_all()
                await asyncio.sleep(delay)
        finally:
            if self._hook is not None:
                await self._hook.aclose()
                self._hook = None

    async def next_snapshot(self, after_version: int) -> tuple[int, list[BrowserSession], BaseException | None]:
        """
        Wait for a snapshot newer than ``after_version``.

        :return: (version, running sessions, the poll's error or None).
        """
        async with self._changed:
            await self._changed.wait_for(lambda: self.version > after_version)
            return self.version, list(self._snapshot), self._error

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
        self.reads_in_flight: dict[tuple[str, str], asyncio.Future[BrowserSession | None]] = {}


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
        # The version moves on even when the poll failed, so the next call waits for the next poll.
        self._version, snapshot, error = await self.poll.next_snapshot(self._version)
        if error is not None:
            raise error
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


async def shared_read(
    conn_id: str, session_id: str, read: Callable[[], Awaitable[BrowserSession | None]]
) -> BrowserSession | None:
    """
    Read one session once for every trigger in this loop that asks at the same time.

    A terminal state is kept (it never changes); a running or unknown answer is not, so it is asked
    again at the next poll.
    """
    state = _state()
    key = (conn_id, session_id)
    cached = state.final_states.get(key)
    if cached is not None:
        state.final_states.move_to_end(key)
        return cached
    in_flight = state.reads_in_flight.get(key)
    if in_flight is None:
        in_flight = asyncio.ensure_future(read())
        state.reads_in_flight[key] = in_flight
        in_flight.add_done_callback(lambda _: state.reads_in_flight.pop(key, None))
    session = await asyncio.shield(in_flight)
    if session is not None and session.status.is_terminal():
        state.final_states[key] = session
        state.final_states.move_to_end(key)
        while len(state.final_states) > _FINAL_STATE_CACHE_SIZE:
            state.final_states.popitem(last=False)
    return session
