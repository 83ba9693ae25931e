"""The view's health book (plugins/health.py): pure, with a hand-driven clock."""

from __future__ import annotations

import pendulum

from airflow_provider_browsersessions.metrics import RequestTally
from airflow_provider_browsersessions.plugins.health import MAX_THROTTLED, THROTTLED_WINDOW_SECONDS, HealthBook

ASKED = pendulum.datetime(2026, 12, 7, 5, 0, tz="UTC")


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def tally(requests: int, *, throttled_at: list[float] = (), remaining: float | None = None, quota=None) -> RequestTally:
    return RequestTally(requests=requests, throttled_at=list(throttled_at), remaining=remaining, quota=quota)


def test_a_429_older_than_the_window_is_no_longer_counted():
    clock = Clock()
    book = HealthBook(clock=clock)
    book.record("cf", tally(3, throttled_at=[clock.now - 10, clock.now - 5]), asked_at=ASKED, seconds=1.5, failed=False)
    assert book.of("cf").throttled == 2
    clock.now += THROTTLED_WINDOW_SECONDS - 6
    assert book.of("cf").throttled == 1
    clock.now += 2
    assert book.of("cf").throttled == 0


def test_the_429s_kept_are_capped_and_the_count_says_it_is_a_lower_bound():
    clock = Clock()
    book = HealthBook(clock=clock)
    for _ in range(3):
        book.record(
            "bd",
            tally(MAX_THROTTLED, throttled_at=[clock.now] * MAX_THROTTLED),
            asked_at=ASKED,
            seconds=1.0,
            failed=True,
        )
    health = book.of("bd")
    assert (health.throttled, health.throttled_capped) == (MAX_THROTTLED, True)


def test_the_budget_stays_the_last_one_reported_and_the_cost_is_the_last_asks():
    book = HealthBook(clock=Clock())
    book.record("cf", tally(2, remaining=30, quota=1200), asked_at=ASKED, seconds=0.5, failed=False)
    book.record("cf", tally(1), asked_at=ASKED.add(minutes=1), seconds=0.25, failed=True)
    health = book.of("cf")
    assert (health.requests, health.seconds, health.failed) == (1, 0.25, True)
    assert (health.remaining, health.quota, health.remaining_percent()) == (30, 1200, 2.5)
    assert health.budget_at == ASKED.add(seconds=0.5)
    assert health.to_dict()["budget_remaining_percent"] == 2.5


def test_an_ask_that_sent_no_request_is_not_one():
    book = HealthBook(clock=Clock())
    book.record("cf", tally(0), asked_at=ASKED, seconds=0.0, failed=True)
    assert book.of("cf") is None


def test_the_book_keeps_the_most_recently_asked_connections_only():
    book = HealthBook(clock=Clock(), max_connections=2)
    for conn_id in ("a", "b", "c"):
        book.record(conn_id, tally(1), asked_at=ASKED, seconds=0.1, failed=False)
    assert book.of("a") is None
    assert book.of("b") is not None
    assert book.of("c") is not None
