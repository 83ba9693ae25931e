"""The metrics' tag rules (pure functions), and a broken StatsD setting that must not fail the work."""

from __future__ import annotations

import pytest

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.exceptions import (
    AuthenticationError,
    MalformedResponseError,
    RateLimitedError,
    RedirectRefusedError,
    RequestDeadlineError,
    ServerError,
    TransportError,
)
from airflow_provider_browsersessions.waiting import SessionsFailedError


def api_error(cls, status):
    return cls(platform="Cloudflare", method="GET", path="/x", status=status, message="m")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "2xx"),
        (api_error(RedirectRefusedError, 302), "3xx"),
        (api_error(AuthenticationError, 401), "4xx"),
        (api_error(RateLimitedError, 429), "429"),
        (api_error(ServerError, 503), "5xx"),
        (api_error(TransportError, None), "network"),
        (api_error(RequestDeadlineError, None), "deadline"),
        (api_error(MalformedResponseError, 200), "malformed"),
        (ValueError("not ours"), "other"),
    ],
)
def test_a_request_outcome_is_its_status_class_or_why_none_came(error, outcome):
    assert metrics.request_outcome(status=None if error else 204, error=error) == outcome


def test_a_tag_value_outside_its_set_is_sent_as_other():
    from airflow_provider_browsersessions.platforms.cloudflare import CloudflarePlatform

    # A platform tag is the name of a platform class (one is loaded wherever a request is sent).
    assert metrics.platform_tag(CloudflarePlatform.name) == "cloudflare"
    assert metrics.platform_tag("https://api.example.com/x?token=1") == "other"
    assert metrics.allowed("a-session-id", metrics.WAIT_MODES) == "other"
    assert metrics.allowed("poke", metrics.WAIT_MODES) == "poke"


def test_a_wait_outcome_is_read_from_what_the_sensor_raised():
    from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

    failed = SessionsFailedError("one failed")
    try:
        raise AirflowSkipException("Skipped (soft_fail)") from failed
    except AirflowSkipException as skip:
        soft_failed = skip
    assert metrics.wait_outcome_of(failed) == "failed"
    assert metrics.wait_outcome_of(soft_failed) == "failed"
    assert metrics.wait_outcome_of(AirflowSkipException("Skipped (soft_fail): timed out")) == "timeout"
    assert metrics.wait_outcome_of(AirflowSensorTimeout("late")) == "timeout"
    assert metrics.wait_outcome_of(api_error(ServerError, 500)) == "error"
    assert metrics.wait_outcome_of(TaskDeferred(trigger=None, method_name="m")) is None


def test_a_broken_statsd_setting_fails_no_request(browsersessions_connections, monkeypatch):
    pytest.importorskip("statsd", reason="Airflow's StatsD logger needs the statsd package (pip install statsd)")
    from test_metrics_on_the_wire import statsd_settings

    from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook

    browsersessions_connections.emulator.add_session("brightdata", duration=None)
    # A port that is no number: Airflow's StatsD factory raises on every metric (it only catches DNS errors).
    with statsd_settings(statsd_on="True", statsd_host="127.0.0.1", statsd_port="not-a-port"):
        hook = get_browser_sessions_hook("brightdata_default")
        try:
            sessions = hook.list_sessions()
        finally:
            hook.close()
    assert len(sessions) == 1
