"""The pacing arithmetic: which headers it reads, and how long it waits as the budget runs down."""

from __future__ import annotations

import pytest

from airflow_provider_browsersessions.pacing import MAX_PACE_WAIT, Pacer, parse_ratelimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(remaining: int, reset: int, quota: int = 100, window: int = 60) -> dict[str, str]:
    return {"Ratelimit": f'"default";r={remaining};t={reset}', "Ratelimit-Policy": f'"default";q={quota};w={window}'}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (headers(50, 30), (50, 30.0, 100)),
        ({"Ratelimit": '"a";r=9;t=5, "b";r=3;t=50'}, (3, 50.0, None)),  # the tighter policy wins
        ({"Ratelimit-Remaining": "7", "Ratelimit-Reset": "12", "Ratelimit-Limit": "40"}, (7, 12.0, 40)),
        ({}, (None, None, None)),
        ({"Ratelimit": "garbage", "Ratelimit-Policy": "nonsense"}, (None, None, None)),
        ({"Ratelimit-Remaining": "lots"}, (None, None, None)),
        ({"Ratelimit": '"default";r=1.2.3;t=5'}, (None, None, None)),  # a number only in looks: ignored
        ({"Ratelimit": "r=3;t=1.2.3", "Ratelimit-Policy": "q=1.2.3"}, (3, None, None)),
        ({"Ratelimit": "r=3;t=1e400"}, (3, None, None)),  # not read as t=1
        ({"Ratelimit-Remaining": "1.2.3", "Ratelimit-Reset": "..."}, (None, None, None)),
        ({"Ratelimit": "r=3;t=99999999"}, (3, None, None)),  # over a year away: no window to pace in
        ({"Ratelimit": "r=3;t=1000000030"}, (3, 30.0, None)),  # an epoch reset, 30 s after "now" below
        ({"Ratelimit": "r=3;t=999999990"}, (3, None, None)),  # an epoch reset in the past
    ],
)
def test_parse_ratelimit_reads_the_draft_forms_and_ignores_garbage(given, expected):
    assert parse_ratelimit(given, now=1_000_000_000.0) == expected


def test_without_headers_it_never_waits():
    pacer = Pacer(clock=Clock())
    pacer.observe({"Content-Type": "application/json"})
    assert [pacer.delay() for _ in range(100)] == [0.0] * 100


def test_with_plenty_left_requests_go_at_once():
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.observe(headers(90, 30))
    assert pacer.delay() == 0.0


def test_the_wait_grows_as_remaining_falls():
    waits = []
    for remaining in (40, 20, 12):
        pacer = Pacer(clock=Clock())
        pacer.observe(headers(remaining, 30))
        waits.append(pacer.delay())
    assert 0 < waits[0] < waits[1] < waits[2]
    # Spread over the time left: never later than the window's end.
    assert all(wait <= 30 for wait in waits)


def test_threads_of_one_process_take_turns():
    pacer = Pacer(clock=Clock())
    pacer.observe(headers(30, 30))
    first, second, third = pacer.delay(), pacer.delay(), pacer.delay()
    assert first < second < third  # each reserved its own turn


def test_with_nothing_usable_it_waits_for_the_reset_capped():
    clock = Clock()
    pacer = Pacer(clock=clock, max_wait=MAX_PACE_WAIT)
    pacer.observe(headers(1, 20))
    assert pacer.delay() == 20.0
    pacer.observe(headers(0, 299))
    assert pacer.delay() == MAX_PACE_WAIT
    clock.now += 300  # the window is over: nothing is known until the next answer
    assert pacer.delay() == 0.0
