"""SessionSummary: the figures a monitoring DAG reads instead of rows."""

from __future__ import annotations

from airflow_provider_browsersessions.sessions import BrowserSession, SessionStatus
from airflow_provider_browsersessions.summary import SessionSummary


def test_summary_figures():
    summary = SessionSummary()
    for i in range(1, 21):
        summary.add(
            BrowserSession(
                provider="brightdata",
                session_id=str(i),
                status=SessionStatus.FAILED if i % 5 == 0 else SessionStatus.FINISHED,
                duration=float(i),
                bandwidth=100,
                captcha="solved" if i % 2 else "none",
                error_code="timeout" if i % 5 == 0 else None,
            )
        )
    summary.add(BrowserSession(provider="brightdata", session_id="r", status=SessionStatus.RUNNING))
    figures = summary.to_dict()
    assert figures["count"] == 21
    assert figures["by_status"] == {"running": 1, "finished": 16, "failed": 4}
    assert figures["total_bandwidth"] == 2000
    assert figures["duration_seconds"] == {"min": 1.0, "p50": 10.0, "p95": 19.0, "max": 20.0}
    assert figures["captcha"] == {"none": 10, "solved": 10}
    assert figures["error_codes"] == {"timeout": 4}


def test_empty_summary_has_no_duration_figures():
    figures = SessionSummary().to_dict()
    assert figures["count"] == 0
    assert figures["duration_seconds"] == {"min": None, "p50": None, "p95": None, "max": None}
