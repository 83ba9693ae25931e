"""What the view itself saw of each connection's platform: its last ask and its cost, the 429s met, the budget left."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.sessions import utc_iso

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pendulum import DateTime

    from airflow_provider_browsersessions.metrics import RequestTally

#: The window of the 429 count, in seconds.
THROTTLED_WINDOW_SECONDS = 3600.0
#: 429 times kept per connection: a bound on memory whatever a platform does (the count shows "at least" past it).
MAX_THROTTLED = 1000
#: Connections kept at most; the least recently asked is forgotten first.
MAX_CONNECTIONS = 256


@dataclasses.dataclass(frozen=True)
class ConnectionHealth:
    """
    One connection's health as this process's view saw it (never a secret, a URL or a session id).

    :param asked_at: When the view last asked the platform (UTC): the start of its last poll or read.
    :param requests: HTTP attempts that ask made (retries included).
    :param seconds: How long it took, pacing and retry waits included.
    :param failed: Whether it ended in an error.
    :param throttled: 429 answers the view met in the last ``THROTTLED_WINDOW_SECONDS``.
    :param throttled_capped: True when ``MAX_THROTTLED`` were kept: the count is a lower bound.
    :param remaining: The rate budget left, as the platform last reported it (None: never reported).
    :param quota: The window's quota, from that same answer.
    :param budget_at: When that answer came (UTC).
    """

    asked_at: DateTime
    requests: int
    seconds: float
    failed: bool
    throttled: int
    throttled_capped: bool
    remaining: float | None
    quota: float | None
    budget_at: DateTime | None

    def remaining_percent(self) -> float | None:
        """The budget left in percent of the quota, when both are known."""
        if self.remaining is None or not self.quota:
            return None
        return min(100.0, 100.0 * self.remaining / self.quota)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for the JSON endpoint."""
        return {
            "asked_at": utc_iso(self.asked_at),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "failed": self.failed,
            "throttled_last_hour": self.throttled,
            "throttled_capped": self.throttled_capped,
            "budget_remaining": self.remaining,
            "budget_quota": self.quota,
            "budget_remaining_percent": self.remaining_percent(),
            "budget_at": utc_iso(self.budget_at) if self.budget_at is not None else None,
        }


@dataclasses.dataclass
class _Seen:
    asked_at: DateTime
    requests: int
    seconds: float
    failed: bool
    throttled: collections.deque[float] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=MAX_THROTTLED)
    )
    remaining: float | None = None
    quota: float | None = None
    budget_at: DateTime | None = None


class HealthBook:
    """
    Per connection, what the view's own requests met; bounded in connections and in 429 times kept.

    :param clock: Monotonic seconds, the clock of ``RequestTally.throttled_at`` (tests pass their own).
    :param max_connections: Connections kept at most.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_connections: int = MAX_CONNECTIONS) -> None:
        self._clock = clock
        self._max = max_connections
        self._seen: collections.OrderedDict[str, _Seen] = collections.OrderedDict()
        self._guard = threading.Lock()

    def record(self, conn_id: str, tally: RequestTally, *, asked_at: DateTime, seconds: float, failed: bool) -> None:
        """
        One ask of the platform ended: a snapshot's poll or a session's read.

        :param conn_id: The connection asked.
        :param tally: Its requests (``metrics.tallied``); an ask that sent none is not recorded.
        :param asked_at: When it started (UTC).
        :param seconds: How long it took.
        :param failed: Whether it raised.
        """
        if tally.requests == 0:
            return
        with self._guard:
            seen = self._seen.get(conn_id)
            if seen is None:
                seen = self._seen[conn_id] = _Seen(asked_at=asked_at, requests=0, seconds=0.0, failed=False)
            seen.asked_at, seen.requests, seen.seconds, seen.failed = asked_at, tally.requests, seconds, failed
            seen.throttled.extend(tally.throttled_at)
            if tally.remaining is not None:
                # The moment is the ask's end: close enough for a budget that resets in minutes.
                seen.remaining, seen.quota, seen.budget_at = tally.remaining, tally.quota, asked_at.add(seconds=seconds)
            self._seen.move_to_end(conn_id)
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)

    def of(self, conn_id: str) -> ConnectionHealth | None:
        """The connection's health, or None when the view has not asked its platform yet."""
        with self._guard:
            seen = self._seen.get(conn_id)
            if seen is None:
                return None
            since = self._clock() - THROTTLED_WINDOW_SECONDS
            throttled = _count_since(seen.throttled, since)
            return ConnectionHealth(
                asked_at=seen.asked_at,
                requests=seen.requests,
                seconds=seen.seconds,
                failed=seen.failed,
                throttled=throttled,
                throttled_capped=throttled == MAX_THROTTLED,
                remaining=seen.remaining,
                quota=seen.quota,
                budget_at=seen.budget_at,
            )

    def clear(self) -> None:
        """Forget everything seen."""
        with self._guard:
            self._seen.clear()


def _count_since(times: Iterable[float], since: float) -> int:
    return sum(1 for at in times if at >= since)
