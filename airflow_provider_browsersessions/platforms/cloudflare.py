"""Cloudflare Browser Rendering devtools API on the wire: requests, and how a record becomes a session.

Reference: Cloudflare API "List sessions" (``GET /accounts/{account_id}/browser-rendering/devtools/session``)
and the official ``cloudflare`` Python SDK (``resources/browser_rendering/devtools``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_browsersessions.exceptions import InvalidQueryError
from airflow_provider_browsersessions.platforms.base import (
    ApiRequest,
    Page,
    Platform,
    ResponseShapeError,
    optional,
    path_segment,
    quoted_value,
    require_list,
    require_mapping,
    require_session_id,
    utc_datetime,
)
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery, SessionStatus

if TYPE_CHECKING:
    from pendulum import DateTime

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
        self._root = f"/accounts/{path_segment(account_id)}/browser-rendering"

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
        return Page(sessions=[parse_session(record) for record in records], next_request=next_request)

    def get_request(self, session_id: str) -> ApiRequest:
        """``GET .../devtools/session/{id}``, the id quoted so it stays one path segment."""
        return ApiRequest("GET", f"{self._root}/devtools/session/{path_segment(session_id)}")

    def parse_session_body(self, payload: Any) -> BrowserSession | None:
        """A bare object or ``{"result": {...}}``; a JSON ``null`` means the session is unknown."""
        record = _unwrap(payload)
        return None if record is None else parse_session(record)

    closes_sessions: ClassVar[bool] = True

    def close_request(self, session_id: str) -> ApiRequest:
        """``DELETE .../devtools/browser/{id}``: closes a session."""
        return ApiRequest("DELETE", f"{self._root}/devtools/browser/{path_segment(session_id)}")

    def parse_close_body(self, payload: Any) -> str:
        """``{"status": "closing" | "closed"}``, bare or enveloped; an answer without a status reads as closing."""
        answer = _unwrap(payload)
        status = answer.get("status") if isinstance(answer, Mapping) else None
        return str(status or "closing")


def _unwrap(payload: Any) -> Any:
    # Cloudflare's own tooling unwraps a {"result": ...} envelope defensively; so do we.
    if isinstance(payload, Mapping) and "result" in payload and "sessionId" not in payload:
        if payload.get("success") is False:
            raise ResponseShapeError(f"the envelope says success=false: {quoted_value(payload.get('errors'))}")
        return payload["result"]
    return payload


def _epoch_ms(record: Mapping[str, Any], key: str, what: str) -> DateTime | None:
    value = optional(record, key, (int, float), what)
    # The reference's example sends 0 for every time: 0 means "not set", never 1970.
    if not value:
        return None
    try:
        return utc_datetime(datetime.fromtimestamp(value / 1000, UTC))
    except (ValueError, OverflowError, OSError):  # NaN, infinities, times outside the calendar
        raise ResponseShapeError(f"{what}.{key} is not a time: {value!r}") from None


def parse_session(record: Any) -> BrowserSession:
    """
    Normalize one Cloudflare session record.

    Running vs ended follows docs/platforms.md: no ``endTime`` and no close reason -> running; an
    ``endTime`` or a close reason -> ended, ``finished`` for NormalClosure/BrowserIdle, else ``failed``.
    """
    data = require_mapping(record, "a session")
    session_id = require_session_id(data, "sessionId")
    what = f"session {session_id!r}"
    started_at = _epoch_ms(data, "startTime", what)
    ended_at = _epoch_ms(data, "endTime", what)
    reason_value = optional(data, "closeReason", (str, int, float), what)
    reason_text = optional(data, "closeReasonText", str, what)
    reason = _close_reason_name(reason_value, reason_text)
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


def _close_reason_name(value: str | float | None, text: str | None) -> str | None:
    if text:
        return text
    if value is None or value == 0 or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _CLOSE_REASON_NAMES.get(str(value), str(value))
