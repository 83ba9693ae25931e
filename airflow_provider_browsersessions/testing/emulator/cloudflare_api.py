"""Cloudflare Browser Rendering's devtools session API as the emulator serves it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.testing.emulator.responses import Reply
from airflow_provider_browsersessions.testing.emulator.routes import ApiCall, PlatformApi
from airflow_provider_browsersessions.testing.emulator.store import (
    StoredSession,
    cloudflare_fields,
    cloudflare_record,
    new_id,
)

if TYPE_CHECKING:
    from airflow_provider_browsersessions.testing.emulator.routes import EmulatorState


def error(status: int, code: int, message: str) -> Reply:
    """Cloudflare's standard error envelope."""
    return Reply(
        status, {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
    )


def authorize(emulator: EmulatorState, headers: Any) -> Reply | None:
    """Bearer token, or the legacy X-Auth-Email + X-Auth-Key pair; else 401 code 10000."""
    if headers.get("Authorization") == f"Bearer {emulator.cloudflare_api_token}":
        return None
    if (
        headers.get("X-Auth-Email") == emulator.cloudflare_email
        and headers.get("X-Auth-Key") == emulator.cloudflare_global_key
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
    if segments[3] != emulator.cloudflare_account_id:
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
    return end is None or now < end + emulator.cloudflare_retention


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
    import random

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


API = PlatformApi(
    name="cloudflare",
    owns=lambda segments: segments[:3] == ["client", "v4", "accounts"],
    handle=handle,
    is_list=lambda call: call.method == "GET" and call.segments[-1] == "session",
    repeated_page=_repeated_page,
    rate_limited=_rate_limited,
    raw_rate_limited=_too_many_requests,
    server_error=_server_error,
    sends_rate_budget=True,
)
