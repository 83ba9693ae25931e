"""Cloudflare Browser Rendering devtools API on the wire: requests, and how a record becomes a session.

Reference: Cloudflare API "List sessions" (``GET /accounts/{account_id}/browser-rendering/devtools/session``)
and the official ``cloudflare`` Python SDK (``resources/browser_rendering/devtools``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from airflow_provider_browsersessions.exceptions import InvalidQueryError
from airflow_provider_browsersessions.platforms.base import (
    ApiRequest,
    OddValue,
    Page,
    Platform,
    RecordFields,
    ResponseShapeError,
    json_number,
    path_segment,
    plain_text,
    read_one_record,
    read_records,
    require_list,
    require_mapping,
    require_session_id,
)
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery, SessionStatus

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

# Close reasons that mean the session ended the ordinary way: the client closed it, or it idled out.
# The reference gives them as numeric codes; the SDK types closeReason as a string. Accept both.
_CLOSE_REASON_NAMES = {"1": "NormalClosure", "2": "BrowserIdle"}
_ORDINARY_ENDINGS = frozenset({"NormalClosure", "BrowserIdle"})


class CloudflarePlatform(Platform):
    """
    Cloudflare's devtools session endpoints: the list holds *active* sessions only, with no server filters.

    :param account_id: The account id in every path.
    """

    name: ClassVar[str] = "cloudflare"
    display_name: ClassVar[str] = "Cloudflare Browser Rendering"
    max_page_size: ClassVar[int] = 200
    lists_ended_sessions: ClassVar[bool] = False  # the list holds active sessions only
    # Cloudflare records carry no zone, URLs, captcha, bandwidth or error: these cannot be answered.
    unsupported_filters: ClassVar[frozenset[str]] = frozenset(
        {"api_name", "target_url", "end_url", "captcha", "min_bandwidth", "has_error"}
    )

    def __init__(self, *, account_id: str) -> None:
        self.account_id = account_id
        self._root = f"/accounts/{path_segment(account_id, parameter='account_id')}/browser-rendering"

    def console_url(self, *, session_id: str | None = None) -> str | None:
        """The Cloudflare dashboard's Browser Run page of this account (it has no page per session)."""
        return f"https://dash.cloudflare.com/{quote(self.account_id, safe='')}/workers/browser-rendering"

    def check_query(self, query: SessionQuery) -> None:
        """Also reject sorting by bandwidth, which Cloudflare does not report."""
        super().check_query(query)
        if query.sort == "bandwidth":
            raise InvalidQueryError("sort", "timestamp or duration on Cloudflare (it reports no bandwidth)")

    def pushed_filters(self, query: SessionQuery) -> frozenset[str]:
        """Nothing: the endpoint only pages (``limit``/``offset``)."""
        return frozenset()

    def list_request(self, query: SessionQuery, *, page_size: int) -> ApiRequest:
        """``GET .../devtools/session?limit=&offset=0``."""
        return ApiRequest("GET", f"{self._root}/devtools/session", (("limit", str(page_size)), ("offset", "0")))

    def parse_list_page(self, request: ApiRequest, payload: Any) -> Page:
        """Decode a bare array (or ``{"result": [...]}``); a short page is the last one."""
        records = require_list(_unwrap(payload), "the session list")
        params = dict(request.params)
        limit, offset = int(params["limit"]), int(params["offset"])
        next_request = None
        if len(records) >= limit:
            next_request = ApiRequest(
                request.method, request.path, (("limit", str(limit)), ("offset", str(offset + limit)))
            )
        sessions, odd_values, dropped = read_records(records, parse_session, id_key="sessionId")
        return Page(sessions=sessions, next_request=next_request, odd_values=odd_values, dropped=dropped)

    def get_request(self, session_id: str) -> ApiRequest:
        """``GET .../devtools/session/{id}``, the id quoted so it stays one path segment."""
        return ApiRequest("GET", f"{self._root}/devtools/session/{path_segment(session_id, parameter='session_id')}")

    def parse_session_body(self, payload: Any) -> BrowserSession | None:
        """A bare object or ``{"result": {...}}``; a JSON ``null`` means the session is unknown."""
        record = _unwrap(payload)
        if record is None:
            return None
        return read_one_record(self, record, parse_session)

    closes_sessions: ClassVar[bool] = True

    def close_request(self, session_id: str) -> ApiRequest:
        """``DELETE .../devtools/browser/{id}``: closes a session."""
        return ApiRequest("DELETE", f"{self._root}/devtools/browser/{path_segment(session_id, parameter='session_id')}")

    def parse_close_body(self, payload: Any) -> str:
        """``{"status": "closing" | "closed"}``, bare or enveloped; an answer without a status reads as closing."""
        answer = _unwrap(payload)
        status = answer.get("status") if isinstance(answer, Mapping) else None
        return plain_text(status) or "closing"


def _unwrap(payload: Any) -> Any:
    # Cloudflare's own tooling unwraps a {"result": ...} envelope defensively; so do we.
    if isinstance(payload, Mapping) and "result" in payload and "sessionId" not in payload:
        if payload.get("success") is False:
            raise ResponseShapeError(f"the envelope says success=false: {plain_text(payload.get('errors'))}")
        return payload["result"]
    return payload


def parse_session(record: Any, *, odd_values: list[OddValue] | None = None) -> BrowserSession:
    """
    Normalize one Cloudflare session record; only a record that is not an object or has no usable id fails.

    Running vs ended follows docs/platforms.md: no ``endTime`` and no close reason -> running; an
    ``endTime`` or a close reason -> ended, ``finished`` for NormalClosure/BrowserIdle, else ``failed``.
    A field that does not parse becomes None (``RecordFields``) and is added to ``odd_values``.

    :param odd_values: Collects the values kept in a safe form.
    :raises ResponseShapeError: for a record that is not an object or has no usable id.
    """
    data = require_mapping(record, "a session")
    session_id = require_session_id(data, "sessionId")
    fields = RecordFields(data, session_id, odd_values if odd_values is not None else [])
    started_at = fields.time("startTime", milliseconds=True)
    ended_at = fields.time("endTime", milliseconds=True)
    reason = _close_reason_name(fields)
    if ended_at is None and reason is None:
        status = SessionStatus.RUNNING
    elif reason is None or reason in _ORDINARY_ENDINGS:
        status = SessionStatus.FINISHED
    else:
        status = SessionStatus.FAILED
    duration = None
    if ended_at is not None and started_at is not None:
        duration = max(0.0, (ended_at - started_at).total_seconds())
    return BrowserSession(
        provider=CloudflarePlatform.name,
        session_id=session_id,
        status=status,
        started_at=started_at,
        ended_at=ended_at,
        duration=duration,
        error_message=reason if status is SessionStatus.FAILED else None,
        close_reason=reason,
        raw=data,
    )


def _close_reason_name(fields: RecordFields) -> str | None:
    """``closeReasonText``, else ``closeReason`` by name (a code or a name); None when there is none."""
    text = fields.text("closeReasonText")
    if text:
        return text
    value = fields.data.get("closeReason")
    if value is None or isinstance(value, str):
        return _CLOSE_REASON_NAMES.get(value, value) if value else None
    number = json_number(value)
    # An array, an object, a boolean, NaN: no reason at all. An int is always finite (and math.isfinite would
    # overflow on one of 400 digits).
    if number is None or (isinstance(number, float) and not math.isfinite(number)):
        fields.unread("closeReason", value)
        return None
    if number == 0:
        return None
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    return _CLOSE_REASON_NAMES.get(str(number), str(number))
