"""The view's pure parts: the shared-poll cache, the snapshot's figures, the chart geometry, XCom record reading."""

from __future__ import annotations

import dataclasses
import json
import math
import threading

import pendulum
import pytest

from airflow_provider_browsersessions.plugins import charts
from airflow_provider_browsersessions.plugins.cache import DeadlineExceeded, TtlCache
from airflow_provider_browsersessions.plugins.runs import RunsIndex, TaskRef, session_records
from airflow_provider_browsersessions.plugins.snapshot import HISTORY_HOURS, SessionsSnapshot
from airflow_provider_browsersessions.sessions import BrowserSession, SessionStatus
from airflow_provider_browsersessions.summary import percentile

NOW = pendulum.datetime(2026, 3, 1, 12, 30, tz="UTC")


def session(sid: str, status: str, *, started_min_ago: float, duration: float | None = None, **fields):
    started = NOW.subtract(minutes=started_min_ago)
    ended = None if duration is None or not math.isfinite(duration) else started.add(seconds=abs(duration))
    return BrowserSession(
        provider="brightdata",
        session_id=sid,
        status=SessionStatus(status),
        started_at=started,
        ended_at=ended,
        duration=duration,
        **fields,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_cache_serves_one_load_until_the_ttl_passes():
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(ttl=15, clock=clock)
    calls = []

    def load() -> int:
        calls.append(1)
        return len(calls)

    assert [cache.get("c", load) for _ in range(5)] == [1] * 5
    clock.now = 14.9
    assert cache.get("c", load) == 1
    clock.now = 15.0
    assert cache.get("c", load) == 2
    assert cache.loads == 2


def test_concurrent_misses_on_one_key_share_one_load():
    cache: TtlCache[str, str] = TtlCache(ttl=60)
    started, release = threading.Event(), threading.Event()
    loads = []

    def slow_load() -> str:
        loads.append(1)
        started.set()
        release.wait(10)
        return "snapshot"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("c", slow_load))) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert started.wait(10)
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == ["snapshot"] * 8
    assert len(loads) == 1


def test_a_failed_load_is_served_for_its_failure_ttl_then_tried_again():
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(ttl=60, failure_ttl=5, clock=clock)

    def boom() -> int:
        raise RuntimeError("platform down")

    with pytest.raises(RuntimeError):
        cache.get("a", boom)
    with pytest.raises(RuntimeError, match="platform down"):
        cache.get("a", lambda: 1)  # within the failure's TTL: the platform is not asked again
    assert cache.loads == 1
    clock.now = 5
    assert cache.get("a", lambda: 1) == 1
    assert cache.loads == 2


def test_concurrent_callers_of_a_failing_load_share_its_one_failure():
    cache: TtlCache[str, str] = TtlCache(ttl=60, failure_ttl=60)
    started, release = threading.Event(), threading.Event()
    loads = []

    def failing_load() -> str:
        loads.append(1)
        started.set()
        release.wait(10)
        raise RuntimeError("platform down")

    errors: list[str] = []

    def view() -> None:
        try:
            cache.get("c", failing_load)
        except RuntimeError as err:
            errors.append(str(err))

    first = threading.Thread(target=view)
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=view) for _ in range(7)]
    for thread in others:
        thread.start()
    release.set()
    for thread in (first, *others):
        thread.join(10)
    assert errors == ["platform down"] * 8
    assert len(loads) == 1  # before: each caller ran the failing load again, one after the other


def test_a_caller_waits_at_most_its_timeout_and_a_late_value_serves_the_next_caller():
    cache: TtlCache[str, str] = TtlCache(ttl=60, failure_ttl=60)
    release, done = threading.Event(), threading.Event()

    def slow_load() -> str:
        release.wait(10)
        done.set()
        return "late snapshot"

    with pytest.raises(DeadlineExceeded, match=r"no answer within 0\.05 s"):
        cache.get("c", slow_load, timeout=0.05)
    with pytest.raises(DeadlineExceeded):
        cache.get("c", slow_load, timeout=0.05)  # the deadline's failure is shared like any other
    release.set()
    assert done.wait(10)
    for _ in range(100):  # the load stores its value right after it returns
        if cache.loads:
            break
        threading.Event().wait(0.01)
    assert cache.get("c", lambda: "new load") == "late snapshot"
    assert cache.loads == 1  # one load in all: the second caller did not start another


def test_keys_are_bounded():
    cache: TtlCache[str, int] = TtlCache(ttl=60, max_keys=3)
    assert cache.get("a", lambda: 1) == 1
    for key in "bcde":
        cache.get(key, lambda: 2)
    assert cache.get("a", lambda: 3) == 3  # "a" was the least recently used and dropped


def snapshot() -> SessionsSnapshot:
    return SessionsSnapshot(
        conn_id="bd",
        platform="Bright Data",
        taken_at=NOW,
        running=(session("r1", "running", started_min_ago=5),),
        ended=(
            session("f1", "failed", started_min_ago=70, duration=30, error_code="dns", error_message="no host"),
            session("f2", "failed", started_min_ago=75, duration=90, error_code="dns", error_message="no host"),
            session("ok", "finished", started_min_ago=20, duration=10, bandwidth=5000),
            session("old", "finished", started_min_ago=60 * 30, duration=10, bandwidth=7),
        ),
        has_history=True,
    )


def test_the_snapshot_counts_errors_statuses_and_percentiles():
    shot = snapshot()
    assert shot.ended_by_status() == {"finished": 2, "failed": 2}
    assert shot.error_counts() == [("dns", "no host", 2)]
    assert shot.durations() == {"p50": 10, "p95": 90}
    assert shot.bandwidth() == 5007


def test_the_hourly_buckets_cover_the_last_day_and_count_each_session_once():
    hours = snapshot().hourly()
    assert len(hours) == HISTORY_HOURS
    assert hours[-1].start == NOW.start_of("hour")
    assert hours[0].start == NOW.start_of("hour").subtract(hours=HISTORY_HOURS - 1)
    totals = {status: sum(h.counts[status] for h in hours) for status in ("running", "finished", "failed")}
    assert totals == {"running": 1, "finished": 1, "failed": 2}  # "old" started 30 h ago: outside
    assert sum(h.bandwidth for h in hours) == 5000
    json_hours = snapshot().to_dict()["hourly"]
    assert json_hours[-1]["start"] == "2026-03-01T12:00:00Z"


def test_percentile_is_nearest_rank_and_none_for_nothing():
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0


def test_stacked_bars_are_as_tall_as_their_counts():
    chart = charts.sessions_per_hour(snapshot().hourly())
    failed = [bar for bar in chart.bars if bar.css == "failed"]
    assert len(failed) == 1
    assert failed[0].title.endswith("2 failed")
    heights = {bar.css: bar.height for bar in chart.bars}
    assert heights["failed"] == pytest.approx(2 * heights["running"], abs=0.2)
    assert all(bar.y >= 0 and bar.y + bar.height <= chart.height for bar in chart.bars)


def test_empty_charts_say_so_instead_of_drawing_nothing():
    empty = SessionsSnapshot(conn_id="cf", platform="Cloudflare", taken_at=NOW, running=(), ended=(), has_history=False)
    assert charts.sessions_per_hour(empty.hourly()).empty
    assert charts.bandwidth_per_hour(empty.hourly()).empty
    assert charts.duration_percentiles(empty.durations()).empty


def test_the_duration_chart_scales_p50_against_p95():
    chart = charts.duration_percentiles({"p50": 30.0, "p95": 120.0})
    p50, p95 = chart.bars
    assert p50.width == pytest.approx(p95.width / 4, abs=0.1)
    assert [label.text for label in chart.labels if label.anchor == "start"] == ["30 s", "2.0 min"]


def test_xcom_values_give_only_records_with_a_session_id():
    records = [{"session_id": "a", "status": "failed"}, {"no": "id"}, "text", {"session_id": 5}]
    assert session_records(records) == [{"session_id": "a", "status": "failed"}]
    assert session_records('[{"session_id": "b"}]') == [{"session_id": "b"}]
    assert session_records("not json") == []
    assert session_records({"session_id": "c"}) == []  # a summary dict, not a list of records


def test_the_runs_index_filters_by_the_dags_a_user_may_read_and_is_rebuilt_after_its_ttl():
    clock = FakeClock()
    ref_a = TaskRef("dag_a", "run 1", "list", -1, "ListBrowserSessionsOperator", "success", None)
    ref_b = TaskRef("dag_b", "r/2", "wait", 3, "BrowserSessionsSensor", "success", None)
    rows = [(ref_a, [{"session_id": "s1"}]), (ref_b, [{"session_id": "s1"}, {"session_id": "s2"}])]
    reads = []

    def read_rows():
        reads.append(1)
        return rows

    index = RunsIndex(ttl=15, read_rows=read_rows, clock=clock)
    found = index.tasks_naming(["s1", "s2", "s3"], dag_ids=lambda dags: dags - {"dag_b"})
    assert found == {"s1": [ref_a]}  # s2 only in a DAG the user may not read, s3 in none
    index.tasks_naming(["s1"], dag_ids=lambda dags: dags)
    assert len(reads) == 1
    clock.now = 15
    index.tasks_naming(["s1"], dag_ids=lambda dags: dags)
    assert len(reads) == 2
    assert ref_b.ui_path() == "/dags/dag_b/runs/r%2F2/tasks/wait/mapped/3"
    assert ref_a.to_dict(base_path="/airflow")["url"] == "/airflow/dags/dag_a/runs/run%201/tasks/list"


ODD_NUMBERS = [-5.0, float("nan"), float("inf"), -float("inf"), 1e308, 10**400]


@pytest.mark.parametrize("odd", ODD_NUMBERS)
def test_odd_numbers_neither_break_nor_escape_a_chart(odd):
    hours = snapshot().hourly()
    buckets = [dataclasses.replace(hours[0], bandwidth=odd, counts={**hours[0].counts, "failed": odd}), *hours[1:]]
    drawn = [
        charts.sessions_per_hour(buckets),
        charts.bandwidth_per_hour(buckets),
        charts.duration_percentiles({"p50": odd, "p95": 90.0}),
        charts.duration_percentiles({"p50": 10.0, "p95": odd}),
    ]
    for chart in drawn:
        for bar in chart.bars:
            values = (bar.x, bar.y, bar.width, bar.height)
            assert all(math.isfinite(v) for v in values), chart.title
            assert bar.height >= 0
            assert bar.width >= 0
            assert bar.y >= 0
            assert bar.y + bar.height <= chart.height + 0.1
            assert bar.x + bar.width <= chart.width + 0.1
        for label in chart.labels:
            assert len(label.text) <= 12, label.text  # never a 300-digit number
            assert "nan" not in label.text.lower()
            assert "inf" not in label.text.lower()


def test_human_units_stay_short_for_huge_values_and_say_so_for_nonsense():
    assert charts.human_bytes(1e308) == "1e+296 TB"
    assert charts.human_seconds(1e308) == "2.78e+304 h"
    assert charts.human_bytes(2_500_000) == "2.5 MB"
    for odd in (float("nan"), -1.0, float("inf"), 10**400):
        assert charts.human_bytes(odd) == "?"
        assert charts.human_seconds(odd) == "?"


def test_the_snapshot_leaves_odd_durations_and_bandwidths_out_of_its_figures():
    base = snapshot()
    odd = (
        session("nan", "finished", started_min_ago=10, duration=float("nan"), bandwidth=-7),
        session("neg", "finished", started_min_ago=11, duration=-3.0, bandwidth=float("inf")),
        session("huge", "failed", started_min_ago=12, duration=float("inf"), bandwidth=1e308),
    )
    shot = dataclasses.replace(base, ended=(*base.ended, *odd))
    assert shot.durations() == {"p50": 10, "p95": 90}  # only the real ones, as without the odd ones
    assert shot.bandwidth() == 5007 + int(1e308)  # an exact integer sum, never infinity
    json.dumps(shot.to_dict()["duration_seconds"], allow_nan=False)
    json.dumps(shot.to_dict()["hourly"], allow_nan=False)


def test_the_runs_index_keeps_task_references_only_and_counts_what_it_skipped():
    ref_a = TaskRef("dag_a", "run 1", "list", -1, "ListBrowserSessionsOperator", "success", None)
    ref_big = TaskRef("dag_b", "run 2", "list", -1, "ListBrowserSessionsOperator", "success", None)
    rows = [
        (ref_a, '[{"session_id": "s1", "raw": {"big": "x"}}, {"session_id": "s1"}, {"session_id": "s2"}]'),
        (ref_big, None),  # the database left a value above the bound unread
    ]
    index = RunsIndex(read_rows=lambda: iter(rows))
    assert index.tasks_naming(["s1", "s2"], dag_ids=lambda dags: dags) == {"s1": [ref_a], "s2": [ref_a]}
    assert index.skipped == 1
    assert index._current() == {"s1": [ref_a], "s2": [ref_a]}  # ids and references: no record is kept


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (None, ""),
        ("http://localhost:8080", ""),
        ("http://localhost:8080/", ""),
        ("https://example.test/airflow/", "/airflow"),
        ("https://example.test/team/airflow", "/team/airflow"),
    ],
)
def test_the_ui_base_path_is_the_path_of_the_api_base_url_without_its_trailing_slash(base_url, expected, monkeypatch):
    # One function serves the UI's entries (the plugin) and the view's run links (the app), on 2.11 and 3.
    from airflow_provider_browsersessions.plugins.browser_sessions_plugin import ui_base_path

    if base_url is None:
        monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", base_url)
    assert ui_base_path() == expected
