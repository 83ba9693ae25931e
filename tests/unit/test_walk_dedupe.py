"""De-duplication of shifted offset pages, with memory that does not grow with a newest-first listing."""

from __future__ import annotations

import pendulum

from airflow_provider_browsersessions.platforms.base import _SeenSessions
from airflow_provider_browsersessions.sessions import BrowserSession, SessionStatus

T0 = pendulum.datetime(2026, 1, 1, tz="UTC")


def session(sid, minutes_ago):
    started = None if minutes_ago is None else T0.subtract(minutes=minutes_ago)
    return BrowserSession(provider="brightdata", session_id=sid, status=SessionStatus.FINISHED, started_at=started)


def test_newest_first_keeps_only_the_ids_at_the_floor():
    seen = _SeenSessions(newest_first=True)
    page1 = [session("a", 1), session("b", 2), session("c", 3), session("d", 3)]
    assert [seen.first_time(s) for s in page1] == [True] * 4
    assert seen.ids == {"c", "d"}  # memory: the ties at the oldest start seen, not every id
    # A new session started at the front, so "d" (and a tie "e" never seen) come on the next page.
    page2 = [session("d", 3), session("e", 3), session("f", 4), session("a", 1)]
    assert [seen.first_time(s) for s in page2] == [False, True, True, False]
    assert seen.ids == {"f"}


def test_other_orders_and_missing_start_times_remember_every_id():
    seen = _SeenSessions(newest_first=False)
    assert [seen.first_time(session(sid, m)) for sid, m in [("a", 5), ("b", 1), ("a", 5)]] == [True, True, False]
    assert seen.ids == {"a", "b"}
    newest = _SeenSessions(newest_first=True)
    assert [newest.first_time(session(sid, None)) for sid in ("x", "x")] == [True, False]
