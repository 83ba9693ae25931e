"""What the view shows of one connection: its running sessions, those ended in the last day, and chart figures."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pendulum

from airflow_provider_browsersessions.plugins.cache import DeadlineExceeded
from airflow_provider_browsersessions.plugins.charts import amount
from airflow_provider_browsersessions.sessions import BrowserSession, SessionStatus, utc_iso
from airflow_provider_browsersessions.summary import percentile

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pendulum import DateTime

    from airflow_provider_browsersessions.client import SessionIterator
    from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook

#: The window of ended sessions and of the hourly chart.
HISTORY_HOURS = 24
#: Sessions read per listing (the ended ones: per ending, finished and failed): a bound on requests and on
#: the page's size. Each listing also stops at the pages these need at the API's page size (see ``_read``).
MAX_RUNNING = 200
MAX_ENDED = 500
#: Seconds a snapshot is reused: many open browsers and refreshes cost one poll per connection per TTL.
CACHE_TTL_SECONDS = 15.0
#: Rows of the ended-sessions table (the charts count every session read).
MAX_ENDED_ROWS = 100


@dataclasses.dataclass(frozen=True)
class HourBucket:
    """
    Sessions that started in one hour, by status.

    :param start: The hour's start (UTC).
    :param counts: ``{status: count}`` for running, finished and failed.
    :param bandwidth: Billable bytes of those sessions.
    """

    start: DateTime
    counts: dict[str, int]
    bandwidth: int = 0


@dataclasses.dataclass(frozen=True)
class SessionsSnapshot:
    """
    One connection's sessions at one moment, as the page and the JSON endpoint show them.

    :param conn_id: The Airflow connection.
    :param platform: The platform's display name.
    :param taken_at: When the platform was asked (UTC).
    :param running: Sessions running now, newest first.
    :param ended: Sessions that ended in the last ``HISTORY_HOURS`` hours, newest end first.
    :param has_history: False when the platform lists active sessions only (Cloudflare).
    :param truncated: Names of the listings cut at their bound (``running``, ``ended``).
    """

    conn_id: str
    platform: str
    taken_at: DateTime
    running: tuple[BrowserSession, ...]
    ended: tuple[BrowserSession, ...]
    has_history: bool
    truncated: tuple[str, ...] = ()

    def ended_by_status(self) -> dict[str, int]:
        """``{finished: n, failed: m}`` over the ended sessions."""
        counts = Counter(session.status.value for session in self.ended)
        return {status.value: counts.get(status.value, 0) for status in SessionStatus if status.is_terminal()}

    def error_counts(self) -> list[tuple[str, str, int]]:
        """``(code, message, count)`` of the failed sessions, most frequent first."""
        counts = Counter(
            (session.error_code or "", session.error_message or session.close_reason or "")
            for session in self.ended
            if session.has_error
        )
        return [(code, message, n) for (code, message), n in counts.most_common()]

    def hourly(self) -> list[HourBucket]:
        """``HISTORY_HOURS`` buckets of sessions by start hour and status, oldest first."""
        last = self.taken_at.start_of("hour")
        starts = [last.subtract(hours=offset) for offset in range(HISTORY_HOURS - 1, -1, -1)]
        counts: dict[DateTime, Counter[str]] = {start: Counter() for start in starts}
        bandwidth: Counter[DateTime] = Counter()
        for session in (*self.running, *self.ended):
            if session.started_at is None:
                continue
            hour = session.started_at.in_timezone("UTC").start_of("hour")
            if hour in counts:
                counts[hour][session.status.value] += 1
                bandwidth[hour] += _bytes(session)
        return [
            HourBucket(
                start=start,
                counts={status.value: counts[start].get(status.value, 0) for status in SessionStatus},
                bandwidth=bandwidth[start],
            )
            for start in starts
        ]

    def durations(self) -> dict[str, float | None]:
        """Nearest-rank p50 and p95 of the ended sessions' durations, in seconds (None without durations)."""
        # A NaN would make the order (and so every percentile) arbitrary; negatives and infinities mean nothing.
        values = sorted(value for s in self.ended if (value := amount(s.duration)) is not None)
        return {"p50": percentile(values, 0.50), "p95": percentile(values, 0.95)}

    def bandwidth(self) -> int:
        """Billable bytes of the ended sessions (Bright Data reports it; Cloudflare does not)."""
        return sum(_bytes(session) for session in self.ended)

    def to_dict(self) -> dict[str, Any]:
        """The JSON endpoint's body: the page's data, JSON-safe; session records as in XCom."""
        return {
            "conn_id": self.conn_id,
            "platform": self.platform,
            "taken_at": utc_iso(self.taken_at),
            "has_history": self.has_history,
            "history_hours": HISTORY_HOURS,
            "truncated": list(self.truncated),
            "running": [session.to_dict() for session in self.running],
            "ended": [session.to_dict() for session in self.ended],
            "ended_by_status": self.ended_by_status(),
            "errors": [{"code": c, "message": m, "count": n} for c, m, n in self.error_counts()],
            "hourly": [
                {"start": utc_iso(bucket.start), **bucket.counts, "bandwidth": bucket.bandwidth}
                for bucket in self.hourly()
            ],
            "duration_seconds": self.durations(),
            "bandwidth_bytes": self.bandwidth(),
        }


def _bytes(session: BrowserSession) -> int:
    # Whole bytes, summed exactly (an int never overflows to infinity); an odd value counts as none.
    value = amount(session.bandwidth)
    return 0 if value is None else int(value)


def _read(listing: SessionIterator, *, max_pages: int, ends_at: float | None) -> tuple[list[BrowserSession], bool]:
    """
    A listing's sessions (without their raw records) and whether it was cut, asking no page past the bounds.

    A listing whose filters the platform applies ends within the pages its ``max_results`` needs; one that
    pages on (a filter the server ignored, a proxy that drops it) is cut at ``max_pages``, not walked through
    the account. No page is asked past ``ends_at`` (``time.monotonic()``).

    :raises DeadlineExceeded: when a page would start past ``ends_at``.
    """
    walk = listing.walk
    sessions: list[BrowserSession] = []
    while True:
        # Everything handed out so far was read, and the walk goes on: the next step asks for a page.
        if len(sessions) == walk.stats.returned and walk.next_request() is not None:
            if walk.stats.pages >= max_pages:
                return sessions, True
            if ends_at is not None and time.monotonic() >= ends_at:
                raise DeadlineExceeded(0.0)
        try:
            session = next(listing)
        except StopIteration:
            return sessions, walk.stats.truncated
        # The view shows the parsed fields: the API's whole record is not kept for 15 s per connection.
        sessions.append(dataclasses.replace(session, raw={}))


def take_snapshot(
    hook: BrowserSessionsHook, *, now: DateTime | None = None, ends_at: float | None = None
) -> SessionsSnapshot:
    """
    Ask the platform, through the connection's hook: at most three bounded listings.

    :param hook: The connection's hook (``hooks.base.get_browser_sessions_hook``).
    :param now: The moment of the snapshot (default: now, UTC).
    :param ends_at: ``time.monotonic()`` past which no page is asked (None: no deadline).
    :raises DeadlineExceeded: when a page would start past ``ends_at``.
    """
    now = now or pendulum.now("UTC")
    has_history = hook.platform.lists_ended_sessions
    truncated: list[str] = []
    page_size = hook.page_size or hook.platform.max_page_size

    def pages(max_results: int) -> int:
        return -(-max_results // page_size)

    try:
        if has_history:
            listing = hook.iter_sessions(status="running", sort="timestamp", order="desc", max_results=MAX_RUNNING)
            running, cut = _read(listing, max_pages=pages(MAX_RUNNING), ends_at=ends_at)
            if cut:
                truncated.append("running")
            # One status per listing: Bright Data's API takes one, and two would be filtered here over every
            # session of the window (20,000 running ones: 200 pages). A session that ended in the window
            # started before it: one day more of starts covers any session shorter than a day; longer ones
            # are rare and left out (docs/ui.md says so).
            ended: list[BrowserSession] = []
            for ending in (SessionStatus.FINISHED, SessionStatus.FAILED):
                ended_listing = hook.iter_sessions(
                    status=ending.value,
                    started_after=now.subtract(hours=2 * HISTORY_HOURS),
                    sort="timestamp",
                    order="desc",
                    max_results=MAX_ENDED,
                )
                some, cut = _read(ended_listing, max_pages=pages(MAX_ENDED), ends_at=ends_at)
                ended += some
                if cut and "ended" not in truncated:
                    truncated.append("ended")
        else:
            listing = hook.iter_sessions(max_results=MAX_RUNNING)
            everything, cut = _read(listing, max_pages=pages(MAX_RUNNING), ends_at=ends_at)
            if cut:
                truncated.append("running")
            running = [s for s in everything if s.status is SessionStatus.RUNNING]
            ended = [s for s in everything if s.status is not SessionStatus.RUNNING]
    finally:
        hook.close()
    since = now.subtract(hours=HISTORY_HOURS)
    recent = [s for s in ended if (when := s.ended_at or s.started_at) is not None and when >= since]

    return SessionsSnapshot(
        conn_id=hook.conn_id,
        platform=hook.platform.display_name,
        taken_at=now,
        running=tuple(_newest_first(running, key=lambda s: s.started_at)),
        ended=tuple(_newest_first(recent, key=lambda s: s.ended_at or s.started_at)),
        has_history=has_history,
        truncated=tuple(truncated),
    )


def _newest_first(
    sessions: Iterable[BrowserSession], *, key: Callable[[BrowserSession], DateTime | None]
) -> list[BrowserSession]:
    epoch = pendulum.datetime(1970, 1, 1, tz="UTC")
    return sorted(sessions, key=lambda s: (key(s) or epoch, s.session_id), reverse=True)
