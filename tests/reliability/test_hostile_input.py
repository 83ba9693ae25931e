"""Hostile session ids stay one quoted path segment; any filter value is either refused up front or accepted."""

from __future__ import annotations

import asyncio
import math
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_browsersessions.exceptions import BadRequestError, InvalidQueryError, NotFoundError
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.platforms.cloudflare import CloudflarePlatform
from airflow_provider_browsersessions.sessions import CAPTCHA_OUTCOMES, FILTER_NAMES, ORDERS, SORT_KEYS
from airflow_provider_browsersessions.testing import Emulator
from airflow_provider_browsersessions.transport import RetryPolicy

NO_RETRY = RetryPolicy(max_retries=0, max_wait=1.0)
# "." and ".." are refused before any request (test_poison_input.py): no client sends them as a segment.
HOSTILE_IDS = [
    "...",
    "../..",
    "../../browser_sessions",
    "a/../b",
    "x?status=all&limit=100",
    "a#fragment",
    "100%",
    "%2F",
    "..%2F..",
    "with space",
    "ünïcødé-会话",
    "semi;colon",
    "new\nline",
    "%2E%2E",
    "%00",
    "a\\..\\b",
    "..;",
    "/",
    "a/",
]
LONG = os.environ.get("BROWSERSESSIONS_LONG") == "1"
EXAMPLES = 400 if LONG else 60


@pytest.fixture
def emulator(browsersessions_connections):
    return browsersessions_connections.emulator


@pytest.mark.parametrize("session_id", HOSTILE_IDS)
def test_a_hostile_id_is_one_quoted_path_segment_on_both_platforms(emulator, session_id):
    brightdata = BrightDataBrowserHook(retry=NO_RETRY)
    cloudflare = CloudflareBrowserRenderingHook(retry=NO_RETRY)
    # Bright Data refuses ids outside its format with a 400; that is its answer, not a traversal.
    with pytest.raises(BadRequestError, match="HTTP 400: Invalid session_id format"):
        brightdata.get_session(session_id)
    assert cloudflare.get_session(session_id) is None  # unknown: a 404 from the session route itself

    async def the_same_through_httpx():  # the triggerer's transport builds its URLs with another library
        try:
            with pytest.raises(BadRequestError, match="HTTP 400: Invalid session_id format"):
                await brightdata.aget_session(session_id)
            assert await cloudflare.aget_session(session_id) is None
        finally:
            await brightdata.aclose()
            await cloudflare.aclose()

    asyncio.run(the_same_through_httpx())

    log = emulator.request_log()
    assert len(log) == 4
    for entry, prefix in zip(
        log,
        ["/browser_sessions/", "/client/v4/accounts/emulator-account/browser-rendering/devtools/session/"] * 2,
        strict=True,
    ):
        assert entry["path"].startswith(prefix)
        segment = entry["path"].removeprefix(prefix)
        assert "/" not in segment
        # The raw request line: exactly the quoted id, as both clients sent it (none decoded a dot back).
        assert segment == quote(session_id, safe="")
        assert unquote(segment) == session_id
        assert entry["status"] in (400, 404)  # the session route answered, not the list or another route
    assert all(entry["raw_query"] == "" for entry in log)  # nothing leaked into the query string


def test_a_hostile_id_to_close_is_quoted_too(emulator):
    with pytest.raises(NotFoundError, match="HTTP 404"):
        CloudflareBrowserRenderingHook(retry=NO_RETRY).close_session("../session")
    (entry,) = emulator.request_log()
    assert entry["method"] == "DELETE"
    assert entry["path"].endswith("/devtools/browser/..%2Fsession")


@pytest.mark.parametrize("session_id", ["", "   ", None, 42, ["a"]])
def test_an_empty_or_non_text_id_is_refused_before_any_request(emulator, session_id):
    with pytest.raises(InvalidQueryError, match="session_id"):
        BrightDataBrowserHook().get_session(session_id)
    assert emulator.request_count() == 0


# -- the filter model, property-based --------------------------------------------------------------

TEXT = st.text(min_size=0, max_size=30)
DATES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from([None, UTC])
)
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.lists(TEXT, max_size=3),
    DATES,
    st.dictionaries(TEXT, TEXT, max_size=2),
)


def valid_filters() -> st.SearchStrategy[dict]:
    statuses = st.lists(st.sampled_from(["running", "finished", "failed"]), min_size=1, max_size=3, unique=True)
    captchas = st.lists(st.sampled_from(CAPTCHA_OUTCOMES), min_size=1, max_size=4, unique=True)
    durations = st.floats(min_value=0, max_value=1e6, allow_nan=False)
    parts = {
        "status": st.one_of(st.sampled_from(["running", "finished", "failed"]), statuses, statuses.map(",".join)),
        "api_name": st.text(min_size=1, max_size=30).filter(str.strip),
        "started_after": st.one_of(DATES, DATES.map(lambda d: d.isoformat())),
        "target_url": st.text(min_size=1, max_size=40).filter(str.strip),
        "end_url": st.text(min_size=1, max_size=40).filter(str.strip),
        "has_error": st.booleans(),
        "captcha": captchas,
        "min_duration": durations,
        "min_bandwidth": st.integers(0, 10**12),
        "sort": st.sampled_from(SORT_KEYS),
        "order": st.sampled_from(ORDERS),
    }
    return st.fixed_dictionaries({}, optional=parts)


def requests_so_far(emulator) -> int:
    return emulator.request_count()


def wire(emulator, monkeypatch):
    for name, value in emulator.connection_env().items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("hook_class", [BrightDataBrowserHook, CloudflareBrowserRenderingHook])
def test_valid_filters_always_give_a_request_the_api_accepts(monkeypatch, hook_class):
    with Emulator(speed=0, sessions=50) as emulator:
        wire(emulator, monkeypatch)
        hook = hook_class(retry=NO_RETRY)
        cannot = CloudflarePlatform.unsupported_filters if hook_class is CloudflareBrowserRenderingHook else set()

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(filters=valid_filters(), span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
        def check(filters, span):
            filters = {name: value for name, value in filters.items() if name not in cannot}
            if cannot and filters.get("sort") == "bandwidth":
                del filters["sort"]  # Cloudflare reports no bandwidth: a documented refusal, tested elsewhere
            if "started_after" in filters:
                after = filters["started_after"]
                after = datetime.fromisoformat(after) if isinstance(after, str) else after
                filters["started_before"] = after + span
            planned = hook.client.plan_walk(**filters).next_request()
            before = requests_so_far(emulator)
            list(hook.iter_sessions(max_results=1, **filters))
            log = emulator.request_log()[before:]
            assert len(log) == 1
            assert log[0]["status"] == 200, (filters, log[0])
            # The server saw exactly the planned parameters, each once: no value broke out into another one.
            assert log[0]["query"] == {name: [value] for name, value in planned.params}
            for name in ("api_name", "target_url", "end_url"):
                if name in filters:
                    assert log[0]["query"][name] == [filters[name]]  # text arrives byte for byte

        check()


@pytest.mark.parametrize("hook_class", [BrightDataBrowserHook, CloudflareBrowserRenderingHook])
def test_any_value_of_any_filter_is_refused_up_front_or_accepted_by_the_api(monkeypatch, hook_class):
    with Emulator(speed=0) as emulator:
        wire(emulator, monkeypatch)
        hook = hook_class(retry=NO_RETRY)
        outcomes = {"refused": 0, "accepted": 0}

        @settings(max_examples=EXAMPLES * 2, deadline=None)
        @given(name=st.sampled_from(FILTER_NAMES), value=ANYTHING)
        def check(name, value):
            before = requests_so_far(emulator)
            try:
                list(hook.iter_sessions(max_results=1, **{name: value}))
            except InvalidQueryError as err:
                refused = err
            else:
                refused = None
            if refused is not None:
                outcomes["refused"] += 1
                assert (refused.parameter, repr(name) in str(refused)) == (name, True)
                assert requests_so_far(emulator) == before  # refused before any request
                return
            outcomes["accepted"] += 1
            (entry,) = emulator.request_log()[before:]
            assert entry["status"] == 200

        check()
        print(f"\n{hook_class.__name__}, any value of any filter: {outcomes}")
        assert outcomes["refused"] > 0
        assert outcomes["accepted"] > 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "done"),
        ("status", []),
        ("captcha", ["solved", "maybe"]),
        ("min_duration", -1),
        ("min_duration", math.nan),
        ("min_bandwidth", 1.5),
        ("started_after", "yesterday"),
        ("started_after", "2025-13-45T00:00:00Z"),
        ("has_error", "sometimes"),
        ("sort", "name"),
        ("order", "up"),
        ("api_name", "   "),
        ("zone", "x"),
    ],
)
def test_invalid_values_name_the_parameter_and_what_it_accepts(emulator, name, value):
    with pytest.raises(InvalidQueryError) as caught:
        BrightDataBrowserHook().list_sessions(**{name: value})
    assert caught.value.parameter == name
    assert str(caught.value).startswith(f"Invalid value for {name!r}: expected ")
    assert emulator.request_count() == 0
