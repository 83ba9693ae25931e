"""One poll loop per connection and query in an event loop, shared by every trigger that waits on it.

K deferred sensors watching the same connection and filters would otherwise each walk the running
list every interval: K requests where one answers them all. Triggers here subscribe to a
``SharedRunningPoll`` keyed by (connection, running-query, interval); the poll leases the loop's hook of
its connection (``shared_hook``), fetches once per interval while it has subscribers, and hands every
subscriber the same snapshot: one immutable tuple, never a copy per subscriber (10,000 waits are 10,000
subscribers).
State lives per event loop (a ``WeakKeyDictionary`` keyed by the running loop), so nothing crosses
loops or threads. Terminal session states are immutable, so reads of ended sessions are shared too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.triggers.shared_hook import HookLease
from airflow_provider_browsersessions.waiting import next_poll_delay

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook
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
        self.snapshot: tuple[BrowserSession, ...] = ()
        self.error: BaseException | None = None
        # One future per waiting subscriber, resolved together when a snapshot is published. Not a Condition:
        # its lock makes every one of 10,000 woken waiters take it in turn, each with a coroutine frame more.
        self._waiters: set[asyncio.Future[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop if it is not running."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"shared-poll:{self.conn_id}")

    async def _run(self) -> None:
        async with contextlib.AsyncExitStack() as leases:
            hook: BrowserSessionsHook | None = None
            while self.subscribers > 0:
                started = time.monotonic()
                try:
                    if hook is None:
                        hook = await leases.enter_async_context(HookLease(conn_id=self.conn_id))
                    snapshot = tuple([s async for s in hook.aiter_sessions(self.running_query, read_ahead=True)])
                    error: BaseException | None = None
                except Exception as err:
                    snapshot, error = (), err
                # Retry-After is honoured but capped: a server asking for days must not park the poll (and
                # each trigger's own deadline wakes it regardless, see BrowserSessionsTrigger.run). No
                # doubling here: the transport already backed off within the poll, and waits have deadlines.
                delay = next_poll_delay(self.interval, error, failures=1 if error else 0)
                self._publish(snapshot, error)
                metrics.poll_done(
                    seconds=time.monotonic() - started,
                    failed=error is not None,
                    waits=self.subscribers,
                    live=len(_state().polls),
                )
                await asyncio.sleep(delay)

    def _publish(self, snapshot: tuple[BrowserSession, ...], error: BaseException | None) -> None:
        self.version += 1
        self.snapshot, self.error = snapshot, error
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def add_waiter(self) -> asyncio.Future[None]:
        """A future resolved when the next snapshot is published; hand it back to ``discard_waiter`` after."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        return waiter

    def discard_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Forget a waiter (woken, or its subscriber cancelled)."""
        self._waiters.discard(waiter)

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

    __slots__ = ("_version", "poll")

    def __init__(self, poll: SharedRunningPoll) -> None:
        self.poll = poll
        self._version = poll.version

    async def next(self) -> tuple[BrowserSession, ...]:
        """The next snapshot of running sessions, shared (raises the poll's ``ApiError`` if that poll failed)."""
        poll = self.poll
        # The wait is inline, not in a coroutine of the poll's: one frame less for each of thousands of waits.
        while poll.version <= self._version:
            waiter = poll.add_waiter()
            try:
                await waiter
            finally:
                poll.discard_waiter(waiter)
        # The version moves on even when the poll failed, so the next call waits for the next poll.
        self._version = poll.version
        if poll.error is not None:
            raise poll.error
        return poll.snapshot

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.poll.subscribers -= 1
        if self.poll.subscribers <= 0:
            state = _state()
            for key, poll in list(state.polls.items()):
                if poll is self.poll:
                    del state.polls[key]
            metrics.polls_live(live=len(state.polls))
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
