"""Aggregate figures over a set of sessions: the ``summary`` XCom a monitoring DAG reads instead of rows."""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_browsersessions.sessions import BrowserSession


__all__ = ["SessionSummary"]


def percentile(ordered: list[float], fraction: float) -> float | None:
    """
    Nearest-rank percentile of sorted values: always a value that was observed, as dashboards expect.

    The ``summary`` XCom and the view's duration chart both use it, so they agree on what p95 means.

    :param ordered: The values, sorted ascending.
    :param fraction: Which percentile, from 0 to 1 (0.95 for p95).
    :return: The value at that rank; None when there are no values.
    """
    if not ordered:
        return None
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


class SessionSummary:
    """
    Counts by status, total bandwidth, duration spread, captcha outcomes and error codes.

    ``truncated`` says whether ``max_results`` cut the listing, and ``server_total`` how many sessions
    the server counted (before local filters; None when the platform does not say).

    Feed it sessions one by one with :meth:`add`; :meth:`to_dict` gives the JSON-safe result.
    Memory: one float per session with a duration (for the percentiles), nothing else per session.
    """

    def __init__(self) -> None:
        self.count = 0
        self.by_status: Counter[str] = Counter()
        self.captcha: Counter[str] = Counter()
        self.error_codes: Counter[str] = Counter()
        self.total_bandwidth = 0
        self.durations: list[float] = []
        self.truncated = False
        self.server_total: int | None = None

    def add(self, session: BrowserSession) -> None:
        """Count one session."""
        self.count += 1
        self.by_status[session.status.value] += 1
        if session.captcha is not None:
            self.captcha[session.captcha] += 1
        if session.error_code is not None:
            self.error_codes[session.error_code] += 1
        elif session.error_message is not None:
            self.error_codes[session.error_message] += 1
        if session.bandwidth is not None:
            self.total_bandwidth += session.bandwidth
        if session.duration is not None:
            self.durations.append(session.duration)

    def note_walk(self, *, truncated: bool, server_total: int | None) -> None:
        """
        Record how the listing ended, so the summary does not hide a cut.

        :param truncated: ``max_results`` stopped the walk while more sessions matched.
        :param server_total: How many sessions the server counted (before local filters), when it says.
        """
        self.truncated = truncated
        self.server_total = server_total

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe figures; duration figures are None when no session reported a duration."""
        ordered = sorted(self.durations)
        duration: dict[str, float | None] = {"min": None, "p50": None, "p95": None, "max": None}
        if ordered:
            duration = {
                "min": ordered[0],
                "p50": percentile(ordered, 0.50),
                "p95": percentile(ordered, 0.95),
                "max": ordered[-1],
            }
        return {
            "count": self.count,
            "by_status": {status: self.by_status.get(status, 0) for status in ("running", "finished", "failed")},
            "total_bandwidth": self.total_bandwidth,
            "duration_seconds": duration,
            "captcha": dict(sorted(self.captcha.items())),
            "error_codes": dict(sorted(self.error_codes.items())),
            # True when max_results cut the listing: the figures above cover only the sessions returned.
            "truncated": self.truncated,
            "server_total": self.server_total,
        }
