"""Cloudflare Browser Rendering's devtools session API as the emulator serves it: routes, records, data, budget."""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.testing.emulator.faults import RateBudget
from airflow_provider_browsersessions.testing.emulator.responses import Reply
from airflow_provider_browsersessions.testing.emulator.routes import ApiCall, PlatformApi
from airflow_provider_browsersessions.testing.emulator.store import StoredSession, new_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_browsersessions.testing.emulator.routes import EmulatorState

DEFAULT_CLOUDFLARE_API_TOKEN = "emulator-cloudflare-token"
DEFAULT_CLOUDFLARE_EMAIL = "emulator@example.com"
DEFAULT_CLOUDFLARE_GLOBAL_KEY = "emulator-global-key"
DEFAULT_CLOUDFLARE_ACCOUNT_ID = "emulator-account"

FAILURES = ("ChromiumCrashed", "ConnectionError", "SessionEvicted")
CLOSE_CODES = {"NormalClosure": 1, "BrowserIdle": 2}
#: Paid plan concurrency: the generator never seeds more running Cloudflare browsers than this.
MAX_RUNNING = 120
#: Cloudflare's published budget: 1,200 requests per 5 minutes per user; past it, every call is refused for 5 minutes.
RATE_BUDGET = RateBudget(requests=1200, window=300.0)


def error(status: int, code: int, message: str) -> Reply:
    """Cloudflare's standard error envelope."""
    return Reply(
        status, {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
    )


def authorize(emulator: EmulatorState, headers: Any) -> Reply | None:
    """Bearer token, or the legacy X-Auth-Email + X-Auth-Key pair; else 401 code 10000."""
    if headers.get("Authorization") == f"Bearer {emulator.settings['cloudflare_api_token']}":
        return None
    if (
        headers.get("X-Auth-Email") == emulator.settings["cloudflare_email"]
        and headers.get("X-Auth-Key") == emulator.settings["cloudflare_global_key"]
    ):
        return None
    return error(401, 10000, "Authentication error")


def _ok(emulator: EmulatorState, body: Any) -> Reply:
    if emulator.options["cloudflare_envelope"]:
        body = {"success": True, "errors": [], "messages": [], "result": body}
    return Reply(200, body)


def handle(emulator: EmulatorState, call: ApiCall) -> Reply:
    """Serve ``/client/v4/accounts/{account}/browser-rendering/devtools/...``."""
    method, segments, raw_path = call.method, call.segments, call.raw_path
    denied = authorize(emulator, call.headers)
    if denied:
        return denied
    # segments: client, v4, accounts, {account}, browser-rendering, devtools, (session|browser), [id]
    if len(segments) < 7 or segments[4] != "browser-rendering" or segments[5] != "devtools":
        return error(404, 7000, "No route for that URI")
    if segments[3] != emulator.settings["cloudflare_account_id"]:
        return error(404, 7003, f"Could not route to {raw_path}, perhaps your object identifier is invalid?")
    kind, rest = segments[6], segments[7:]
    params = call.params()
    if kind == "session" and method == "GET":
        return _get_one(emulator, rest[0]) if rest else _list(emulator, params)
    if kind == "browser" and method == "POST" and not rest:
        return _acquire(emulator, params)
    if kind == "browser" and method == "DELETE" and rest:
        return _close(emulator, rest[0])
    return error(405, 10405, "Method not allowed")


def _list(emulator: EmulatorState, params: dict[str, str]) -> Reply:
    try:
        limit = int(params.get("limit", "50"))
        offset = int(params.get("offset", "0"))
    except ValueError:
        return error(400, 1001, "limit and offset must be integers")
    if not 1 <= limit <= 200:
        return error(400, 1001, "limit must be between 1 and 200")
    if offset < 0:
        return error(400, 1001, "offset must be >= 0")
    now = emulator.now()
    active = emulator.store.listing(
        ("cloudflare", "active"),
        now,
        lambda s, at: s.status_at(at) == "running",
        lambda s, at: (s.start, s.session_id),
    )
    return _ok(emulator, [cloudflare_record(s, now, emulator.url) for s in active[offset : offset + limit]])


def _readable(emulator: EmulatorState, session: StoredSession | None, now: float) -> bool:
    if session is None:
        return False
    end = session.end_time()
    return end is None or now < end + emulator.settings["cloudflare_retention"]


def _get_one(emulator: EmulatorState, session_id: str) -> Reply:
    now = emulator.now()
    session = emulator.store.get("cloudflare", session_id)
    if not _readable(emulator, session, now):
        if emulator.options["cloudflare_null_for_missing"]:
            return Reply(200, None)
        return error(404, 1002, "Session not found")
    assert session is not None
    return _ok(emulator, cloudflare_record(session, now, emulator.url))


def _acquire(emulator: EmulatorState, params: dict[str, str]) -> Reply:
    try:
        keep_alive_ms = int(params.get("keep_alive", "60000"))
    except ValueError:
        return error(400, 1001, "keep_alive must be an integer number of milliseconds")
    rng = random.Random()
    session = StoredSession(
        "cloudflare", new_id(rng), emulator.now(), keep_alive_ms / 1000, "finished", cloudflare_fields(rng, "finished")
    )
    session.fields.update({"closeReasonText": "BrowserIdle"})
    emulator.store.add(session)
    record = cloudflare_record(session, emulator.now(), emulator.url)
    return _ok(emulator, {"sessionId": session.session_id, "webSocketDebuggerUrl": record["webSocketDebuggerUrl"]})


def _close(emulator: EmulatorState, session_id: str) -> Reply:
    now = emulator.now()
    session = emulator.store.get("cloudflare", session_id)
    if not _readable(emulator, session, now):
        return error(404, 1002, "Session not found")
    assert session is not None
    if session.status_at(now) != "running":
        return _ok(emulator, {"status": "closed"})
    emulator.store.end("cloudflare", session_id, "finished", now, {"closeReasonText": "NormalClosure"})
    return _ok(emulator, {"status": "closing"})


def _repeated_page(emulator: EmulatorState, call: ApiCall) -> Reply:
    # Cloudflare pages by a full page meaning "more": the same full page at every offset never ends.
    return handle(emulator, dataclasses.replace(call, method="GET", query={**call.query, "offset": ["0"]}))


def _rate_limited(retry_after: str) -> Reply:
    reply = _too_many_requests()
    reply.headers["Retry-After"] = retry_after
    return reply


def _too_many_requests() -> Reply:
    return error(429, 971, "Please wait and consider throttling your request speed")


def _server_error(status: int) -> Reply | None:
    # Cloudflare's 500 is code 2000 in its envelope (shared/api notes, "Codes seen"); its 503 body is
    # undocumented (only "no browser available"), so the server's generic {"error": ...} stands in.
    return error(500, 2000, "Internal server error") if status == 500 else None


def cloudflare_record(session: StoredSession, now: float, base_url: str) -> dict[str, Any]:
    """The Cloudflare wire record of a session at ``now`` (camelCase, epoch milliseconds)."""
    f = session.fields
    sid = session.session_id
    record: dict[str, Any] = {
        "sessionId": sid,
        "startTime": int(session.start * 1000),
        "connectionId": f.get("connectionId"),
        "connectionStartTime": int(session.start * 1000) + 150,
        "lastUpdated": int(min(now, session.end_time() or now) * 1000),
        "devtoolsFrontendUrl": f"{base_url}/devtools/inspector.html?ws={sid}&token={f['token']}",
        "webSocketDebuggerUrl": f"{base_url.replace('http', 'ws', 1)}/devtools/browser/{sid}?token={f['token']}",
    }
    if session.status_at(now) == "running":
        if f.get("zero_end"):
            record["endTime"] = 0  # both forms happen: a missing endTime, or 0
        return record
    end_ms = int((session.end_time() or now) * 1000)
    reason = f.get("closeReasonText") or ("NormalClosure" if session.outcome == "finished" else "ChromiumCrashed")
    record.update(
        {
            "endTime": end_ms,
            "connectionEndTime": end_ms,
            "closeReasonText": reason,
            # The reference gives numeric codes, the SDK a string: the generator sends both forms.
            "closeReason": CLOSE_CODES.get(reason, reason) if f.get("numeric_reason", True) else reason,
        }
    )
    record.pop("connectionId", None)
    return record


def cloudflare_fields(rng: random.Random, outcome: str) -> dict[str, Any]:
    """Realistic planned fields of one Cloudflare session."""
    reason = rng.choice(("NormalClosure", "BrowserIdle")) if outcome == "finished" else rng.choice(FAILURES)
    return {
        "closeReasonText": reason,
        "numeric_reason": rng.random() < 0.5,
        "zero_end": rng.random() < 0.5,
        "connectionId": new_id(rng),
        "token": f"{rng.getrandbits(64):016x}",
    }


def ended_fields(status: str, *, close_reason: str | None = None) -> dict[str, Any]:
    """What ``end_session`` sets: the close reason (by default ``NormalClosure``, or ``ChromiumCrashed`` if failed)."""
    return {"closeReasonText": close_reason or ("NormalClosure" if status == "finished" else "ChromiumCrashed")}


def connection(base_url: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A ``cloudflare_browser_rendering`` connection to the emulator: Host, token and ``account_id``."""
    return {
        "conn_type": "cloudflare_browser_rendering",
        "host": base_url,
        "password": settings["cloudflare_api_token"],
        "extra": {"account_id": settings["cloudflare_account_id"]},
    }


API = PlatformApi(
    name="cloudflare",
    title="Cloudflare",
    owns=lambda segments: segments[:3] == ["client", "v4", "accounts"],
    handle=handle,
    is_list=lambda call: call.method == "GET" and call.segments[-1] == "session",
    repeated_page=_repeated_page,
    rate_limited=_rate_limited,
    raw_rate_limited=_too_many_requests,
    server_error=_server_error,
    record=cloudflare_record,
    new_fields=cloudflare_fields,
    ended_fields=ended_fields,
    history=3000,  # sessions of the last hour or so
    connection=connection,
    default_conn_id="cloudflare_browser_rendering_default",
    base_path="/client/v4",
    settings={
        "cloudflare_api_token": DEFAULT_CLOUDFLARE_API_TOKEN,
        "cloudflare_email": DEFAULT_CLOUDFLARE_EMAIL,
        "cloudflare_global_key": DEFAULT_CLOUDFLARE_GLOBAL_KEY,
        "cloudflare_account_id": DEFAULT_CLOUDFLARE_ACCOUNT_ID,
        "cloudflare_retention": 3600.0,  # emulator seconds a closed session stays readable
    },
    # The notes on the API say both shapes can occur: answers in the envelope, a 200 null for an unknown session.
    options=("cloudflare_envelope", "cloudflare_null_for_missing"),
    max_running=MAX_RUNNING,
    rate_budget=RATE_BUDGET,
)
