"""Chart geometry for server-side SVG: numbers in, rectangles and labels out (the template draws them)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_browsersessions.plugins.snapshot import HourBucket

#: Stacking order, bottom up; each is also the bar's CSS class.
STATUS_ORDER = ("finished", "failed", "running")

_WIDTH = 540
_HEIGHT = 160
_LEFT = 44  # room for the y-axis labels
_BOTTOM = 22  # room for the hour labels
_TOP = 8
# The largest value drawn as itself: Python's ints have no bound, and one past about 1.8e308 (a broken record's
# 10**400) makes float arithmetic raise. The parsers keep counts and durations far below; this guards the sums.
_MAX_PLOTTED = 1e300


def _plottable(value: float) -> float:
    """``value`` as a float the chart arithmetic can use (above ``_MAX_PLOTTED``: ``_MAX_PLOTTED``)."""
    return float(min(value, _MAX_PLOTTED))  # min() compares an int of any size exactly, float() then cannot fail


@dataclasses.dataclass(frozen=True)
class Bar:
    """
    One rectangle of a chart.

    :param x: Left edge.
    :param y: Top edge.
    :param width: Width.
    :param height: Height.
    :param css: The CSS class that colours it.
    :param title: Its tooltip (text; escaped when drawn).
    """

    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclasses.dataclass(frozen=True)
class Label:
    """
    A text label at a point.

    :param x: Anchor x.
    :param y: Baseline y.
    :param text: The text (escaped when drawn).
    :param anchor: SVG ``text-anchor``.
    """

    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclasses.dataclass(frozen=True)
class Chart:
    """
    What the template draws: a titled SVG of bars and labels.

    :param title: The chart's title (also its accessible name).
    :param width: SVG width.
    :param height: SVG height.
    :param bars: The rectangles.
    :param labels: Axis and value labels.
    :param empty: Shown instead of bars when there is nothing to draw.
    """

    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    empty: str | None = None


def human_bytes(value: float) -> str:
    """``1.5 MB``-style text for a byte count."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns at GB


def human_seconds(value: float) -> str:
    """``42 s`` / ``3.5 min`` / ``1.2 h``."""
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _hour_axis(buckets: list[HourBucket], slot: float) -> list[Label]:
    return [
        Label(x=_LEFT + index * slot + slot / 2, y=_HEIGHT - 6, text=bucket.start.format("HH:mm"))
        for index, bucket in enumerate(buckets)
        if index % 4 == 0
    ]


def sessions_per_hour(buckets: list[HourBucket]) -> Chart:
    """Stacked bars: sessions started in each hour, by status."""
    title = "Sessions started per hour, by status (UTC)"
    slot = (_WIDTH - _LEFT) / max(1, len(buckets))
    peak = max((sum(b.counts.values()) for b in buckets), default=0)
    if peak == 0:
        return Chart(title, _WIDTH, _HEIGHT, (), tuple(_hour_axis(buckets, slot)), empty="No sessions in these hours.")
    scale = (_HEIGHT - _BOTTOM - _TOP) / peak
    bars: list[Bar] = []
    for index, bucket in enumerate(buckets):
        base = float(_HEIGHT - _BOTTOM)
        for status in STATUS_ORDER:
            count = bucket.counts.get(status, 0)
            if not count:
                continue
            height = count * scale
            base -= height
            bars.append(
                Bar(
                    x=round(_LEFT + index * slot + 1, 1),
                    y=round(base, 1),
                    width=round(slot - 2, 1),
                    height=round(height, 1),
                    css=status,
                    title=f"{bucket.start.format('HH:mm')}: {count} {status}",
                )
            )
    labels = [
        *_hour_axis(buckets, slot),
        Label(x=_LEFT - 6, y=_TOP + 10, text=str(peak), anchor="end"),
        Label(x=_LEFT - 6, y=_HEIGHT - _BOTTOM, text="0", anchor="end"),
    ]
    return Chart(title, _WIDTH, _HEIGHT, tuple(bars), tuple(labels))


def bandwidth_per_hour(buckets: list[HourBucket]) -> Chart:
    """Bars: billable bytes of the sessions started in each hour."""
    title = "Bandwidth per hour (sessions by start hour, UTC)"
    slot = (_WIDTH - _LEFT) / max(1, len(buckets))
    peak = _plottable(max((b.bandwidth for b in buckets), default=0))
    if peak == 0:
        return Chart(
            title, _WIDTH, _HEIGHT, (), tuple(_hour_axis(buckets, slot)), empty="No bandwidth reported in these hours."
        )
    scale = (_HEIGHT - _BOTTOM - _TOP) / peak
    bars = tuple(
        Bar(
            x=round(_LEFT + index * slot + 1, 1),
            y=round(_HEIGHT - _BOTTOM - _plottable(bucket.bandwidth) * scale, 1),
            width=round(slot - 2, 1),
            height=round(_plottable(bucket.bandwidth) * scale, 1),
            css="bandwidth",
            title=f"{bucket.start.format('HH:mm')}: {human_bytes(_plottable(bucket.bandwidth))}",
        )
        for index, bucket in enumerate(buckets)
        if bucket.bandwidth
    )
    labels = (
        *_hour_axis(buckets, slot),
        Label(x=_LEFT - 6, y=_TOP + 10, text=human_bytes(peak), anchor="end"),
        Label(x=_LEFT - 6, y=_HEIGHT - _BOTTOM, text="0", anchor="end"),
    )
    return Chart(title, _WIDTH, _HEIGHT, bars, labels)


def duration_percentiles(durations: dict[str, float | None]) -> Chart:
    """Two horizontal bars: the p50 and p95 duration of the ended sessions."""
    title = "Duration of ended sessions: p50 and p95"
    height = 90
    p95 = _plottable(durations.get("p95") or 0.0)
    if not p95:
        return Chart(title, _WIDTH, height, (), (), empty="No ended session reported a duration.")
    span = _WIDTH - _LEFT - 90
    bars: list[Bar] = []
    labels: list[Label] = []
    for row, name in enumerate(("p50", "p95")):
        value = _plottable(durations.get(name) or 0.0)
        y = 12 + row * 36
        width = round(span * value / p95, 1)
        bars.append(
            Bar(x=_LEFT, y=y, width=max(width, 1.0), height=24, css=name, title=f"{name}: {human_seconds(value)}")
        )
        labels.append(Label(x=_LEFT - 6, y=y + 17, text=name, anchor="end"))
        labels.append(Label(x=_LEFT + max(width, 1.0) + 6, y=y + 17, text=human_seconds(value), anchor="start"))
    return Chart(title, _WIDTH, height, tuple(bars), tuple(labels))
