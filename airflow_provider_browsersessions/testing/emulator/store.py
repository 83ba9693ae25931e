"""The emulator's state: a clock, sessions whose status follows it, and a seeded generator of them."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


class Clock:
    """Emulator time in epoch seconds: real time scaled by ``speed``, plus whatever ``advance`` added."""

    def __init__(self, speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._base = time.time()
        self._anchor = time.monotonic()
        self._speed = float(speed)

    def now(self) -> float:
        """Current emulator time."""
        with self._lock:
            return self._base + (time.monotonic() - self._anchor) * self._speed

    def advance(self, seconds: float) -> None:
        """Jump forward (or back) by ``seconds`` of emulator time."""
        with self._lock:
            self._base += float(seconds)

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (time so far is kept)."""
        with self._lock:
            now = self._base + (time.monotonic() - self._anchor) * self._speed
            self._base, self._anchor, self._speed = now, time.monotonic(), float(speed)

    @property
    def speed(self) -> float:
        """Emulator seconds per real second."""
        return self._speed


@dataclasses.dataclass(slots=True)
class StoredSession:
    """
    One session's plan: it runs from ``start`` until ``start + duration`` (or until ended explicitly)
    and then shows ``outcome``; its status is derived from the clock, so no thread moves it along.
    """

    platform: str
    session_id: str
    start: float
    duration: float | None
    outcome: str
    fields: dict[str, Any]
    ended_at: float | None = None

    def end_time(self) -> float | None:
        """When it ends (or ended), if that is known."""
        if self.ended_at is not None:
            return self.ended_at
        return None if self.duration is None else self.start + self.duration

    def status_at(self, now: float) -> str:
        """``running`` until the end time, then the outcome."""
        end = self.end_time()
        return "running" if end is None or now < end else self.outcome


def new_id(rng: random.Random | None = None) -> str:
    """A UUID-shaped id (seeded when given a RNG, so data sets repeat)."""
    return str(uuid.UUID(int=(rng or random).getrandbits(128), version=4))


class SessionStore:
    """
    Sessions of each platform, thread-safe, with a cache of each query's sorted matches.

    A cached listing stays valid until the store changes (``version``) or the clock passes the next
    planned end of a running session, so paging a 100 000-session store costs one sort per query.
    """

    def __init__(self, clock: Clock, platforms: Iterable[str]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.sessions: dict[str, dict[str, StoredSession]] = {p: {} for p in platforms}
        self.version = 0
        self._cache: dict[tuple[Any, ...], tuple[int, float, list[StoredSession]]] = {}

    def changed(self) -> None:
        """Invalidate cached listings."""
        self.version += 1
        self._cache.clear()

    def add(self, session: StoredSession) -> StoredSession:
        """Store (or replace) a session."""
        with self.lock:
            self.sessions[session.platform][session.session_id] = session
            self.changed()
        return session

    def get(self, platform: str, session_id: str) -> StoredSession | None:
        """A stored session by id."""
        with self.lock:
            return self.sessions[platform].get(session_id)

    def end(self, platform: str, session_id: str, status: str, now: float, fields: dict[str, Any]) -> StoredSession:
        """End a session now with ``status``."""
        with self.lock:
            session = self.sessions[platform][session_id]
            session.ended_at, session.outcome = now, status
            session.fields.update(fields)
            self.changed()
            return session

    def listing(self, key: tuple[Any, ...], now: float, select: Any, sort_key: Any) -> list[StoredSession]:
        """The sessions ``select(session, now)`` keeps, sorted by ``sort_key(session, now)``; cached."""
        with self.lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == self.version and now < hit[1]:
                return hit[2]
            platform = key[0]
            chosen = [s for s in self.sessions[platform].values() if select(s, now)]
            chosen.sort(key=lambda s: sort_key(s, now))
            ends = [e for s in self.sessions[platform].values() if (e := s.end_time()) is not None and e > now]
            self._cache[key] = (self.version, min(ends, default=math.inf), chosen)
            return chosen

    def clear(self) -> None:
        """Forget every session."""
        with self.lock:
            for sessions in self.sessions.values():
                sessions.clear()
            self.changed()


def generate(
    platform: str,
    *,
    count: int,
    seed: int | None,
    now: float,
    new_fields: Callable[[random.Random, str], dict[str, Any]],
    history: float,
    max_running: int | None,
) -> list[StoredSession]:
    """
    A seeded, realistic data set: ~80 % finished, ~12 % failed, ~8 % running (ending within the next
    1-120 emulator seconds, never more than ``max_running`` at once if given); ended sessions started
    over the last ``history`` seconds; each session's own fields come from ``new_fields``.
    """
    rng = random.Random(seed)
    made: list[StoredSession] = []
    running = 0
    for _ in range(count):
        roll = rng.random()
        if roll < 0.08 and (max_running is None or running < max_running):
            start = now - rng.uniform(5, 300)
            duration = (now - start) + rng.uniform(1, 120)
            outcome = "failed" if rng.random() < 0.12 else "finished"
            running += 1
        else:
            outcome = "failed" if roll < 0.20 else "finished"
            duration = round(rng.lognormvariate(4.0, 1.0), 3)
            start = now - duration - rng.uniform(10, history)
        fields = new_fields(rng, outcome)  # before the id: a seed gives the data sets it always gave
        made.append(StoredSession(platform, new_id(rng), start, duration, outcome, fields))
    return made
