"""A small time-to-live cache whose concurrent misses on one key share one load: many browsers, one poll."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

K = TypeVar("K", bound="Hashable")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """
    Values by key, reused for ``ttl`` seconds; a second request for a key being loaded waits for that load.

    A failed load is not cached: the next request tries again.

    :param ttl: Seconds a value is served before it is loaded again.
    :param max_keys: Keys kept at most; the least recently used is dropped first.
    :param clock: Monotonic seconds (tests pass their own).
    """

    def __init__(self, *, ttl: float, max_keys: int = 256, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._locks: dict[K, threading.Lock] = {}
        self._guard = threading.Lock()
        #: How many loads ran (what the platforms were asked), for tests and figures.
        self.loads = 0

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The cached value of ``key``, or ``load()``'s once the cached one is ``ttl`` seconds old."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                hit = self._entries.get(key)
            if hit is not None and self._clock() - hit[0] < self.ttl:
                return hit[1]
            value = load()
            with self._guard:
                self.loads += 1
                self._entries[key] = (self._clock(), value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_keys:
                    dropped, _ = self._entries.popitem(last=False)
                    self._locks.pop(dropped, None)
            return value

    def clear(self) -> None:
        """Forget every value."""
        with self._guard:
            self._entries.clear()
