"""Which sessions ended since the last poll: what an event watcher remembers between polls, without I/O.

The guarantee this module keeps, and its limits, are stated in ``docs/howto/events.md`` ("Delivery
semantics"); ``tests/unit/test_watching.py`` checks them over random poll schedules and answer orders.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_browsersessions.sessions import BrowserSession

#: Seconds the history window reaches back before the watermark: sessions that became visible late (or
#: whose clocks disagree a little) are still found; sessions handled already are skipped by memory.
OVERLAP_SECONDS = 120.0

#: How far the watermark may be from this triggerer's clock, in seconds, either way. A start time further
#: ahead (a clock that is wrong, a record from year 2999) moves it only this far ahead; when starts are
#: missing or old, it follows the clock this far behind. So the next history window begins between
#: ``OVERLAP_SECONDS + CLOCK_TOLERANCE_SECONDS`` (180 s) and ``OVERLAP_SECONDS - CLOCK_TOLERANCE_SECONDS``
#: (60 s) before the poll that set it, whatever the records say.
CLOCK_TOLERANCE_SECONDS = 60.0

#: Ended sessions a watcher remembers at most, besides those the last poll's answers listed (which are
#: never forgotten while listed). Past it the ones listed longest ago are forgotten first, with a warning.
MAX_REMEMBERED_ENDS = 5_000

#: Seconds an ended session stays remembered after the platform last listed it (a history listing, or a
#: stale "running" answer): an answer that lists it again within this time never reports it twice.
REMEMBER_ENDS_SECONDS = 3600.0

#: The version of ``EndWatch.to_state()``. Version 1 (no ``version`` key) is still read.
_STATE_VERSION = 2


def session_start(session: BrowserSession) -> float | None:
    """A session's start time in epoch seconds; None when the record has none (or an unusable one)."""
    if session.started_at is None:
        return None
    value = session.started_at.timestamp()
    return value if math.isfinite(value) else None


def advance_watermark(current: float | None, starts: Iterable[float | None], *, now: float) -> float:
    """
    The watermark after a poll: the newest start seen, within ``CLOCK_TOLERANCE_SECONDS`` of ``now``.

    It never moves back (bar a ``current`` beyond the tolerance ahead, which is brought back), never goes
    further ahead of ``now`` than the tolerance, and never lags ``now`` by more than it.

    :param current: The watermark so far (None: none yet).
    :param starts: Start times of this poll's sessions (epoch seconds; None or non-finite ones are skipped).
    :param now: This triggerer's clock (epoch seconds).
    """
    ceiling = now + CLOCK_TOLERANCE_SECONDS
    candidates = [now - CLOCK_TOLERANCE_SECONDS]
    candidates += [min(start, ceiling) for start in starts if start is not None and math.isfinite(start)]
    if current is not None and math.isfinite(current):
        candidates.append(min(current, ceiling))
    return max(candidates)


def catch_up_since(own: float | None, shared: float | None) -> float | None:
    """
    Where a watcher must list history itself because the shared poll's window begins later; None: no need.

    :param own: The watcher's own window start (``EndWatch.history_since()``).
    :param shared: The shared poll's window start (None: the shared poll listed only the newest session).
    """
    if own is None:
        return None
    return own if shared is None or own < shared else None


@dataclasses.dataclass
class PollResult:
    """
    What one poll taught a watch.

    :param ended: Sessions that ended since the previous poll, each once.
    :param to_read: Ids that left the running set without an answer saying how they ended: read them,
        then pass each to ``EndWatch.read``.
    """

    ended: list[BrowserSession]
    to_read: list[str]


@dataclasses.dataclass
class EndWatch:
    """
    The running sessions being watched, the ended ones already handled, and how far back to look.

    One poll: ``step(running, history, now=...)`` with the running sessions and (Bright Data) the sessions
    started since ``history_since()``; then ``read`` for each id it asks to read. The first poll is the
    baseline: what had ended by then is remembered, not reported, even when it finds no session at all.

    :param tracked: Ids seen running and not known to have ended (ordered as first seen).
    :param ended: Ended sessions already handled: id -> when the platform last listed it (this triggerer's
        clock, whole seconds). Forgotten ``REMEMBER_ENDS_SECONDS`` after that, or first past ``max_ended``.
    :param watermark: Where the next history window begins, plus ``OVERLAP_SECONDS``: the newest start seen,
        within ``CLOCK_TOLERANCE_SECONDS`` of this triggerer's clock (``advance_watermark``).
    :param baselined: True once the baseline poll happened.
    :param max_ended: The memory bound (``MAX_REMEMBERED_ENDS``; smaller in tests).
    """

    tracked: dict[str, None] = dataclasses.field(default_factory=dict)
    ended: dict[str, float] = dataclasses.field(default_factory=dict)
    watermark: float | None = None
    baselined: bool = False
    max_ended: int = MAX_REMEMBERED_ENDS
    #: Warnings for the caller to log (not saved): memory overflow, a clock far ahead, stale answers.
    warnings: list[str] = dataclasses.field(default_factory=list, compare=False)
    _clock_warned: bool = dataclasses.field(default=False, compare=False, repr=False)
    _forgotten: int = dataclasses.field(default=0, compare=False, repr=False)
    _listed_now: set[str] = dataclasses.field(default_factory=set, compare=False, repr=False)

    def history_since(self) -> float | None:
        """Start of this watch's history window (None: no start seen yet, any window will do)."""
        return None if self.watermark is None else self.watermark - OVERLAP_SECONDS

    def step(
        self, running: Iterable[BrowserSession], history: Iterable[BrowserSession] | None, *, now: float
    ) -> PollResult:
        """
        Take one poll's answers; return the sessions that ended since the last poll and the ids to read.

        :param running: The running-list answer.
        :param history: The history answer (None: the platform has none, e.g. Cloudflare).
        :param now: This triggerer's clock (epoch seconds).
        """
        baseline = not self.baselined
        listed = math.ceil(now)
        history = None if history is None else list(history)  # read twice below
        running_now: dict[str, None] = {}
        starts: list[float | None] = []
        for session in running:
            running_now[session.session_id] = None
            starts.append(session_start(session))
        ended: list[BrowserSession] = []
        for session in history or ():
            starts.append(session_start(session))
            sid = session.session_id
            if not session.status.is_terminal():
                running_now[sid] = None  # running in any answer of this poll counts as running
                continue
            known = sid in self.ended
            self._remember(sid, listed)  # listed again: remembered again from now
            if not known and not baseline:
                ended.append(session)
        stale = [sid for sid in running_now if sid in self.ended]
        for sid in stale:
            # Terminal states never change: a "running" answer for a session handled already is stale
            # (a cache, a lagging replica). It is not tracked again, and it is remembered for longer.
            self._remember(sid, listed)
            del running_now[sid]
        if stale:
            self.warnings.append(
                f"{len(stale)} session(s) listed as running had already ended and been handled "
                f"(a stale answer), e.g. {stale[0]}: not watched again"
            )
        to_read = [sid for sid in self.tracked if sid not in running_now and sid not in self.ended]
        self.tracked = {**running_now, **dict.fromkeys(to_read)}
        self._advance(starts, now=now)
        self.baselined = True
        # This poll's listing is protected from forgetting until the next poll (reads come in between).
        self._listed_now = {s.session_id for s in history or () if s.status.is_terminal()}.union(stale)
        self._bound(now=now, listed_now=self._listed_now)
        return PollResult(ended=ended, to_read=to_read)

    def read(self, session_id: str, session: BrowserSession | None, *, now: float) -> BrowserSession | None:
        """
        Record the read of an id that ``step`` asked to read; return the session if this is news of its end.

        :param session_id: The id read.
        :param session: The platform's answer (None: it no longer knows the session; its outcome is lost).
        :param now: This triggerer's clock (epoch seconds).
        """
        if session_id not in self.tracked:
            return None  # not ours to report (or handled already)
        if session is not None and not session.status.is_terminal():
            return None  # it raced the list: still running, still tracked
        del self.tracked[session_id]
        if session_id in self.ended:
            return None
        self._remember(session_id, math.ceil(now))
        self._bound(now=now, listed_now=self._listed_now | {session_id})
        return session

    def _advance(self, starts: list[float | None], *, now: float) -> None:
        ahead = [s for s in starts if s is not None and s > now + CLOCK_TOLERANCE_SECONDS]
        if ahead and not self._clock_warned:
            self._clock_warned = True
            self.warnings.append(
                f"A session's start time is {max(ahead) - now:,.0f} s ahead of this triggerer's clock; the "
                f"history window stops at {CLOCK_TOLERANCE_SECONDS:g} s ahead of it (check both clocks)"
            )
        self.watermark = advance_watermark(self.watermark, starts, now=now)

    def _remember(self, session_id: str, seen: float) -> None:
        # Kept in the order last listed (oldest first), so that forgetting never has to sort.
        self.ended.pop(session_id, None)
        self.ended[session_id] = seen

    def _bound(self, *, now: float, listed_now: set[str]) -> None:
        """Forget what was not listed for ``REMEMBER_ENDS_SECONDS``; past ``max_ended``, the longest-unlisted."""
        self._forget_unlisted(now=now)
        excess = len(self.ended) - self.max_ended
        if excess <= 0:
            return
        # What the platform lists right now is never forgotten: forgetting it would report it again at once.
        oldest = [sid for sid in itertools.islice(self.ended, excess + len(listed_now)) if sid not in listed_now]
        for sid in oldest[:excess]:
            del self.ended[sid]
        self._forgotten += min(excess, len(oldest))

    def _forget_unlisted(self, *, now: float) -> None:
        horizon = now - REMEMBER_ENDS_SECONDS
        while self.ended and next(iter(self.ended.values())) < horizon:
            del self.ended[next(iter(self.ended))]

    def take_warnings(self) -> list[str]:
        """The warnings gathered since the last call (the caller logs them once per poll)."""
        taken, self.warnings = self.warnings, []
        if self._forgotten:
            taken.append(
                f"Watch memory full ({self.max_ended:,} ended sessions): forgot the {self._forgotten:,} listed "
                "longest ago; a stale answer listing one of them again would report it again"
            )
            self._forgotten = 0
        return taken

    def to_state(self) -> dict[str, Any]:
        """A JSON-safe snapshot, for Airflow's per-asset state store."""
        return {
            "version": _STATE_VERSION,
            "baselined": self.baselined,
            "watermark": self.watermark,
            "tracked": list(self.tracked),
            "ended": dict(self.ended),
        }

    @classmethod
    def from_state(cls, state: Any, *, now: float, max_ended: int = MAX_REMEMBERED_ENDS) -> EndWatch:
        """
        Rebuild from ``to_state()`` (or version 1's shape); anything unreadable starts a new watch.

        A watermark ahead of ``now`` by more than the tolerance is brought back, and what was not listed for
        ``REMEMBER_ENDS_SECONDS`` is forgotten, as a poll would.
        """
        if not isinstance(state, dict):
            return cls(max_ended=max_ended)
        try:
            if state.get("version") == _STATE_VERSION:
                tracked = dict.fromkeys(str(sid) for sid in state.get("tracked") or [])
                ended = {str(sid): float(seen) for sid, seen in dict(state.get("ended") or {}).items()}
                baselined = bool(state.get("baselined"))
            else:  # version 1: {"tracked": {id: start}, "concluded": {id: start}, "watermark": w}
                tracked = dict.fromkeys(str(sid) for sid in dict(state.get("tracked") or {}))
                ended = dict.fromkeys((str(sid) for sid in dict(state.get("concluded") or {})), float(math.ceil(now)))
                baselined = bool(tracked or ended or state.get("watermark") is not None)
            raw = state.get("watermark")
            watermark = None if raw is None else float(raw)
        except (TypeError, ValueError):
            return cls(max_ended=max_ended)
        if any(not math.isfinite(seen) for seen in ended.values()):
            ended = {sid: (seen if math.isfinite(seen) else float(math.ceil(now))) for sid, seen in ended.items()}
        watch = cls(
            tracked=tracked,
            ended=ended,
            # Brought back within the tolerance (an older version kept year-2999 starts), never forward: the
            # gap since the last poll before a restart is listed from here.
            watermark=None
            if watermark is None or not math.isfinite(watermark)
            else min(watermark, now + CLOCK_TOLERANCE_SECONDS),
            baselined=baselined,
            max_ended=max_ended,
        )
        # Only time forgets here: which of these the next listing holds (never to be forgotten) is not known yet.
        watch._forget_unlisted(now=now)
        return watch
