"""A small time-to-live cache whose concurrent misses on one key share one load: many browsers, one poll."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

K = TypeVar("K", bound="Hashable")
V = TypeVar("V")

#: Seconds a failed load is served as it failed: a platform that is down is asked once per this, whoever looks.
FAILURE_TTL_SECONDS = 5.0
#: Loads running at once per cache (each its own thread): a bound on threads a hung platform can hold.
MAX_LOADS_IN_FLIGHT = 4


class DeadlineExceeded(Exception):
    """
    A caller's deadline passed before its value was loaded (the load may still finish and be cached).

    :param seconds: The deadline the caller had, in seconds.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds


class TtlCache(Generic[K, V]):
    """
    Values by key, reused for ``ttl`` seconds; requests for a key being loaded wait for that one load.

    A failed load is kept for ``failure_ttl`` seconds and raised again to everyone who asks meanwhile, so a
    failing platform is not asked once per viewer. Loads run in this cache's own threads (at most
    ``max_in_flight``), so a caller waits at most its ``timeout``: past it the caller gets
    ``DeadlineExceeded`` (kept like a failure), while the load goes on within its own bounds and its value,
    if one comes, is cached for the next caller.

    :param ttl: Seconds a value is served before it is loaded again.
    :param failure_ttl: Seconds a failure is served before the key is loaded again.
    :param max_keys: Keys kept at most; the least recently used is dropped first.
    :param max_in_flight: Loads running at once; more wait their turn (or their caller's deadline).
    :param clock: Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        *,
        ttl: float,
        failure_ttl: float = FAILURE_TTL_SECONDS,
        max_keys: int = 256,
        max_in_flight: int = MAX_LOADS_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V | None, BaseException | None]] = OrderedDict()
        self._loading: dict[K, Future[V]] = {}
        self._guard = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="browser-sessions-view")
        #: How many loads ran (what the platforms were asked), for tests and figures.
        self.loads = 0

    def get(self, key: K, load: Callable[[], V], *, timeout: float | None = None) -> V:
        """
        The cached value of ``key``, or ``load()``'s once the cached one is ``ttl`` seconds old.

        :param key: The key.
        :param load: Makes the value (run in one of the cache's threads, once for every concurrent caller).
        :param timeout: Seconds this caller waits at most (None: until the load ends).
        :raises DeadlineExceeded: when ``timeout`` passed first.
        :raises Exception: what the load raised, for ``failure_ttl`` seconds after it did.
        """
        with self._guard:
            hit = self._entries.get(key)
            if hit is not None:
                at, value, error = hit
                if error is None and self._clock() - at < self.ttl:
                    self._entries.move_to_end(key)
                    return value  # type: ignore[return-value]
                if error is not None and self._clock() - at < self.failure_ttl:
                    # A fresh traceback each time: re-raising one object would pile up every caller's frames.
                    raise error.with_traceback(None)
            future = self._loading.get(key)
            if future is None:
                future = self._executor.submit(self._run, key, load)
                self._loading[key] = future
        try:
            return future.result(timeout=timeout)
        except (FutureTimeout, CancelledError):
            if future.cancel():  # never started (every thread busy): it must not run late for nobody
                with self._guard:
                    if self._loading.get(key) is future:
                        del self._loading[key]
            error = DeadlineExceeded(timeout or 0.0)
            with self._guard:
                current = self._entries.get(key)
                if current is None or current[2] is not None or self._clock() - current[0] >= self.ttl:
                    self._store(key, None, error)
            raise error from None

    def _run(self, key: K, load: Callable[[], V]) -> V:
        try:
            value = load()
        except Exception as err:
            with self._guard:
                self.loads += 1
                self._store(key, None, err)
                self._loading.pop(key, None)
            raise
        with self._guard:
            self.loads += 1
            self._store(key, value, None)
            self._loading.pop(key, None)
        return value

    def _store(self, key: K, value: V | None, error: BaseException | None) -> None:
        # Called with the guard held.
        self._entries[key] = (self._clock(), value, error)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every value and failure (loads running go on, and store what they get)."""
        with self._guard:
            self._entries.clear()
