"""Checks before any run: literal values validated when built, clear messages, no chained tracebacks."""

from __future__ import annotations

import inspect
import re
from datetime import datetime

import pytest

from airflow_provider_browsersessions.exceptions import InvalidQueryError, ServerError
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
from airflow_provider_browsersessions.sensors.sessions import WAIT_FILTERS, BrowserSessionsSensor
from airflow_provider_browsersessions.sessions import (
    FILTER_NAMES,
    RUNNING_FILTERS,
    SessionQuery,
    is_literal,
    parse_datetime,
)
from airflow_provider_browsersessions.summary import SessionSummary


@pytest.mark.parametrize(
    "value", [None, True, 3, 1.5, "failed", datetime(2025, 1, 1), ["failed", "finished"], ("a",), {"x"}]
)
def test_plain_values_are_literal(value):
    assert is_literal(value)


@pytest.mark.parametrize("value", ["{{ params.status }}", "{% if x %}a{% endif %}", ["failed", "{{ x }}"], object()])
def test_templates_and_deferred_values_are_not_literal(value):
    assert not is_literal(value)


def test_the_operator_rejects_a_literal_typo_when_built():
    with pytest.raises(InvalidQueryError, match=r"'status': expected one of running, finished, failed; got 'faild'"):
        ListBrowserSessionsOperator(task_id="t", conn_id="c", status="faild")
    with pytest.raises(InvalidQueryError, match="'max_xcom_bytes'"):
        ListBrowserSessionsOperator(task_id="t", conn_id="c", max_xcom_bytes=0)
    with pytest.raises(InvalidQueryError, match="'max_results'"):
        ListBrowserSessionsOperator(task_id="t", conn_id="c", max_results=-1)


def test_the_sensor_rejects_a_literal_typo_when_built():
    with pytest.raises(InvalidQueryError, match="'started_before'"):
        BrowserSessionsSensor(task_id="t", conn_id="c", started_before="tomorrow-ish")
    with pytest.raises(InvalidQueryError, match=r"one of finished, failed, wait; got 'ignore'"):
        BrowserSessionsSensor(task_id="t", conn_id="c", missing="ignore")


def test_templated_values_wait_for_the_run():
    operator = ListBrowserSessionsOperator(
        task_id="t", conn_id="c", status="{{ params.status }}", fields="{{ params.fields }}", max_results="{{ n }}"
    )
    assert operator.status == "{{ params.status }}"
    sensor = BrowserSessionsSensor(
        task_id="s", conn_id="c", started_after="{{ data_interval_start }}", missing="{{ m }}"
    )
    assert sensor.missing == "{{ m }}"


def test_a_bad_date_raises_our_message_without_the_parser_error_chained():
    with pytest.raises(InvalidQueryError) as caught:
        parse_datetime("31/12/2025", name="started_after")
    assert "'started_after'" in str(caught.value)
    assert "'31/12/2025'" in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__  # `from None`: no "During handling..." traceback


def _init_params(cls) -> set[str]:
    return {name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "kwargs")}


def _documented_params(cls) -> set[str]:
    return set(re.findall(r":param (\w+):", cls.__doc__ or ""))


def test_the_operator_takes_every_filter_it_claims():
    params = _init_params(ListBrowserSessionsOperator)
    assert set(FILTER_NAMES) <= params
    assert set(FILTER_NAMES) <= set(ListBrowserSessionsOperator.template_fields)
    assert set(ListBrowserSessionsOperator.template_fields) <= params
    assert _documented_params(ListBrowserSessionsOperator) == params
    # build_query passes exactly these names: SessionQuery knows every one.
    SessionQuery.build(**dict.fromkeys(FILTER_NAMES))


def test_the_sensor_takes_every_filter_it_claims():
    params = _init_params(BrowserSessionsSensor)
    assert set(WAIT_FILTERS) <= set(FILTER_NAMES)
    assert set(WAIT_FILTERS) <= params
    # No keyword is a filter the sensor does not claim, and every running filter is one it claims.
    assert params & set(FILTER_NAMES) == set(WAIT_FILTERS)
    assert set(RUNNING_FILTERS) <= set(WAIT_FILTERS)
    assert set(BrowserSessionsSensor.template_fields) <= params
    assert _documented_params(BrowserSessionsSensor) == params


def test_the_summary_says_when_the_listing_was_cut():
    summary = SessionSummary()
    assert summary.to_dict()["truncated"] is False
    assert summary.to_dict()["server_total"] is None
    summary.note_walk(truncated=True, server_total=1234)
    assert summary.to_dict()["truncated"] is True
    assert summary.to_dict()["server_total"] == 1234


def test_context_is_added_once_and_keeps_the_error_class():
    error = ServerError(platform="Bright Data", method="GET", path="/x", status=503, message="down")
    error.add_context(conn_id="bd", host="api.example.com", hint=None)
    error.add_context(conn_id="other", host="elsewhere", hint="never shown")
    assert str(error) == "Bright Data API GET /x failed: HTTP 503: down. Connection 'bd', host api.example.com."
    assert error.retryable
    assert error.conn_id == "bd"


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("https://user:pass@api.example.com:8443/v1?token=abc#frag", "api.example.com:8443"),
        ("http://127.0.0.1:8790", "127.0.0.1:8790"),
        ("api.brightdata.com", "api.brightdata.com"),
        ("", "api.brightdata.com"),
    ],
)
def test_messages_show_only_the_base_urls_host(host, shown, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BD_HOST", f'{{"conn_type": "brightdata", "host": "{host}", "password": "k"}}')
    assert BrightDataBrowserHook(conn_id="bd_host").api_host() == shown
