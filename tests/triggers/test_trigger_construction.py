"""Poison kwargs: a trigger builds from whatever Airflow hands back, and only its own wait fails (item 3 of #29).

The triggerer rebuilds every trigger with ``cls(**kwargs)`` from what Airflow stored, and an exception there
(other than ``TypeError``) ends the whole triggerer process. The watcher's side is in ``test_event_trigger.py``.
"""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_browsersessions.compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_browsersessions.exceptions import InvalidQueryError
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

CLASSPATH = "airflow_provider_browsersessions.triggers.sessions.BrowserSessionsTrigger"
GOOD = {
    "conn_id": "brightdata_default",
    "session_ids": ["a"],
    "filters": {},
    "missing": "finished",
    "fail_on_failed": True,
    "poll_interval": 0.2,
    "end_time": None,
    "seen_running": [],
}


async def first_event(trigger: BrowserSessionsTrigger) -> dict:
    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(run(), 20)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"filters": None}, "'filters'"),
        ({"filters": "api_name=zone"}, "'filters'"),
        ({"filters": {"where": "lambda s: s.has_error"}}, "'where'"),  # what Airflow stores for a lambda
        ({"filters": {"started_after": "last tuesday"}}, "'started_after'"),
        ({"session_ids": 5}, "'session_ids'"),
        ({"session_ids": [1, 2]}, "'session_ids'"),
        ({"seen_running": 3}, "'seen_running'"),
        ({"poll_interval": "soon"}, "'poll_interval'"),
        ({"poll_interval": 0}, "'poll_interval'"),
        ({"poll_interval": None}, "'poll_interval'"),
        ({"end_time": "tomorrow"}, "'end_time'"),
        ({"end_time": float("nan")}, "'end_time'"),
        ({"missing": "sometimes"}, "'missing'"),
        ({"fail_on_failed": "yes"}, "'fail_on_failed'"),
        ({"conn_id": None}, "'conn_id'"),
    ],
)
def test_any_kwargs_build_and_the_problem_becomes_this_waits_error_event(changes, named):
    trigger = BrowserSessionsTrigger(**{**GOOD, **changes})  # never raises
    assert BrowserSessionsTrigger(**trigger.serialize()[1]).serialize() == trigger.serialize()
    assert repr(trigger)
    payload = asyncio.run(first_event(trigger))
    assert payload["status"] == "error"
    assert f"Invalid value for {named}" in payload["message"]
    assert payload["sessions"] == []


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="reads kwargs back through Airflow 3's trigger encoders")
def test_kwargs_as_airflow_stores_a_lambda_build_and_fail_only_their_wait():
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.serialization.encoders import encode_trigger

    kwargs = {**GOOD, "filters": {"where": lambda s: s.has_error}}
    stored = encode_trigger({"classpath": CLASSPATH, "kwargs": kwargs})["kwargs"]
    rebuilt = {name: smart_decode_trigger_kwargs(value) for name, value in stored.items()}
    assert isinstance(rebuilt["filters"]["where"], str)
    payload = asyncio.run(first_event(BrowserSessionsTrigger(**rebuilt)))
    assert payload["status"] == "error"
    assert "'where'" in payload["message"]


def test_a_callable_in_filters_is_refused_when_serialized_naming_it():
    trigger = BrowserSessionsTrigger(**{**GOOD, "filters": {"where": lambda s: True}})
    with pytest.raises(InvalidQueryError, match=r"'where' in BrowserSessionsTrigger\(filters=\.\.\.\)"):
        trigger.serialize()
    assert "where" in repr(trigger)  # a repr (which Airflow builds from serialize()) never raises
