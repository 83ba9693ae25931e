"""Chart geometry for server-side SVG: numbers in, rectangles and labels out (the template draws them)."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_browsersessions.plugins.snapshot import HourBucket

#: Stacking order, bottom up; each is also the bar's CSS class.
STATUS_ORDER = ("finished", "failed", "running")

_WIDTH = 540
_HEIGHT = 160
_LEFT = 44  # room for the y-axis labels
_BOTTOM = 22  # room for the hour labels
_TOP = 8


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


def amount(value: Any) -> float | None:
    """
    A number a chart can draw: finite and not negative; None for anything else (NaN, infinities, negatives,
    text, booleans). Platforms send what they send: one odd value must not break or skew a chart.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) and number >= 0 else None


def human_bytes(value: float) -> str:
    """``1.5 MB``-style text for a byte count (``?`` for a value no chart can show)."""
    number = amount(value)
    if number is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if number < 1000 or unit == "TB":
            break
        number /= 1000
    if number >= 1000:  # beyond the table of units: three significant digits, never hundreds of them
        return f"{number:.3g} {unit}"
    return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"


def human_seconds(value: float) -> str:
    """``42 s`` / ``3.5 min`` / ``1.2 h`` (``?`` for a value no chart can show)."""
    number = amount(value)
    if number is None:
        return "?"
    if number < 120:
        return f"{number:.0f} s"
    if number < 7200:
        return f"{number / 60:.1f} min"
    hours = number / 3600
    return f"{hours:.1f} h" if hours < 100_000 else f"{hours:.3g} h"


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
    counts = [{status: amount(bucket.counts.get(status, 0)) or 0.0 for status in STATUS_ORDER} for bucket in buckets]
    peak = max((sum(hour.values()) for hour in counts), default=0.0)
    if not peak or not math.isfinite(peak):
        return Chart(title, _WIDTH, _HEIGHT, (), tuple(_hour_axis(buckets, slot)), empty="No sessions in these hours.")
    scale = (_HEIGHT - _BOTTOM - _TOP) / peak
    bars: list[Bar] = []
    for index, bucket in enumerate(buckets):
        base = float(_HEIGHT - _BOTTOM)
        for status in STATUS_ORDER:
            count = counts[index][status]
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
                    title=f"{bucket.start.format('HH:mm')}: {count:.0f} {status}",
                )
            )
    labels = [
        *_hour_axis(buckets, slot),
        Label(x=_LEFT - 6, y=_TOP + 10, text=f"{peak:.0f}" if peak < 1e6 else f"{peak:.3g}", anchor="end"),
        Label(x=_LEFT - 6, y=_HEIGHT - _BOTTOM, text="0", anchor="end"),
    ]
    return Chart(title, _WIDTH, _HEIGHT, tuple(bars), tuple(labels))


def bandwidth_per_hour(buckets: list[HourBucket]) -> Chart:
    """Bars: billable bytes of the sessions started in each hour."""
    title = "Bandwidth per hour (sessions by start hour, UTC)"
    slot = (_WIDTH - _LEFT) / max(1, len(buckets))
    values = [amount(bucket.bandwidth) or 0.0 for bucket in buckets]
    peak = max(values, default=0.0)
    if not peak:
        return Chart(
            title, _WIDTH, _HEIGHT, (), tuple(_hour_axis(buckets, slot)), empty="No bandwidth reported in these hours."
        )
    scale = (_HEIGHT - _BOTTOM - _TOP) / peak
    bars = tuple(
        Bar(
            x=round(_LEFT + index * slot + 1, 1),
            y=round(_HEIGHT - _BOTTOM - value * scale, 1),
            width=round(slot - 2, 1),
            height=round(value * scale, 1),
            css="bandwidth",
            title=f"{bucket.start.format('HH:mm')}: {human_bytes(value)}",
        )
        for index, (bucket, value) in enumerate(zip(buckets, values, strict=True))
        if value
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
    p95 = amount(durations.get("p95"))
    if not p95:
        return Chart(title, _WIDTH, height, (), (), empty="No ended session reported a duration.")
    span = _WIDTH - _LEFT - 90
    bars: list[Bar] = []
    labels: list[Label] = []
    for row, name in enumerate(("p50", "p95")):
        value = amount(durations.get(name)) or 0.0
        y = 12 + row * 36
        width = round(span * min(value / p95, 1.0), 1)  # never past the chart, whatever p50 says
        bars.append(
            Bar(x=_LEFT, y=y, width=max(width, 1.0), height=24, css=name, title=f"{name}: {human_seconds(value)}")
        )
        labels.append(Label(x=_LEFT - 6, y=y + 17, text=name, anchor="end"))
        labels.append(Label(x=_LEFT + max(width, 1.0) + 6, y=y + 17, text=human_seconds(value), anchor="start"))
    return Chart(title, _WIDTH, height, tuple(bars), tuple(labels))
