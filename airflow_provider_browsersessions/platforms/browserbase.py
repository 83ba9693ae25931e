"""Browserbase's Sessions API on the wire: how a query becomes requests and an answer becomes sessions.

Reference: Browserbase's API reference (``GET /v1/sessions``, ``GET /v1/sessions/{id}``,
``POST /v1/sessions/{id}``) and its official Python SDK ``browserbase``; our notes are in ``docs/platforms.md``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from airflow_provider_browsersessions.platforms.base import (
    ApiRequest,
    OddValue,
    Page,
    Platform,
    RecordFields,
    path_segment,
    read_one_record,
    read_records,
    require_list,
    require_mapping,
    require_session_id,
)
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery, SessionStatus

LIST_PATH = "/v1/sessions"
DEFAULT_BASE_URL = "https://api.browserbase.com"

#: The wire statuses behind each neutral one, in the order a listing asks for them (one per request).
WIRE_STATUSES: dict[SessionStatus, tuple[str, ...]] = {
    SessionStatus.RUNNING: ("PENDING", "RUNNING"),
    SessionStatus.FINISHED: ("COMPLETED",),
    SessionStatus.FAILED: ("ERROR", "TIMED_OUT"),
}
_NEUTRAL_OF = {wire: status for status, wires in WIRE_STATUSES.items() for wire in wires}
#: The fields of a read that let whoever holds them drive the live browser: never kept, logged or shown.
LIVE_BROWSER_FIELDS = frozenset({"connectUrl", "seleniumRemoteUrl", "signingKey"})
_RELEASE_BODY = json.dumps({"status": "REQUEST_RELEASE"}).encode()


@dataclasses.dataclass(frozen=True, slots=True)
class _ListRequest(ApiRequest):
    """A list request that knows which wire statuses the listing asks for after it (never sent)."""

    later_statuses: tuple[str, ...] = ()


#: The Browserbase dashboard's sessions list; ``/<id>`` is one session's Session Inspector.
_DASHBOARD_SESSIONS = "https://www.browserbase.com/sessions"


class BrowserbasePlatform(Platform):
    """
    Browserbase's sessions list: one bare array per request, all that match, filtered by one status and by
    user metadata on the server; a status that stands for several wire statuses is one request each.
    """

    name: ClassVar[str] = "browserbase"
    display_name: ClassVar[str] = "Browserbase"

    def console_url(self, *, session_id: str | None = None) -> str | None:
        """
        The dashboard's Session Inspector of ``session_id`` (its replay, logs and metadata), else its sessions list.

        Both addresses are the ones Browserbase documents (docs.browserbase.com, "Session Inspector"); the page
        needs the user's own Browserbase login, so it reveals nothing to someone who has only the link.
        """
        if session_id:
            return f"{_DASHBOARD_SESSIONS}/{quote(session_id, safe='')}"
        return _DASHBOARD_SESSIONS

    #: Nominal: the list does not page, one answer holds every match (bounded by the response size cap).
    max_page_size: ClassVar[int] = 1000
    # Its records carry no zone, URLs or captcha outcome: these cannot be answered.
    unsupported_filters: ClassVar[frozenset[str]] = frozenset({"api_name", "target_url", "end_url", "captcha"})

    def pushed_filters(self, query: SessionQuery) -> frozenset[str]:
        """``status`` (unless it accepts every status) and ``metadata`` (its first condition is sent as ``q``)."""
        pushed = set()
        if query.status is not None and len(query.status) < len(WIRE_STATUSES):
            pushed.add("status")
        if query.metadata:
            pushed.add("metadata")
        return frozenset(pushed)

    def list_request(self, query: SessionQuery, *, page_size: int) -> ApiRequest:
        """``GET /v1/sessions`` with ``q`` and the first wire status; the others follow one by one."""
        wires: tuple[str, ...] = ()
        if "status" in self.pushed_filters(query):
            wires = tuple(wire for status in SessionStatus for wire in WIRE_STATUSES[status] if status in query.status)  # type: ignore[operator]
        return self._request(_metadata_param(query), wires)

    def _request(self, common: tuple[tuple[str, str], ...], wires: tuple[str, ...]) -> _ListRequest:
        if not wires:
            return _ListRequest("GET", LIST_PATH, common)
        return _ListRequest("GET", LIST_PATH, (("status", wires[0]), *common), later_statuses=wires[1:])

    def parse_list_page(self, request: ApiRequest, payload: Any) -> Page:
        """Decode a bare array; the next request is the listing's next wire status, if any."""
        records = require_list(payload, "the session list")
        sessions, odd_values, dropped = read_records(records, parse_session, id_key="id")
        later = request.later_statuses if isinstance(request, _ListRequest) else ()
        next_request = None
        if later:
            common = tuple((k, v) for k, v in request.params if k != "status")
            next_request = self._request(common, later)
        return Page(sessions=sessions, next_request=next_request, odd_values=odd_values, dropped=dropped)

    def get_request(self, session_id: str) -> ApiRequest:
        """``GET /v1/sessions/{id}``, the id quoted so it stays one path segment."""
        return ApiRequest("GET", f"{LIST_PATH}/{path_segment(session_id, parameter='session_id')}")

    def parse_session_body(self, payload: Any) -> BrowserSession | None:
        """The session object itself (its live-browser fields are dropped by ``parse_session``)."""
        return read_one_record(self, payload, parse_session)

    closes_sessions: ClassVar[bool] = True

    def close_request(self, session_id: str) -> ApiRequest:
        """``POST /v1/sessions/{id}`` with ``{"status": "REQUEST_RELEASE"}``: the session then ends."""
        path = f"{LIST_PATH}/{path_segment(session_id, parameter='session_id')}"
        return ApiRequest("POST", path, body=_RELEASE_BODY)

    def parse_close_body(self, payload: Any) -> str:
        """The session as it stands: ``closed`` once it ended, else ``closing`` (a release is a request)."""
        status = payload.get("status") if isinstance(payload, Mapping) else None
        return "closed" if status in ("COMPLETED", "ERROR", "TIMED_OUT") else "closing"

    def names_a_gone_session(self, request: ApiRequest, status: int, message: str) -> bool:
        """
        A release answered with a 4xx that names the session: it ended already (the API documents no answer for
        that case, so any such refusal reads as "already gone").
        """
        if request.method != "POST" or status in (401, 403, 408, 429):
            return False
        session_id = request.path.rsplit("/", 1)[-1]
        return bool(session_id) and session_id in message


def _metadata_param(query: SessionQuery) -> tuple[tuple[str, str], ...]:
    """``q`` for the query's first metadata condition (the rest are judged locally: one condition per ``q``)."""
    if not query.metadata:
        return ()
    path, value = query.metadata[0]
    keys = "".join(f"['{key}']" for key in path)
    return (("q", f"user_metadata{keys}:'{value}'"),)


def parse_session(record: Any, *, odd_values: list[OddValue] | None = None) -> BrowserSession:
    """
    Normalize one Browserbase session record; only a record that is not an object or has no usable id fails.

    ``PENDING``/``RUNNING`` are running, ``COMPLETED`` finished, ``ERROR``/``TIMED_OUT`` failed (the error
    code says which); any other status is kept as running (not ended), noted in ``odd_values``. The
    live-browser fields of a read (``LIVE_BROWSER_FIELDS``) are never kept, not even in ``raw``.

    :param odd_values: Collects the values kept in a safe form.
    :raises ResponseShapeError: for a record that is not an object or has no usable id.
    """
    data = require_mapping(record, "a session")
    session_id = require_session_id(data, "id")
    if LIVE_BROWSER_FIELDS & data.keys():
        data = {key: value for key, value in data.items() if key not in LIVE_BROWSER_FIELDS}
    fields = RecordFields(data, session_id, odd_values if odd_values is not None else [])
    wire = data.get("status")
    status = _NEUTRAL_OF.get(wire) if isinstance(wire, str) else None
    if status is None:
        status = SessionStatus.RUNNING
        fields.odd("status", wire, "kept as running (not ended)")
    started_at = fields.time("startedAt", milliseconds=False)
    ended_at = fields.time("endedAt", milliseconds=False) if status.is_terminal() else None
    duration = None
    if ended_at is not None and started_at is not None:
        duration = max(0.0, (ended_at - started_at).total_seconds())
    failed = status is SessionStatus.FAILED
    return BrowserSession(
        provider=BrowserbasePlatform.name,
        session_id=session_id,
        status=status,
        started_at=started_at,
        ended_at=ended_at,
        duration=duration,
        bandwidth=fields.count("proxyBytes"),
        error_code=str(wire) if failed else None,
        error_message=("the session timed out" if wire == "TIMED_OUT" else "the session ended in error")
        if failed
        else None,
        raw=data,
    )
