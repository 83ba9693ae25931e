"""
How a walk's pages are fetched: one at a time, or pipelined, sync and async.

A pipelined driver fetches ahead only the pages the walk says it is already sure to need
(``SessionWalk.known_requests``: Bright Data's total and offsets), never a guess, and feeds the pages
to the walk in order, so de-duplication, repeated-page detection and drift handling are unchanged.
At most ``in_flight`` pages are held or fetched at once. When the server pages differently from the
plan (its next offset is not the one expected), the pages fetched ahead are dropped and the walk goes
on from the server's own next request. Each request keeps its transport's pacing, deadline and retries.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import queue
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.connection_extras import COMMON_EXTRAS

if TYPE_CHECKING:
    from airflow_provider_browsersessions.platforms.base import ApiRequest, SessionWalk
    from airflow_provider_browsersessions.sessions import BrowserSession

#: The default of the connection extra ``pages_in_flight`` (its one table: ``connection_extras``).
DEFAULT_PAGES_IN_FLIGHT = int(COMMON_EXTRAS["pages_in_flight"].default)

#: The name prefix of the threads a sync pipelined walk starts (and always joins before it ends).
_THREADS = "browsersessions-page"

Fetch = Callable[["ApiRequest"], Any]
AsyncFetch = Callable[["ApiRequest"], Awaitable[Any]]


def _plan(walk: SessionWalk, request: ApiRequest, in_flight: int) -> list[ApiRequest]:
    """The request due now and the ones the walk is sure to send after it, at most ``in_flight``."""
    return [request, *walk.known_requests(in_flight - 1)]


def iter_walk(walk: SessionWalk, fetchers: Sequence[Fetch], *, in_flight: int = 1) -> Iterator[list[BrowserSession]]:
    """
    Drive ``walk`` and yield each page's sessions to hand out, in the walk's order.

    With one fetcher or ``in_flight`` 1 the pages are fetched one at a time in the caller's thread.
    Otherwise a thread pool of ``len(fetchers)`` workers fetches the known pages ahead, each worker
    borrowing one fetcher at a time (a ``requests.Session`` is not shared between threads at once).
    Closing the generator (an early stop, an error) cancels what has not started and waits for what
    is running, so no thread outlives the walk; either way the walk's odd values are logged.

    :param walk: The walk to drive.
    :param fetchers: Functions that send one request and return the decoded JSON; not shared at once.
    :param in_flight: The most pages fetched or held at once (1: sequential).
    """
    try:
        if in_flight < 2 or len(fetchers) < 2:
            fetch = fetchers[0]
            while (request := walk.next_request()) is not None:
                yield walk.consume_page(request, fetch(request))
            return
        yield from _iter_pipelined(walk, fetchers, in_flight=in_flight)
    finally:
        walk.report_odd_values()


def _iter_pipelined(walk: SessionWalk, fetchers: Sequence[Fetch], *, in_flight: int) -> Iterator[list[BrowserSession]]:
    """:func:`iter_walk` with pages fetched ahead in a thread pool."""
    idle: queue.SimpleQueue[Fetch] = queue.SimpleQueue()
    for fetch in fetchers:
        idle.put(fetch)

    def borrow_and_fetch(request: ApiRequest) -> Any:
        fetch = idle.get()
        try:
            return fetch(request)
        finally:
            idle.put(fetch)

    pending: collections.deque[tuple[ApiRequest, Future[Any]]] = collections.deque()
    executor: ThreadPoolExecutor | None = None
    try:
        while (request := walk.next_request()) is not None:
            if pending and pending[0][0] != request:
                _drop(pending)  # the server paged differently from the plan: its own next request wins
            plan = _plan(walk, request, in_flight)
            if not pending and len(plan) == 1:
                # Nothing known ahead (the first pages, Cloudflare, the end of a listing): no thread needed.
                yield walk.consume_page(request, borrow_and_fetch(request))
                continue
            if executor is None:
                executor = ThreadPoolExecutor(max_workers=min(in_flight, len(fetchers)), thread_name_prefix=_THREADS)
            for planned in plan[len(pending) :]:
                # Each fetch runs in this thread's context, so what counts the walk's requests (a
                # ``metrics.tallied`` block) sees the fetchers' ones too.
                fetching = contextvars.copy_context()
                pending.append((planned, executor.submit(fetching.run, borrow_and_fetch, planned)))
            _, future = pending.popleft()
            yield walk.consume_page(request, future.result())
    finally:
        _drop(pending)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _drop(pending: collections.deque[tuple[ApiRequest, Future[Any]]]) -> None:
    for _, future in pending:
        future.cancel()
    pending.clear()


async def aiter_walk(
    walk: SessionWalk, fetch_json: AsyncFetch, *, in_flight: int = 1
) -> AsyncGenerator[list[BrowserSession], None]:
    """
    The async twin of :func:`iter_walk`: the known pages are fetched ahead as tasks on one client.

    Closing the generator (an early stop, an error) cancels the tasks still in flight and waits for them;
    either way the walk's odd values are logged.

    :param walk: The walk to drive.
    :param fetch_json: Sends one request and returns the decoded JSON (one httpx client serves many at once).
    :param in_flight: The most pages fetched or held at once (1: sequential).
    """
    pending: collections.deque[tuple[ApiRequest, asyncio.Task[Any]]] = collections.deque()
    try:
        if in_flight < 2:
            while (request := walk.next_request()) is not None:
                yield walk.consume_page(request, await fetch_json(request))
            return
        while (request := walk.next_request()) is not None:
            if pending and pending[0][0] != request:
                await _adrop(pending)
            for planned in _plan(walk, request, in_flight)[len(pending) :]:
                pending.append((planned, asyncio.ensure_future(fetch_json(planned))))
            _, task = pending.popleft()
            payload = await task
            yield walk.consume_page(request, payload)
    finally:
        walk.report_odd_values()
        await _adrop(pending)


async def _adrop(pending: collections.deque[tuple[ApiRequest, asyncio.Task[Any]]]) -> None:
    tasks = [task for _, task in pending]
    pending.clear()
    for task in tasks:
        task.cancel()
    # Wait for the cancellations to land, so no task outlives the walk; their errors are moot now.
    await asyncio.gather(*tasks, return_exceptions=True)
