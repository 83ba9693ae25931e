"""The provider-neutral model: ``BrowserSession``, ``SessionStatus`` and the ``SessionQuery`` filter model."""

from __future__ import annotations

import dataclasses
import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, overload

import pendulum
from pendulum import DateTime

from airflow_provider_browsersessions.exceptions import InvalidQueryError, cut_text

__all__ = [
    "CAPTCHA_OUTCOMES",
    "DOT_SEGMENTS",
    "FILTER_NAMES",
    "MAX_RAW_JSON_CHARS",
    "MAX_TEXT_CHARS",
    "ORDERS",
    "RECORD_FIELDS",
    "RUNNING_FILTERS",
    "SORT_KEYS",
    "USER_METADATA_FIELD",
    "BrowserSession",
    "SessionQuery",
    "SessionStatus",
    "check_path_value",
    "parse_bool",
]


class SessionStatus(StrEnum):
    """Where a browser session is in its life; ``finished`` and ``failed`` are terminal."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"

    def is_terminal(self) -> bool:
        """Return True once the session can no longer change."""
        return self is not SessionStatus.RUNNING


#: The values ``sort`` takes.
SORT_KEYS = ("timestamp", "duration", "bandwidth")
#: The values ``order`` takes.
ORDERS = ("asc", "desc")
#: The values ``captcha`` takes (Bright Data's CAPTCHA outcome of a session).
CAPTCHA_OUTCOMES = ("solved", "none", "failed", "detected")

# URL fields whose query strings can carry live-view or debugger tokens (Cloudflare devtools URLs).
_TOKEN_BEARING_FIELDS = ("devtoolsFrontendUrl", "webSocketDebuggerUrl")

#: Path segments that HTTP clients resolve as steps (``requests`` even decodes ``%2E%2E`` back to ``..``
#: before sending, so ``DELETE .../devtools/browser/..`` would reach another endpoint): never an id.
DOT_SEGMENTS = frozenset({".", ".."})


def check_path_value(value: str, *, parameter: str) -> str:
    """
    Refuse, before any request, a value that cannot be one path segment on every transport.

    :param value: A session or account id.
    :param parameter: The parameter's name, for the error.
    :raises InvalidQueryError: for ``.`` and ``..``, naming ``parameter``.
    """
    if value in DOT_SEGMENTS:
        raise InvalidQueryError(
            parameter,
            f"an id other than {value!r}: HTTP clients resolve '.' and '..' as path steps, so the request "
            "would reach another endpoint. Nothing was sent",
        )
    return value


#: The longest text a session keeps from the API (URLs, error messages, zone, close reason); longer text
#: is cut and ends with "…". Sessions go to XCom, logs and trigger events: a 50 MB error text from a
#: broken API must not become a 100 MB event.
MAX_TEXT_CHARS = 2048
#: The largest ``raw`` record ``to_dict(include_raw=True)`` puts in XCom, as JSON text; a larger one is
#: replaced by a note saying so (its strings are cut to ``MAX_TEXT_CHARS`` first).
MAX_RAW_JSON_CHARS = 16 * 1024
_CAPPED_FIELDS = ("api_name", "target_url", "end_url", "captcha", "error_code", "error_message", "close_reason")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BrowserSession:
    """
    One hosted browser session, the same shape for every platform.

    :param provider: ``"brightdata"`` or ``"cloudflare"``.
    :param session_id: The platform's session id.
    :param status: Running, finished or failed.
    :param started_at: Start time (UTC), when the platform reports one.
    :param ended_at: End time (UTC) once the session ended and the platform says when.
    :param duration: Seconds the session lasted, once it ended.
    :param api_name: Bright Data zone.
    :param target_url: First URL the session opened (Bright Data).
    :param end_url: Last URL the session was on (Bright Data).
    :param navigations: Number of navigations (Bright Data).
    :param captcha: Captcha outcome (Bright Data): solved, none, failed or detected.
    :param bandwidth: Billable bytes (Bright Data).
    :param error_code: Platform error code of a failed session.
    :param error_message: Platform error message (or Cloudflare close reason) of a failed session.
    :param close_reason: Cloudflare close reason as sent (a number or a name), as text.
    :param raw: The untouched API record. Never shown in ``repr``.
    """

    provider: str
    session_id: str
    status: SessionStatus
    started_at: DateTime | None = None
    ended_at: DateTime | None = None
    duration: float | None = None
    api_name: str | None = None
    target_url: str | None = None
    end_url: str | None = None
    navigations: int | None = None
    captcha: str | None = None
    bandwidth: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    close_reason: str | None = None
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in _CAPPED_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
                object.__setattr__(self, name, cut_text(value, MAX_TEXT_CHARS))

    @property
    def has_error(self) -> bool:
        """True when the platform reported an error for this session."""
        return self.status is SessionStatus.FAILED or self.error_code is not None

    def to_dict(self, *, include_raw: bool = False) -> dict[str, Any]:
        """
        Return a JSON-safe dict (ISO-8601 times): what goes to XCom.

        :param include_raw: Add the API record under ``raw``, with token-bearing URLs reduced to
            scheme, host and path, every string cut to ``MAX_TEXT_CHARS``, and the whole replaced by a
            note when its JSON is longer than ``MAX_RAW_JSON_CHARS``.
        """
        data = dict(zip(RECORD_FIELDS, _record_values(self), strict=True))
        data["status"] = self.status.value
        for name in _TIME_FIELDS:
            data[name] = utc_iso(data[name])
        if include_raw:
            data["raw"] = _raw_for_xcom(self.raw)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BrowserSession:
        """Rebuild a session from :meth:`to_dict` output (e.g. an upstream task's XCom)."""
        fields: dict[str, Any] = {name: data.get(name) for name in RECORD_FIELDS}
        fields.update(provider=str(data["provider"]), session_id=str(data["session_id"]))
        fields["status"] = SessionStatus(data["status"])
        for name in _TIME_FIELDS:
            fields[name] = parse_datetime(fields[name], name=name)
        return cls(**fields, raw=data.get("raw") or {})


#: The keys of a session record in XCom (``BrowserSession.to_dict()`` without ``raw``), in the model's order:
#: ``to_dict`` and ``from_dict`` both follow this one list.
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BrowserSession) if f.name != "raw")
# The record's times, ISO 8601 text in XCom; the other fields are JSON values as they are (status: its value).
_TIME_FIELDS = ("started_at", "ended_at")
# All the record's values in one call: as fast as spelling the fields out (to_dict runs once per listed session).
_record_values = operator.attrgetter(*RECORD_FIELDS)


def _raw_for_xcom(raw: Mapping[str, Any]) -> dict[str, Any]:
    record = {
        key: _cut_strings(_strip_url_secrets(value) if key in _TOKEN_BEARING_FIELDS else value)
        for key, value in raw.items()
    }
    size = len(json.dumps(record, default=str))
    if size > MAX_RAW_JSON_CHARS:
        return {"omitted": f"the API record is {size:,} characters of JSON, more than {MAX_RAW_JSON_CHARS:,}"}
    return record


def _cut_strings(value: Any) -> Any:
    if isinstance(value, str):
        return cut_text(value, MAX_TEXT_CHARS)
    if isinstance(value, Mapping):
        return {key: _cut_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut_strings(item) for item in value]
    return value


def _strip_url_secrets(value: Any) -> Any:
    if not isinstance(value, str) or ("?" not in value and "#" not in value):
        return value
    return value.split("?", 1)[0].split("#", 1)[0]


@overload
def utc_iso(value: DateTime, *, whole_seconds: bool = False) -> str: ...
@overload
def utc_iso(value: None, *, whole_seconds: bool = False) -> None: ...
def utc_iso(value: DateTime | None, *, whole_seconds: bool = False) -> str | None:
    """
    A time as ISO 8601 text in UTC ending in ``Z``, the one form this provider writes times in: XCom records,
    the view's JSON, messages and Bright Data's query parameters. None stays None.

    :param value: The time (any zone).
    :param whole_seconds: Leave out the fraction of a second (cut, not rounded): the form of Bright Data's
        documented example for its ``start_date``/``end_date`` parameters, ``2025-12-01T00:00:00Z``.
    """
    if value is None:
        return None
    return value.in_timezone("UTC").isoformat(timespec="seconds" if whole_seconds else "auto").replace("+00:00", "Z")


def parse_datetime(value: Any, *, name: str) -> DateTime | None:
    """
    Turn a datetime, an ISO-8601 string or None into a UTC pendulum ``DateTime``.

    Naive values are taken as UTC, as Airflow does. ``name`` is the parameter named in the error.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = pendulum.instance(value, tz="UTC")
    elif isinstance(value, str):
        try:
            parsed_any = pendulum.parse(value, tz="UTC")
        except (ValueError, TypeError):
            # pendulum's ParserError adds nothing the message does not say: no chained traceback.
            raise InvalidQueryError(
                name, f"an ISO-8601 date-time such as '2025-12-01T00:00:00Z', not {value!r}"
            ) from None
        if not isinstance(parsed_any, DateTime):
            raise InvalidQueryError(name, f"a date-time, not the {type(parsed_any).__name__} {value!r}")
        parsed = parsed_any
    else:
        raise InvalidQueryError(name, f"a datetime or an ISO-8601 string, not {type(value).__name__}")
    return parsed.in_timezone("UTC")


def _one_of(name: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value.lower() not in allowed:
        raise InvalidQueryError(name, f"one of {', '.join(allowed)}; got {value!r}")
    return value.lower()


def _set_of(name: str, value: Any, allowed: Iterable[str]) -> frozenset[str] | None:
    if value is None:
        return None
    # A rendered template gives text: "failed,finished" means both.
    items = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        raise InvalidQueryError(name, f"a value or a list of values, not {type(value).__name__}")
    chosen = frozenset(_one_of(name, item, allowed) for item in items)
    if not chosen:
        raise InvalidQueryError(name, "at least one value when given (omit it to accept all)")
    return chosen


def _number(name: str, value: Any, *, integer: bool = False) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):  # a rendered template
        try:
            value = float(value)
        except ValueError:
            raise InvalidQueryError(name, f"a non-negative number, not {value!r}") from None
    try:  # float() of an int of 400 digits overflows: not a number of seconds either
        finite = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:
        raise InvalidQueryError(name, f"a finite non-negative number, not {cut_text(repr(value), 100)}")
    if value < 0 or (integer and int(value) != value):
        kind = "integer" if integer else "number"
        raise InvalidQueryError(name, f"a non-negative {kind}, not {value!r}")
    return float(value)


#: The words a rendered template gives for a bool (``"{{ params.flag }}"`` renders ``True`` as "True").
_BOOL_WORDS = {"true": True, "false": False}


def _flag(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (*_BOOL_WORDS, ""):  # a rendered template
        return _BOOL_WORDS.get(value.strip().lower())
    raise InvalidQueryError(name, f"True, False or None, not {value!r}")


def parse_bool(name: str, value: Any) -> bool:
    """
    A switch that must be on or off: a bool, or the text ``"true"``/``"false"`` (any case) a template renders.

    Anything else ("no", "0", None, "") is refused: a switch that reads a typo as "off" (or "on") would
    silently do the other thing.

    :param name: The parameter named in the error.
    :param value: The value given.
    :raises InvalidQueryError: for any other value.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    raise InvalidQueryError(name, f'True or False, or the text "true" or "false" (any case), not {value!r}')


def _text(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidQueryError(name, f"a non-empty string, not {value!r}")
    return value


#: The filters that can describe a *running* session: its zone, its start and its user metadata. The others
#: (URLs, durations, bandwidth, captcha, error) are unknown until a session ends (a running Bright Data session's
#: ``target_url`` and ``end_url`` are null), so a walk of running sessions filtered by them matches
#: nothing. Waits walk running sessions with these only; a drain refuses the others (``WaitPlan``), and the
#: event trigger judges ended sessions by them.
RUNNING_FILTERS = ("api_name", "started_after", "started_before", "metadata")

#: The filter names a DAG author can use, in one place: hooks, operators, sensors and triggers accept these.
FILTER_NAMES = (
    "status",
    "api_name",
    "started_after",
    "started_before",
    "target_url",
    "end_url",
    "has_error",
    "captcha",
    "min_duration",
    "max_duration",
    "min_bandwidth",
    "metadata",
    "sort",
    "order",
)

#: The raw record's field that holds a session's user metadata (Browserbase ``userMetadata``), which the
#: ``metadata`` filter matches.
USER_METADATA_FIELD = "userMetadata"
#: The longest key or value a ``metadata`` filter may name, and its deepest nesting: Browserbase keeps under
#: 512 characters of metadata JSON per session, so anything longer can match nothing.
_MAX_METADATA_CHARS = 512
_MAX_METADATA_DEPTH = 8

#: One ``metadata`` condition: the path of keys, and the text the value must equal.
MetadataCondition = tuple[tuple[str, ...], str]


def is_literal(value: Any) -> bool:
    """
    Whether a DAG author wrote this value as is: no Jinja template, no ``XComArg`` or other deferred value.

    Only literal values can be checked when a DAG file is parsed; the rest are known when the task runs.
    """
    if value is None or isinstance(value, bool | int | float | datetime):
        return True
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    if isinstance(value, list | tuple | set | frozenset):
        return all(is_literal(item) for item in value)
    if isinstance(value, Mapping):  # a ``metadata`` filter: {"airflow_run_id": "{{ run_id }}"}
        return all(is_literal(item) for item in value.values())
    return False


def check_literal_filters(filters: Mapping[str, Any]) -> None:
    """
    Validate the literal filter values an operator or sensor was given, when the DAG file is parsed.

    A typo such as ``status="faild"`` then shows as an import error of the DAG file instead of a failed
    run. Templated values (and ``XComArg`` values) are skipped here and validated when the task runs.

    :param filters: Filter values by name (see ``FILTER_NAMES``).
    :raises InvalidQueryError: naming the parameter and what it allows.
    """
    SessionQuery.build(**{name: value for name, value in filters.items() if is_literal(value)})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionQuery:
    """
    Which sessions to list: one declarative filter set, the same for every platform.

    Build it with :meth:`build`, which validates every value before any request is sent. Each
    platform pushes the filters its API understands down to the server and the rest are applied
    to the normalized sessions by :meth:`matches`.

    :param status: Accept only these statuses.
    :param api_name: Bright Data zone name.
    :param started_after: Sessions that started at or after this time (inclusive).
    :param started_before: Sessions that started at or before this time (inclusive).
    :param target_url: Bright Data target URL filter (server-side match).
    :param end_url: Bright Data end URL filter (server-side match).
    :param has_error: True for sessions with an error, False for those without.
    :param captcha: Accept only these captcha outcomes.
    :param min_duration: Minimum duration in seconds (sessions without a duration never match).
    :param max_duration: Maximum duration in seconds (sessions without a duration never match).
    :param min_bandwidth: Minimum billable bytes.
    :param metadata: User metadata the session was created with (Browserbase), as conditions: each path of
        keys and the text its value must equal. ``build`` takes a dict, nested dicts for nested keys.
    :param sort: ``timestamp``, ``duration`` or ``bandwidth``.
    :param order: ``asc`` or ``desc``.
    :param where: Any further predicate on a ``BrowserSession`` (never serialized).
    """

    status: frozenset[SessionStatus] | None = None
    api_name: str | None = None
    started_after: DateTime | None = None
    started_before: DateTime | None = None
    target_url: str | None = None
    end_url: str | None = None
    has_error: bool | None = None
    captcha: frozenset[str] | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    min_bandwidth: int | None = None
    metadata: tuple[MetadataCondition, ...] | None = None
    sort: Literal["timestamp", "duration", "bandwidth"] | None = None
    order: Literal["asc", "desc"] | None = None
    where: Callable[[BrowserSession], bool] | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def build(cls, **filters: Any) -> SessionQuery:
        """
        Validate and normalize filters given by name (see ``FILTER_NAMES``, plus ``where``).

        :raises InvalidQueryError: naming the parameter and what it allows.
        """
        unknown = sorted(set(filters) - set(FILTER_NAMES) - {"where"})
        if unknown:
            raise InvalidQueryError(unknown[0], f"a known filter: {', '.join(FILTER_NAMES)}, where")
        statuses = _set_of("status", filters.get("status"), [s.value for s in SessionStatus])
        started_after = parse_datetime(filters.get("started_after"), name="started_after")
        started_before = parse_datetime(filters.get("started_before"), name="started_before")
        if started_after and started_before and started_after > started_before:
            raise InvalidQueryError(
                "started_after", f"a time not later than started_before ({utc_iso(started_before)})"
            )
        has_error = _flag("has_error", filters.get("has_error"))
        min_duration = _number("min_duration", filters.get("min_duration"))
        max_duration = _number("max_duration", filters.get("max_duration"))
        if min_duration is not None and max_duration is not None and min_duration > max_duration:
            raise InvalidQueryError("min_duration", f"a value not above max_duration ({max_duration})")
        min_bandwidth = _number("min_bandwidth", filters.get("min_bandwidth"), integer=True)
        sort = filters.get("sort")
        order = filters.get("order")
        where = filters.get("where")
        if where is not None and not callable(where):
            raise InvalidQueryError("where", f"a callable taking a BrowserSession, not {where!r}")
        return cls(
            status=frozenset(SessionStatus(s) for s in statuses) if statuses else None,
            api_name=_text("api_name", filters.get("api_name")),
            started_after=started_after,
            started_before=started_before,
            target_url=_text("target_url", filters.get("target_url")),
            end_url=_text("end_url", filters.get("end_url")),
            has_error=has_error,
            captcha=_set_of("captcha", filters.get("captcha"), CAPTCHA_OUTCOMES),
            min_duration=min_duration,
            max_duration=max_duration,
            min_bandwidth=None if min_bandwidth is None else int(min_bandwidth),
            metadata=_metadata_conditions(filters.get("metadata")),
            sort=None if sort is None else _one_of("sort", sort, SORT_KEYS),  # type: ignore[arg-type]
            order=None if order is None else _one_of("order", order, ORDERS),  # type: ignore[arg-type]
            where=where,
        )

    @classmethod
    def build_or_take(cls, query: SessionQuery | None, filters: Mapping[str, Any]) -> SessionQuery:
        """
        A ready query, or filters by name validated by :meth:`build`, never both: what the listing calls take.

        :param query: A ready query, or None.
        :param filters: Filters by name (see ``FILTER_NAMES``, plus ``where``).
        :raises InvalidQueryError: for both at once, or a value that is not allowed.
        """
        if query is not None and filters:
            raise InvalidQueryError("query", "either a SessionQuery or filters by name, not both")
        return query if query is not None else cls.build(**filters)

    @classmethod
    def build_running(cls, *, now: datetime | None = None, **filters: Any) -> SessionQuery:
        """
        The running sessions matching ``filters``, ``min_duration`` read as "running at least this long".

        A running session's duration is not known until it ends, so ``min_duration`` becomes a start bound
        (the earlier of it and ``started_before``): what the close operator chooses by.

        :param now: The time ``min_duration`` counts back from (default: now).
        :param filters: Filters by name (see ``FILTER_NAMES``); ``status`` is ``running``.
        """
        min_duration = cls.build(min_duration=filters.pop("min_duration", None)).min_duration
        query = cls.build(status="running", **filters)
        if min_duration is not None:
            latest_start = pendulum.instance(now or pendulum.now("UTC")).subtract(seconds=min_duration)
            if query.started_before is None or latest_start < query.started_before:
                query = cls.build(**{**filters, "started_before": latest_start}, status="running")
        return query

    def active_filters(self) -> frozenset[str]:
        """Names of the filters that are set (``sort``/``order`` included, ``where`` as ``where``)."""
        names = {name for name in FILTER_NAMES if getattr(self, name) is not None}
        if self.where is not None:
            names.add("where")
        return frozenset(names)

    def replace(self, **changes: Any) -> SessionQuery:
        """Return a copy with some filters replaced (validated like :meth:`build`)."""
        current = self.to_dict()
        current.update(changes)
        where = changes.get("where", self.where)
        current.pop("where", None)
        return SessionQuery.build(**current, where=where)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form of the serializable filters (``where`` is left out); None values omitted."""
        data: dict[str, Any] = {}
        for name in FILTER_NAMES:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, frozenset):
                value = sorted(str(v) for v in value)
            elif isinstance(value, DateTime):
                value = utc_iso(value)
            elif name == "metadata":
                value = metadata_dict(self.metadata or ())
            data[name] = value
        return data

    def matches(self, session: BrowserSession, *, skip: Iterable[str] = ()) -> bool:
        """
        Return True when the session passes every filter not named in ``skip``.

        ``skip`` holds the filters the server already applied: their match rules are the API's
        (e.g. Bright Data's ``target_url`` match is undocumented), so they are not re-judged here.
        """
        to_check = self.active_filters() - frozenset(skip) - {"sort", "order"}
        return all(_CHECKS[name](self, session) for name in to_check)


def _in_time_window(query: SessionQuery, session: BrowserSession) -> bool:
    if session.started_at is None:
        return False
    if query.started_after is not None and session.started_at < query.started_after:
        return False
    return not (query.started_before is not None and session.started_at > query.started_before)


_CHECKS: dict[str, Callable[[SessionQuery, BrowserSession], bool]] = {
    "status": lambda q, s: s.status in (q.status or ()),
    "api_name": lambda q, s: s.api_name == q.api_name,
    "started_after": _in_time_window,
    "started_before": _in_time_window,
    "target_url": lambda q, s: bool(s.target_url) and str(q.target_url).lower() in str(s.target_url).lower(),
    "end_url": lambda q, s: bool(s.end_url) and str(q.end_url).lower() in str(s.end_url).lower(),
    "has_error": lambda q, s: s.has_error == q.has_error,
    "captcha": lambda q, s: s.captcha in (q.captcha or ()),
    "min_duration": lambda q, s: s.duration is not None and s.duration >= (q.min_duration or 0),
    "max_duration": lambda q, s: s.duration is not None and s.duration <= (q.max_duration or 0),
    "min_bandwidth": lambda q, s: s.bandwidth is not None and s.bandwidth >= (q.min_bandwidth or 0),
    "metadata": lambda q, s: all(
        _value_at(s.raw.get(USER_METADATA_FIELD), path) == value for path, value in q.metadata or ()
    ),
    "where": lambda q, s: bool(q.where(s)) if q.where else True,
}


def _value_at(metadata: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(metadata, Mapping):
            return None
        metadata = metadata.get(key)
    return metadata


def _metadata_conditions(value: Any) -> tuple[MetadataCondition, ...] | None:
    """
    A ``metadata`` filter (a dict, nested dicts for nested keys, or its JSON text) as sorted conditions.

    Values are text (the API compares strings only); keys and values may not hold a single quote, which the
    API's query syntax (``user_metadata['key']:'value'``) documents no way to escape.
    """
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):  # a rendered template
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidQueryError("metadata", f"a dict such as {{'airflow_run_id': '...'}}, not {value!r}") from None
    conditions: list[MetadataCondition] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, Mapping) or not node:
            raise InvalidQueryError("metadata", f"a non-empty dict of text values, not {cut_text(repr(node), 80)}")
        if len(path) >= _MAX_METADATA_DEPTH:
            raise InvalidQueryError("metadata", f"keys nested at most {_MAX_METADATA_DEPTH} deep")
        for key, item in node.items():
            if not isinstance(key, str) or not key or "'" in key or len(key) > _MAX_METADATA_CHARS:
                raise InvalidQueryError(
                    "metadata", f"keys of text without a single quote, up to {_MAX_METADATA_CHARS} characters"
                )
            if isinstance(item, Mapping):
                walk(item, (*path, key))
            elif isinstance(item, str) and "'" not in item and len(item) <= _MAX_METADATA_CHARS:
                conditions.append(((*path, key), item))
            else:
                raise InvalidQueryError(
                    "metadata",
                    f"text values without a single quote, up to {_MAX_METADATA_CHARS} characters (the API compares "
                    f"strings only), not {cut_text(repr(item), 80)} under {key!r}",
                )

    walk(value, ())
    return tuple(sorted(conditions))


def metadata_dict(conditions: Iterable[MetadataCondition]) -> dict[str, Any]:
    """The ``metadata`` filter's conditions as the nested dict a DAG author writes."""
    result: dict[str, Any] = {}
    for path, value in conditions:
        node = result
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return result


def sort_sessions(sessions: Iterable[BrowserSession], *, sort: str, order: str) -> list[BrowserSession]:
    """Sort normalized sessions the way Bright Data's API does: missing values last, ties by id."""
    key_of: dict[str, Callable[[BrowserSession], Any]] = {
        "timestamp": lambda s: s.started_at,
        "duration": lambda s: s.duration,
        "bandwidth": lambda s: s.bandwidth,
    }
    value = key_of[sort]
    items = list(sessions)
    present = sorted(
        (s for s in items if value(s) is not None),
        key=lambda s: (value(s), s.session_id),
        reverse=(order == "desc"),
    )
    absent = sorted((s for s in items if value(s) is None), key=lambda s: s.session_id)
    return present + absent
