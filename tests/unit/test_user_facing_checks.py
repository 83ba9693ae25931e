"""Checks before any run: literal values validated when built, clear messages, no chained tracebacks."""

from __future__ import annotations

import inspect
import re
from datetime import datetime

import pytest

from airflow_provider_browsersessions.exceptions import ErrorContext, InvalidQueryError, ServerError
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


def test_the_context_is_built_into_the_message_and_keeps_the_error_class():
    context = ErrorContext(conn_id="bd", host="api.example.com", fix=lambda error: None)
    error = ServerError(platform="Bright Data", method="GET", path="/x", status=503, message="down", context=context)
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


# -- switches, XCom controls and close batches ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), ("True", True), (" FALSE ", False)])
def test_a_switch_takes_a_bool_or_the_words_true_and_false(value, expected):
    from airflow_provider_browsersessions.sessions import parse_bool

    assert parse_bool("dry_run", value) is expected


@pytest.mark.parametrize("value", ["no", "yes", "0", "1", "", "{{ params.dry_run }}", None, 0, 1])
def test_a_switch_refuses_anything_else_naming_the_parameter(value):
    from airflow_provider_browsersessions.sessions import parse_bool

    with pytest.raises(InvalidQueryError, match=r"""'dry_run': expected True or False, or the text "true" or"""):
        parse_bool("dry_run", value)


def test_a_templated_dry_run_waits_for_the_run():
    from airflow_provider_browsersessions.operators.sessions import CloseBrowserSessionsOperator

    operator = CloseBrowserSessionsOperator(task_id="t", conn_id="c", session_ids=["a"], dry_run="{{ params.d }}")
    assert operator.is_dry_run == "{{ params.d }}"
    assert "is_dry_run" in operator.template_fields


def test_the_sensor_checks_its_xcom_controls_when_built():
    with pytest.raises(InvalidQueryError, match="'fields'"):
        BrowserSessionsSensor(task_id="t", conn_id="c", fields=["sesion_id"])
    with pytest.raises(InvalidQueryError, match="'max_xcom_bytes'"):
        BrowserSessionsSensor(task_id="t", conn_id="c", max_xcom_bytes=0)
    sensor = BrowserSessionsSensor(task_id="t", conn_id="c", fields="{{ f }}", max_xcom_bytes="{{ n }}")
    assert {"fields", "max_xcom_bytes"} <= set(sensor.template_fields)


def test_returned_records_are_projected_and_counted_as_the_json_xcom_stores():
    import json

    from airflow_provider_browsersessions.xcom import XComRecords

    returned = XComRecords(fields="session_id, status", max_xcom_bytes=None, what="The wait's")
    for record in (
        {"session_id": "a", "status": "finished", "duration": 3.0},
        {"session_id": "b", "status": "missing", "counted_as": "finished"},  # a wait's unknown id has no times
    ):
        returned.add(record)
    assert returned.records == [{"session_id": "a", "status": "finished"}, {"session_id": "b", "status": "missing"}]
    assert returned.size == len(json.dumps(returned.records).encode())


def test_returned_records_stop_at_max_xcom_bytes():
    from airflow_provider_browsersessions.exceptions import XComTooLargeError
    from airflow_provider_browsersessions.xcom import XComRecords

    returned = XComRecords(fields=None, max_xcom_bytes="60", what="The wait's")  # a rendered template's digits
    returned.add({"session_id": "a" * 20})
    with pytest.raises(XComTooLargeError, match=r"The wait's return value passed max_xcom_bytes=60 after 2 session"):
        returned.add({"session_id": "b" * 20})


def _closes(*outcomes):
    from airflow_provider_browsersessions.closing import CloseOutcome, SessionClose

    return [
        SessionClose(session_id=f"id-{i}", outcome=CloseOutcome(o), error=None if o == "closed" else f"why {i}")
        for i, o in enumerate(outcomes)
    ]


def test_a_batch_that_closed_everything_raises_nothing():
    from airflow_provider_browsersessions.closing import not_closed_error

    assert not_closed_error(_closes("closed", "not_found", "closed")) is None


def test_a_batch_only_refused_is_not_retried_and_names_the_refused_ids():
    from airflow_provider_browsersessions.closing import not_closed_error
    from airflow_provider_browsersessions.exceptions import SessionsRefusedError

    error = not_closed_error(_closes("closed", "refused", "refused"))
    assert isinstance(error, SessionsRefusedError)  # an AirflowFailException: the API would refuse them again
    assert str(error).startswith("2 of 3 session(s) were not closed; refused: id-1, id-2 (first: why 1).")


def test_a_batch_with_unanswered_ids_is_retried_and_names_each_group():
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_provider_browsersessions.closing import not_closed_error
    from airflow_provider_browsersessions.exceptions import SessionsNotClosedError

    error = not_closed_error(_closes("refused", "failed", "failed", "not_attempted"))
    assert isinstance(error, SessionsNotClosedError)
    assert not isinstance(error, AirflowFailException)  # a retry may get the answers this try did not
    assert "refused: id-0 (first: why 0); no usable answer: id-1, id-2 (first: why 1); not attempted: id-3" in str(
        error
    )


def test_a_batch_error_stays_short_whatever_the_ids():
    from airflow_provider_browsersessions.closing import CloseOutcome, SessionClose, not_closed_error
    from airflow_provider_browsersessions.exceptions import MAX_ERROR_MESSAGE_CHARS

    closes = [
        SessionClose(session_id="x" * 5000 + str(i), outcome=CloseOutcome.REFUSED, error="y" * 5000)
        for i in range(1000)
    ]
    message = str(not_closed_error(closes))
    assert len(message) <= MAX_ERROR_MESSAGE_CHARS
    assert message.startswith("1000 of 1000 session(s) were not closed; refused: ")
    assert len(closes[0].to_dict()["error"]) == 300
