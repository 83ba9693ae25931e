"""The common connection extras are one table: the hooks' parser, the form's fields and the errors read it."""

from __future__ import annotations

import math

import pytest

from airflow_provider_browsersessions import CONNECTION_TYPES
from airflow_provider_browsersessions.connection_extras import COMMON_EXTRAS, ConnectionExtra
from airflow_provider_browsersessions.paging import DEFAULT_PAGES_IN_FLIGHT
from airflow_provider_browsersessions.platforms.base import DEFAULT_MAX_PAGES
from airflow_provider_browsersessions.transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_REQUEST_DEADLINE,
    ClientSettings,
)


@pytest.mark.parametrize("entry", CONNECTION_TYPES, ids=lambda e: e["connection-type"])
def test_each_connection_forms_common_fields_are_the_tables(entry):
    fields = entry["conn-fields"]
    for name, extra in COMMON_EXTRAS.items():
        assert fields[name] == extra.conn_field()
        assert f"Default {extra.default_text}" in fields[name]["description"]


def test_the_run_time_defaults_are_the_tables():
    assert DEFAULT_MAX_RETRIES == COMMON_EXTRAS["max_retries"].default == 5
    assert DEFAULT_MAX_RETRY_WAIT == COMMON_EXTRAS["max_retry_wait"].default == 300
    assert DEFAULT_REQUEST_DEADLINE == COMMON_EXTRAS["request_deadline"].default == 60
    assert DEFAULT_MAX_RESPONSE_BYTES == COMMON_EXTRAS["max_response_bytes"].default == 32 * 1024 * 1024
    assert DEFAULT_MAX_PAGES == COMMON_EXTRAS["max_pages"].default == 2000
    assert DEFAULT_PAGES_IN_FLIGHT == COMMON_EXTRAS["pages_in_flight"].default == 4
    settings = ClientSettings(base_url="https://example.invalid", headers={})
    assert (settings.timeout, settings.connect_timeout) == (30, 10)
    assert (settings.timeout, settings.connect_timeout) == (
        COMMON_EXTRAS["timeout"].default,
        COMMON_EXTRAS["connect_timeout"].default,
    )


@pytest.mark.parametrize(
    ("name", "value", "parsed"),
    [
        ("timeout", "2.5", 2.5),
        ("timeout", 0, 0.0),
        ("timeout", "inf", math.inf),
        ("max_retries", "3", 3.0),
        ("max_retries", 3.0, 3.0),
        ("verify", "No", False),
        ("verify", True, True),
        ("pace", "1", True),
        ("max_pages", 1, 1.0),
        ("request_deadline", 0.1, 0.1),
    ],
)
def test_allowed_values_parse(name, value, parsed):
    assert COMMON_EXTRAS[name].parse(value) == parsed


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("timeout", -1, "a non-negative number"),
        ("timeout", "soon", "a non-negative number"),
        ("timeout", "nan", "a non-negative number"),
        ("timeout", True, "a non-negative number"),
        ("max_retries", 2.5, "a non-negative integer"),
        ("max_retries", "inf", "a non-negative integer"),
        ("verify", "maybe", "true or false"),
        ("verify", 1, "true or false"),
        ("request_deadline", 0, "a number above 0"),
        ("max_response_bytes", 0, "an integer above 0"),
        ("max_pages", 0, "a positive integer"),
        ("pages_in_flight", 0, "a positive integer"),
    ],
)
def test_refused_values_and_what_the_error_says_is_allowed(name, value, allowed):
    assert COMMON_EXTRAS[name].parse(value) is None
    assert COMMON_EXTRAS[name].allowed == allowed


def test_a_bound_other_than_zero_or_one_is_said_in_numbers():
    extra = ConnectionExtra(name="x", kind="number", default=5.0, minimum=2.5, label="X", help="X.")
    assert extra.allowed == "a number of at least 2.5"
    assert extra.parse(2) is None
    assert extra.parse(2.5) == 2.5
