"""Bright Data Browser Sessions API on the wire: how a query becomes requests and a page becomes sessions.

Reference: Bright Data's "Browser Sessions API" 1.0.0 (``GET /browser_sessions``,
``GET /browser_sessions/{session_id}``); our notes are in ``docs/platforms.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pendulum import DateTime

from airflow_provider_browsersessions.platforms.base import (
    MAX_RECORD_COUNT,
    ApiRequest,
    OddValue,
    Page,
    Platform,
    RecordFields,
    ResponseShapeError,
    path_segment,
    plain_text,
    read_one_record,
    read_records,
    require_list,
    require_mapping,
    require_session_id,
    seconds_later,
)
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery, SessionStatus, utc_iso

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


class BrightDataPlatform(Platform):
    """Bright Data's list/read endpoints: every documented filter is pushed down; pages of 100."""

    name: ClassVar[str] = "brightdata"
    display_name: ClassVar[str] = "Bright Data"
    max_page_size: ClassVar[int] = 100
    # The API documents no rule for these matches (substring? domain?), so its answer is final.
    server_judged_filters: ClassVar[frozenset[str]] = frozenset({"target_url", "end_url"})

    def console_url(self, *, session_id: str | None = None) -> str | None:
        """Bright Data's control panel, where the Browser API zones are (it has no page per session)."""
        return "https://brightdata.com/cp/zones"

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
                value = utc_iso(value, whole_seconds=True)
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
        sessions, odd_values, dropped = read_records(records, parse_session, id_key="session_id")
        pagination = require_mapping(body.get("pagination"), "pagination")
        has_more = pagination.get("has_more")
        if not isinstance(has_more, bool):
            raise ResponseShapeError("pagination.has_more should be true or false")
        # Only a hint for reading ahead (``pages_after``): an odd count is ignored, never fatal.
        total = body.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total <= MAX_RECORD_COUNT:
            total = None
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
        return Page(sessions=sessions, next_request=next_request, total=total, odd_values=odd_values, dropped=dropped)

    def get_request(self, session_id: str) -> ApiRequest:
        """``GET /browser_sessions/{id}``, the id quoted so it stays one path segment."""
        return ApiRequest("GET", f"{LIST_PATH}/{path_segment(session_id, parameter='session_id')}")

    def parse_session_body(self, payload: Any) -> BrowserSession | None:
        """Unwrap ``{"session": {...}}``."""
        body = require_mapping(payload, "the session body")
        if "session" not in body:
            raise ResponseShapeError("the session body has no 'session' key")
        record = body["session"]
        if record is None:
            return None
        return read_one_record(self, record, parse_session)

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
    Normalize one Bright Data session record; only a record that is not an object or has no usable id fails.

    A status this provider does not know is kept as ``running`` (not ended: a wait never ends, and a
    gate never opens, on a value nobody here understands); any other field that does not parse becomes
    None (``RecordFields``). Both are added to ``odd_values`` for the caller to log (docs/platforms.md).

    :param odd_values: Collects the values kept in a safe form.
    :raises ResponseShapeError: for a record that is not an object or has no usable id.
    """
    data = require_mapping(record, "a session")
    session_id = require_session_id(data, "session_id")
    fields = RecordFields(data, session_id, odd_values if odd_values is not None else [])
    status_text = data.get("status")
    if isinstance(status_text, str) and status_text in _KNOWN_STATUSES:
        status = SessionStatus(status_text)
    else:
        status = SessionStatus.RUNNING
        fields.odd("status", status_text, "kept as running (not ended)")
    started = fields.time("timestamp", milliseconds=False)
    duration = fields.seconds("duration")
    ended_at = None
    if status.is_terminal() and started is not None and duration is not None:
        try:
            ended_at = seconds_later(started, duration)
        except OverflowError:
            fields.odd("duration", duration, "no end time (it would end after the year 9999)")
    error = data.get("error")
    error_code = error_message = None
    if isinstance(error, Mapping):
        error_code, error_message = plain_text(error.get("code")), plain_text(error.get("message"))
    else:
        error_message = plain_text(error)
    return BrowserSession(
        provider=BrightDataPlatform.name,
        session_id=session_id,
        status=status,
        started_at=started,
        ended_at=ended_at,
        duration=duration,
        api_name=fields.text("api_name"),
        target_url=fields.text("target_url"),
        end_url=fields.text("end_url"),
        navigations=fields.count("navigations"),
        captcha=fields.text("captcha"),
        bandwidth=fields.count("bandwidth"),
        error_code=error_code,
        error_message=error_message,
        raw=data,
    )
