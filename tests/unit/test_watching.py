"""EndWatch, the event watcher's memory: never misses, never repeats, stays bounded (docs/howto/events.md).

The property tests drive the real ``EndWatch`` and the shared poll's window rule (``advance_watermark``,
``catch_up_since``) against a model platform, over random poll schedules, answer orders, clock skews, failed
polls and reads, restarts from the saved state, stale "running" answers, and records whose start time is
true, missing, in year 3000 or in 1970. The emulator tests in ``tests/triggers/test_event_trigger.py`` run
the same cases through the trigger and HTTP.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_browsersessions.sessions import BrowserSession, SessionStatus
from airflow_provider_browsersessions.watching import (
    CLOCK_TOLERANCE_SECONDS,
    MAX_REMEMBERED_ENDS,
    OVERLAP_SECONDS,
    REMEMBER_ENDS_SECONDS,
    EndWatch,
    advance_watermark,
    catch_up_since,
)

T0 = 1_800_000_000.0  # platform time of the first poll
YEAR_3000 = 32503680000.0
#: What a record shows as its start: the truth, nothing, year 3000, 1970; "sticky": nothing, and the server
#: lists it in every history window whatever its start (an undocumented case the watcher must survive).
SHOWN = {"true": None, "none": None, "future": YEAR_3000, "epoch": 1.0, "sticky": None}


def session(sid, status="running", start=None):
    started = None if start is None else pendulum.from_timestamp(start)
    return BrowserSession(provider="brightdata", session_id=sid, status=SessionStatus(status), started_at=started)


# -- the cases of the issue, one by one --------------------------------------------------------------------------


def test_an_empty_first_poll_is_the_baseline_and_the_next_session_is_news():
    watch = EndWatch()
    assert watch.step([], [], now=T0).ended == []
    assert watch.baselined
    assert [s.session_id for s in watch.step([], [session("a", "failed", T0 + 5)], now=T0 + 30).ended] == ["a"]


def test_a_year_3000_start_keeps_the_window_near_now():
    watch = EndWatch()
    watch.step([], [session("future", "failed", YEAR_3000)], now=T0)
    assert watch.watermark == T0 + CLOCK_TOLERANCE_SECONDS
    assert watch.history_since() == T0 + CLOCK_TOLERANCE_SECONDS - OVERLAP_SECONDS < T0 + 1  # covers what starts next
    for poll in range(1, 100):  # still listed at every poll: remembered, never reported again
        assert watch.step([], [session("future", "failed", YEAR_3000)], now=T0 + 30 * poll).ended == []
    assert watch.take_warnings()[0].startswith("A session's start time is")


def test_a_saved_year_3000_watermark_is_brought_back_when_loaded():
    state = {"tracked": {}, "concluded": {"old": YEAR_3000}, "watermark": YEAR_3000}  # as version 1 saved it
    watch = EndWatch.from_state(state, now=T0)
    assert watch.watermark == T0 + CLOCK_TOLERANCE_SECONDS
    assert watch.baselined
    assert watch.step([], [session("old", "failed", YEAR_3000)], now=T0 + 30).ended == []
    assert [s.session_id for s in watch.step([], [session("new", "failed", T0 + 40)], now=T0 + 60).ended] == ["new"]


def test_twenty_thousand_reads_without_a_start_time_stay_within_the_bound_and_are_forgotten():
    watch = EndWatch()
    watch.step([session(f"s{i}") for i in range(20_000)], None, now=T0)  # Cloudflare: startTime 0 -> None
    poll = watch.step([], None, now=T0 + 60)
    assert len(poll.to_read) == 20_000
    reported = [watch.read(sid, session(sid, "finished"), now=T0 + 61) for sid in poll.to_read]
    assert all(reported)
    assert len(watch.ended) == MAX_REMEMBERED_ENDS
    assert len(json.dumps(watch.to_state())) < 300_000
    assert any("memory full" in warning for warning in watch.take_warnings())
    watch.step([], None, now=T0 + 61 + REMEMBER_ENDS_SECONDS + 1)
    assert watch.ended == {}
    assert watch.tracked == {}


def test_a_history_session_without_a_start_is_reported_once_and_remembered_while_listed():
    watch = EndWatch()
    watch.step([], [], now=T0)
    listed = [session("nostart", "failed")]
    assert [s.session_id for s in watch.step([], listed, now=T0 + 30).ended] == ["nostart"]
    for hour in range(1, 6):  # listed for five hours: never forgotten, never reported again
        assert watch.step([], listed, now=T0 + 3600 * hour).ended == []
    watch.step([], [], now=T0 + 3600 * 7)
    assert "nostart" not in watch.ended


def test_a_stale_running_answer_for_an_ended_session_is_ignored():
    watch = EndWatch()
    watch.step([session("long", start=T0 - 7200)], [], now=T0)
    poll = watch.step([], [], now=T0 + 30)
    assert poll.to_read == ["long"]
    assert watch.read("long", session("long", "failed", T0 - 7200), now=T0 + 31) is not None
    # Hours of history later (its start is long out of any window), a lagging replica lists it as running.
    assert watch.step([session("long", start=T0 - 7200)], [], now=T0 + 600).to_read == []
    assert "long" not in watch.tracked
    assert watch.step([], [], now=T0 + 630).to_read == []
    assert any("stale answer" in warning for warning in watch.take_warnings())


def test_memory_past_its_bound_forgets_the_longest_unlisted_never_what_is_listed_now():
    watch = EndWatch(max_ended=3)
    watch.step([], [], now=T0)
    for i in range(5):
        watch.step([], [session(f"old{i}", "failed", T0 + i)], now=T0 + 10 * (i + 1))
    listed = [session(f"now{i}", "failed", T0 + 60) for i in range(4)]
    assert len(watch.step([], listed, now=T0 + 100).ended) == 4
    assert set(watch.ended) == {f"now{i}" for i in range(4)}  # 4 > 3, but all four are listed right now
    assert watch.step([], listed, now=T0 + 110).ended == []


@pytest.mark.parametrize(
    "state",
    [None, "garbage", [], {"version": 2, "ended": {"a": "soon"}}, {"watermark": "x"}, {"version": 2, "tracked": 5}],
)
def test_an_unreadable_state_starts_a_new_watch(state):
    assert EndWatch.from_state(state, now=T0) == EndWatch()


def test_the_state_round_trips_through_json():
    watch = EndWatch()
    watch.step([session("a", start=T0)], [session("b", "failed", T0)], now=T0)
    again = EndWatch.from_state(json.loads(json.dumps(watch.to_state())), now=T0 + 1)
    assert again == watch


@given(
    current=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    starts=st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=5),
    now=st.floats(min_value=0, max_value=1e10),
)
def test_the_watermark_moves_forward_within_the_tolerance_of_now(current, starts, now):
    watermark = advance_watermark(current, starts, now=now)
    assert now - CLOCK_TOLERANCE_SECONDS <= watermark <= now + CLOCK_TOLERANCE_SECONDS
    if current is not None and math.isfinite(current) and current <= now + CLOCK_TOLERANCE_SECONDS:
        assert watermark >= current


# -- the model platform ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sim:
    """One session of the model platform: its true start and end (platform clock), and the start its record shows."""

    sid: str
    start: float
    end: float | None
    outcome: str
    shown: str

    def record(self, t: float, *, as_running: bool = False) -> BrowserSession:
        running = as_running or self.end is None or t < self.end
        shown = self.start if self.shown == "true" else SHOWN[self.shown]
        return session(self.sid, "running" if running else self.outcome, shown)


@dataclasses.dataclass(frozen=True)
class Poll:
    gap: float  # seconds since the previous poll
    fails: bool  # the shared poll failed (no snapshot)
    reads_fail: bool  # the reads of this poll failed (counted as still running)
    restart: bool  # the triggerer restarts after this poll, from the saved state
    downtime: float  # seconds the triggerer is down when it restarts
    stale: bool  # the running answer also lists sessions that ended recently


sims = st.lists(
    st.builds(
        lambda start, duration, outcome, shown: (start, duration, outcome, shown),
        st.floats(min_value=-2000, max_value=6000),
        st.one_of(st.none(), st.floats(min_value=0, max_value=60), st.floats(min_value=0, max_value=3000)),
        st.sampled_from(["finished", "failed"]),
        st.sampled_from(["true", "true", "none", "future", "epoch", "sticky"]),
    ),
    max_size=25,
)
polls = st.lists(
    st.builds(
        Poll,
        gap=st.floats(min_value=0.5, max_value=400),
        fails=st.booleans(),
        reads_fail=st.booleans(),
        restart=st.booleans(),
        stale=st.booleans(),
        downtime=st.floats(min_value=0, max_value=3000),
    ),
    min_size=1,
    max_size=25,
)


def listed(sim: Sim, since: float) -> bool:
    """Whether the model server's history listing from ``since`` holds this session (it filters by true start)."""
    return sim.shown == "sticky" or sim.start >= since


def simulate(*, platform, skew, raw_sims, schedule, rng, max_ended, stale_answers):
    """
    Run a watcher over the model platform; return (reported ids, expected ids, acceptable extra ids).

    The shared poll is modelled as ``BrowserSessionEventTrigger.open_shared_stream`` does it: a window from
    its own watermark, advanced by the same rule; each watcher catches up a gap with ``catch_up_since``.
    """
    world = [
        Sim(f"s{i}", T0 + start, None if duration is None else T0 + start + duration, outcome, shown)
        for i, (start, duration, outcome, shown) in enumerate(raw_sims)
    ]
    # Two clean polls close the schedule: what ended by then must have been learned.
    clean = Poll(gap=30, fails=False, reads_fail=False, restart=False, stale=False, downtime=0)
    schedule = [*schedule, clean, clean]
    watch = EndWatch(max_ended=max_ended)
    stream_newest: float | None = None
    reported: list[str] = []
    baseline: float | None = None
    seen_running: set[str] = set()
    t = T0 - schedule[0].gap
    last = T0
    for poll in schedule:
        t += poll.gap
        now = t + skew
        if stream_newest is None:
            stream_newest = advance_watermark(None, [], now=now)
        if poll.fails:
            continue
        visible = [s for s in world if s.start <= t]
        running = [s.record(t) for s in visible if s.end is None or t < s.end]
        seen_running.update(s.session_id for s in running)
        if poll.stale and stale_answers and baseline is not None:
            ended_lately = [s for s in visible if s.end is not None and baseline < s.end <= t and t - s.end < 600]
            running += [s.record(t, as_running=True) for s in ended_lately]
        since = stream_newest - OVERLAP_SECONDS
        history = None if platform == "cloudflare" else [s.record(t) for s in visible if listed(s, since)]
        rng.shuffle(running)
        if history is not None:
            rng.shuffle(history)
        stream_newest = advance_watermark(
            stream_newest, [s.started_at.timestamp() for s in running + (history or []) if s.started_at], now=now
        )
        gap = catch_up_since(watch.history_since(), since) if history is not None else None
        if gap is not None:
            history = [*history, *(s.record(t) for s in visible if listed(s, gap))]
        before = watch.watermark
        result = watch.step(running, history, now=now)
        assert watch.watermark <= now + CLOCK_TOLERANCE_SECONDS
        assert before is None or watch.watermark >= min(before, now + CLOCK_TOLERANCE_SECONDS)
        listed_ids = {s.session_id for s in history or () if s.status.is_terminal()}
        assert len(watch.ended) <= max_ended + len(listed_ids | {s.session_id for s in running})
        if baseline is None:
            baseline = t
        reported += [s.session_id for s in result.ended]
        by_id = {s.sid: s for s in world}
        for sid in result.to_read:
            answer = session(sid) if poll.reads_fail else by_id[sid].record(t)
            outcome = watch.read(sid, answer, now=now)
            if outcome is not None:
                reported.append(outcome.session_id)
        last = t
        if poll.restart:
            watch = EndWatch.from_state(json.loads(json.dumps(watch.to_state())), now=now, max_ended=max_ended)
            stream_newest = None
            t += poll.downtime
    ended_in_watch = {s.sid for s in world if s.end is not None and baseline < s.end <= last}
    if platform == "brightdata":
        return reported, ended_in_watch, set()
    # Cloudflare keeps no history: an end is found for the sessions a poll saw running (a stale answer may
    # show one more, which did end during the watch).
    return reported, ended_in_watch & seen_running, ended_in_watch - seen_running


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    platform=st.sampled_from(["brightdata", "cloudflare"]),
    skew=st.floats(min_value=-900, max_value=OVERLAP_SECONDS - CLOCK_TOLERANCE_SECONDS - 5),
    raw_sims=sims,
    schedule=polls,
    rng=st.randoms(use_true_random=False),
)
def test_every_session_that_ends_during_the_watch_is_reported_exactly_once(platform, skew, raw_sims, schedule, rng):
    reported, expected, extra = simulate(
        platform=platform,
        skew=skew,
        raw_sims=raw_sims,
        schedule=schedule,
        rng=rng,
        max_ended=MAX_REMEMBERED_ENDS,
        stale_answers=True,
    )
    assert len(reported) == len(set(reported)), "reported twice"
    assert expected <= set(reported), "missed"
    assert set(reported) <= expected | extra, "reported a session that did not end during the watch"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    platform=st.sampled_from(["brightdata", "cloudflare"]),
    raw_sims=sims,
    schedule=polls,
    rng=st.randoms(use_true_random=False),
    max_ended=st.integers(min_value=1, max_value=4),
)
def test_a_tiny_memory_bound_still_never_repeats_what_the_platform_lists(platform, raw_sims, schedule, rng, max_ended):
    reported, expected, extra = simulate(
        platform=platform,
        skew=0.0,
        raw_sims=raw_sims,
        schedule=schedule,
        rng=rng,
        max_ended=max_ended,
        stale_answers=False,
    )
    assert len(reported) == len(set(reported))
    assert expected <= set(reported) <= expected | extra


def test_the_model_finds_what_it_should_on_a_plain_day():
    reported, expected, _ = simulate(
        platform="brightdata",
        skew=0.0,
        raw_sims=[(10, 20, "failed", "true"), (-500, 700, "finished", "none"), (100, None, "failed", "future")],
        schedule=[Poll(gap=60, fails=False, reads_fail=False, restart=False, stale=False, downtime=0)] * 20,
        rng=random.Random(0),
        max_ended=MAX_REMEMBERED_ENDS,
        stale_answers=False,
    )
    assert sorted(reported) == sorted(expected) == ["s0", "s1"]
