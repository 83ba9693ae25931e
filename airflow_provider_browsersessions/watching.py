"""Which sessions ended since the last poll: what an event watcher remembers between polls, without I/O."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_browsersessions.sessions import BrowserSession

#: Seconds the history window reaches back before the newest start seen: sessions that became visible
#: late (or whose clocks disagree a little) are still found; ids handled already are skipped.
OVERLAP_SECONDS = 120.0


def _start(session: BrowserSession) -> float | None:
    return None if session.started_at is None else session.started_at.timestamp()


@dataclasses.dataclass
class EndWatch:
    """
    The running sessions being watched, the ended ones already handled, and how far back to look.

    One poll: ``step(running, history)`` with the running sessions and (Bright Data) the sessions started
    since ``history_since()``; it returns the sessions that ended since the previous poll and the ids
    that left the running set without showing up in ``history`` (to read one by one, then ``read``).
    The first poll is a baseline: what had ended before the watch began is remembered, not reported.

    :param tracked: Running sessions seen: id -> start (epoch seconds, None when unknown).
    :param concluded: Ended sessions already handled: id -> start. Pruned once older than the window.
    :param watermark: The newest start time seen (epoch seconds); None before the first poll.
    """

    tracked: dict[str, float | None] = dataclasses.field(default_factory=dict)
    concluded: dict[str, float | None] = dataclasses.field(default_factory=dict)
    watermark: float | None = None

    @property
    def started(self) -> bool:
        """True once the baseline poll happened."""
        return self.watermark is not None or bool(self.tracked) or bool(self.concluded)

    def history_since(self) -> float | None:
        """Start of the history window for the next poll (None: no history yet, take a baseline)."""
        return None if self.watermark is None else self.watermark - OVERLAP_SECONDS

    def step(
        self, running: Iterable[BrowserSession], history: Iterable[BrowserSession] | None
    ) -> tuple[list[BrowserSession], list[str]]:
        """Take one poll's answers; return (sessions that ended since the last poll, ids to read)."""
        baseline = not self.started
        running_now = {s.session_id: _start(s) for s in running}
        ended: list[BrowserSession] = []
        starts = [start for start in running_now.values() if start is not None]
        for session in history or ():
            start = _start(session)
            if start is not None:
                starts.append(start)
            if not session.status.is_terminal() or session.session_id in self.concluded:
                continue
            self.concluded[session.session_id] = start
            if not baseline:
                ended.append(session)
        to_read = [sid for sid in self.tracked if sid not in running_now and sid not in self.concluded]
        self.tracked = {**running_now, **{sid: self.tracked[sid] for sid in to_read}}
        if starts:
            self.watermark = max(starts if self.watermark is None else [*starts, self.watermark])
        self._prune()
        return ended, to_read

    def read(self, session_id: str, session: BrowserSession | None) -> BrowserSession | None:
        """Record the read of an id that left the running set; return the session if it ended."""
        start = self.tracked.get(session_id)
        if session is not None and not session.status.is_terminal():
            return None  # it raced the list: still running, still tracked
        self.tracked.pop(session_id, None)
        self.concluded[session_id] = start
        return session  # None: the platform forgot it, its outcome is lost

    def _prune(self) -> None:
        if self.watermark is None:
            return
        horizon = self.watermark - 2 * OVERLAP_SECONDS
        self.concluded = {sid: s for sid, s in self.concluded.items() if s is None or s >= horizon}

    def to_state(self) -> dict[str, Any]:
        """A JSON-safe snapshot, for Airflow's per-asset state store."""
        return {"tracked": dict(self.tracked), "concluded": dict(self.concluded), "watermark": self.watermark}

    @classmethod
    def from_state(cls, state: Any) -> EndWatch:
        """Rebuild from ``to_state()``; anything unreadable starts a new watch."""
        if not isinstance(state, dict):
            return cls()
        try:
            return cls(
                tracked={str(k): v for k, v in dict(state.get("tracked") or {}).items()},
                concluded={str(k): v for k, v in dict(state.get("concluded") or {}).items()},
                watermark=None if state.get("watermark") is None else float(state["watermark"]),
            )
        except (TypeError, ValueError):
            return cls()
