"""Bright Data Browser Sessions API on the wire: how a query becomes requests and a page becomes sessions.

Reference: Bright Data's "Browser Sessions API" 1.0.0 (``GET /browser_sessions``,
``GET /browser_sessions/{session_id}``); our notes are in ``docs/platforms.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pendulum
from pendulum import DateTime

from airflow_provider_browsersessions.platforms.base import (
    ApiRequest,
    OddValue,
    Page,
    Platform,
    ResponseShapeError,
    logger,
    optional,
    path_segment,
    quoted_value,
    require_list,
    require_mapping,
    require_session_id,
    utc_datetime,
)
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery, SessionStatus

LIST_PATH = "/browser_sessions"
DEFAULT_BASE_URL = "https://api.brightdata.com"

# The query parameter each pushed-down filter becomes.
_PARAMETER_OF = {
    "status": "status",
    "api_name": "api_name",
    "started_after": "start_date",
    "started_before": "end_date",
    "target_url": "target_url",
    "end_url": "end_url",
    "sort": "sort",
    "order": "order",
}


def _utc_iso(value: DateTime) -> str:
    return value.in_timezone("UTC").format("YYYY-MM-DDTHH:mm:ss") + "Z"


class BrightDataPlatform(Platform):
    """Bright Data's list/read endpoints: every documented filter is pushed down; pages of 100."""

    name: ClassVar[str] = "brightdata"
    display_name: ClassVar[str] = "Bright Data"
    max_page_size: ClassVar[int] = 100
    # The API documents no rule for these matches (substring? domain?), so its answer is final.
    server_judged_filters: ClassVar[frozenset[str]] = frozenset({"target_url", "end_url"})

    def pushed_filters(self, query: SessionQuery) -> frozenset[str]:
        """Every filter the API has a parameter for; ``status`` only when it names one status."""
        pushed = {name for name in _PARAMETER_OF if getattr(query, name) is not None}
        if query.status is not None and len(query.status) != 1:
            # The API takes one status (or "all"): several are filtered here instead.
            pushed.discard("status")
        return frozenset(pushed)

    def lists_newest_first(self, query: SessionQuery) -> bool:
        """The API's default order (and ``sort=timestamp``, ``order=desc``) is by start time, newest first."""
        return query.sort in (None, "timestamp") and query.order in (None, "desc")

    def list_request(self, query: SessionQuery, *, page_size: int) -> ApiRequest:
        """``GET /browser_sessions`` with the pushed-down filters, from offset 0."""
        params: list[tuple[str, str]] = []
        for name in sorted(self.pushed_filters(query)):
            value = getattr(query, name)
            if isinstance(value, frozenset):
                (value,) = value
            if isinstance(value, DateTime):
                value = _utc_iso(value)
            params.append((_PARAMETER_OF[name], str(value)))
        params += [("limit", str(page_size)), ("offset", "0")]
        return ApiRequest("GET", LIST_PATH, tuple(params))

    def pages_after(self, request: ApiRequest, *, total: int | None) -> Iterator[ApiRequest]:
        """The pages at ``offset + k * limit`` below the server's ``total``: each answers ``has_more`` for the next."""
        if total is None:
            return
        params = dict(request.params)
        limit, offset = int(params["limit"]), int(params["offset"])
        while (offset := offset + limit) < total:
            yield ApiRequest(
                request.method, request.path, tuple((k, str(offset) if k == "offset" else v) for k, v in request.params)
            )

    def parse_list_page(self, request: ApiRequest, payload: Any) -> Page:
        """Decode ``{"sessions", "count", "total", "pagination": {"has_more", "next_offset"}}``."""
        body = require_mapping(payload, "the list body")
        records = require_list(body.get("sessions"), "sessions")
        odd_values: list[OddValue] = []
        sessions = [parse_session(record, odd_values=odd_values) for record in records]
        pagination = require_mapping(body.get("pagination"), "pagination")
        has_more = pagination.get("has_more")
        if not isinstance(has_more, bool):
            raise ResponseShapeError("pagination.has_more should be true or false")
        total = optional(body, "total", int, "the list body")
        next_request = None
        if has_more:
            next_offset = pagination.get("next_offset")
            if isinstance(next_offset, bool) or not isinstance(next_offset, int) or next_offset < 0:
                raise ResponseShapeError("pagination.next_offset should be an offset when has_more is true")
            current = dict(request.params).get("offset", "0")
            if not records or next_offset <= int(current):
                # A server that keeps answering the same offset would otherwise be paged forever.
                raise ResponseShapeError(f"pagination does not advance (offset {current} -> {next_offset})")
            params = tuple((k, str(next_offset) if k == "offset" else v) for k, v in request.params)
            next_request = ApiRequest(request.method, request.path, params)
        return Page(sessions=sessions, next_request=next_request, total=total, odd_values=odd_values)

    def get_request(self, session_id: str) -> ApiRequest:
        """``GET /browser_sessions/{id}``, the id quoted so it stays one path segment."""
        return ApiRequest("GET", f"{LIST_PATH}/{path_segment(session_id)}")

    def parse_session_body(self, payload: Any) -> BrowserSession | None:
        """Unwrap ``{"session": {...}}``."""
        body = require_mapping(payload, "the session body")
        if "session" not in body:
            raise ResponseShapeError("the session body has no 'session' key")
        record = body["session"]
        if record is None:
            return None
        odd_values: list[OddValue] = []
        session = parse_session(record, odd_values=odd_values)
        for odd in odd_values:
            logger.warning("%s: %s", self.display_name, odd.describe())
        return session

    def error_reason(self, headers: Mapping[str, str]) -> str | None:
        """
        The ``x-brd-err-msg`` / ``x-brd-error`` / ``x-brd-error-code`` headers: Bright Data's 429 (and its
        proxies' errors) carry the reason there, often with an empty body.
        """
        parts = [f"{name}: {headers[name]}" for name in _REASON_HEADERS if headers.get(name)]
        return "; ".join(parts) or None


# Where Bright Data puts an error's reason when the body has none (shared/api notes), most specific first.
_REASON_HEADERS = ("x-brd-err-msg", "x-brd-error", "x-brd-error-code")
_KNOWN_STATUSES = frozenset(status.value for status in SessionStatus)


def parse_session(record: Any, *, odd_values: list[OddValue] | None = None) -> BrowserSession:
    """
    Normalize one Bright Data session record.

    A status this provider does not know is kept as ``running`` (not ended: a wait never ends, and a
    gate never opens, on a value nobody here understands) and a ``bandwidth`` that is not a whole number
    becomes None; both are added to ``odd_values`` for the caller to log (docs/platforms.md). A record
    that is not an object or has no id still fails the page.

    :param odd_values: Collects the values kept in a safe form.
    """
    data = require_mapping(record, "a session")
    session_id = require_session_id(data, "session_id")
    what = f"session {session_id!r}"
    odd = odd_values if odd_values is not None else []
    status_text = data.get("status")
    if isinstance(status_text, str) and status_text in _KNOWN_STATUSES:
        status = SessionStatus(status_text)
    else:
        status = SessionStatus.RUNNING
        odd.append(OddValue(session_id, "status", quoted_value(status_text), "kept as running (not ended)"))
    bandwidth = data.get("bandwidth")
    if isinstance(bandwidth, float) and bandwidth.is_integer():
        bandwidth = int(bandwidth)
    elif bandwidth is not None and (isinstance(bandwidth, bool) or not isinstance(bandwidth, int)):
        odd.append(OddValue(session_id, "bandwidth", quoted_value(bandwidth), "kept as no bandwidth (None)"))
        bandwidth = None
    started = _parse_time(data.get("timestamp"), what)
    duration = optional(data, "duration", (int, float), what)
    if duration is not None and not math.isfinite(duration):
        # Python's JSON reader accepts NaN and Infinity; no duration is either.
        raise ResponseShapeError(f"{what} has a duration that is not a finite number: {duration!r}")
    ended_at = None
    if status.is_terminal() and started is not None and duration is not None:
        # Arithmetic on the plain datetime: pendulum's own addition costs ten times as much per session.
        try:
            ended_at = utc_datetime(started + timedelta(seconds=duration))
        except OverflowError:
            raise ResponseShapeError(f"{what} ends outside the calendar (duration {duration!r})") from None
    error = data.get("error")
    error_code = error_message = None
    if isinstance(error, Mapping):
        error_code = None if error.get("code") is None else str(error.get("code"))
        error_message = None if error.get("message") is None else str(error.get("message"))
    elif error is not None:
        error_message = str(error)
    return BrowserSession(
        provider=BrightDataPlatform.name,
        session_id=session_id,
        status=status,
        started_at=None if started is None else utc_datetime(started),
        ended_at=ended_at,
        duration=None if duration is None else float(duration),
        api_name=optional(data, "api_name", str, what),
        target_url=optional(data, "target_url", str, what),
        end_url=optional(data, "end_url", str, what),
        navigations=optional(data, "navigations", int, what),
        captcha=optional(data, "captcha", str, what),
        bandwidth=bandwidth,
        error_code=error_code,
        error_message=error_message,
        raw=data,
    )


def _parse_time(value: Any, what: str) -> datetime | None:
    """The API's start timestamp as an aware datetime (UTC assumed when it names no zone)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ResponseShapeError(f"{what} has a non-text timestamp")
    try:
        # The API's form ("2025-12-01T10:00:00Z") is what fromisoformat reads, fast; pendulum takes the rest.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            other = pendulum.parse(value, tz="UTC")
        except (ValueError, TypeError):
            raise ResponseShapeError(f"{what} has an unreadable timestamp {quoted_value(value)}") from None
        if not isinstance(other, DateTime):
            raise ResponseShapeError(f"{what} has a timestamp that is not a date-time: {quoted_value(value)}") from None
        parsed = other
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
