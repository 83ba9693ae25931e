"""Browserbase's Sessions API as the emulator serves it (``/v1/sessions``): routes, records, data, its 429.

Facts from Browserbase's API reference (list, get, update a session) and its rate-limit guide; what they
leave undocumented (error bodies, a release of an ended session) is marked where the emulator chooses.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.testing.emulator.responses import Reply
from airflow_provider_browsersessions.testing.emulator.routes import ApiCall, PlatformApi

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

    from airflow_provider_browsersessions.testing.emulator.routes import EmulatorState
    from airflow_provider_browsersessions.testing.emulator.store import StoredSession

DEFAULT_BROWSERBASE_API_KEY = "emulator-browserbase-key"
DEFAULT_BROWSERBASE_PROJECT_ID = "emulator-project"

#: The statuses the list's ``status`` parameter takes (one per request).
STATUSES = ("PENDING", "RUNNING", "ERROR", "TIMED_OUT", "COMPLETED")
REGIONS = ("us-west-2", "us-east-1", "eu-central-1", "ap-southeast-1")
#: The documented example of a 429's headers (its rate-limit guide): a plan of 3 concurrent browsers.
RATE_LIMIT = 3
# ``user_metadata['a']['b']:'value'``: keys in brackets, a quoted string value (string equality only).
_QUERY = re.compile(r"user_metadata((?:\['[^']*'\])+):'([^']*)'")
_KEY = re.compile(r"\['([^']*)'\]")


def _error(status: int, message: str) -> Reply:
    # Error bodies are undocumented: the emulator answers {"statusCode", "message"}; clients rely on the status.
    return Reply(status, {"statusCode": status, "message": message})


def authorize(emulator: EmulatorState, headers: Any) -> Reply | None:
    """401 unless ``X-BB-API-Key`` is the emulator's key."""
    if headers.get("X-BB-API-Key") != emulator.settings["browserbase_api_key"]:
        return _error(401, "Unauthorized: invalid or missing X-BB-API-Key")
    return None


def handle(emulator: EmulatorState, call: ApiCall) -> Reply:
    """Serve ``GET /v1/sessions``, ``GET /v1/sessions/{id}`` and ``POST /v1/sessions/{id}`` (release)."""
    denied = authorize(emulator, call.headers)
    if denied:
        return denied
    rest = call.segments[2:]
    if call.method == "GET" and not rest:
        return _list(emulator, call.params())
    if len(rest) == 1 and call.method == "GET":
        return _get_one(emulator, rest[0])
    if len(rest) == 1 and call.method == "POST":
        return _release(emulator, rest[0], call.body)
    return _error(405, "Method not allowed")


def parse_query(text: str) -> tuple[tuple[str, ...], str] | None:
    """``user_metadata['a']['b']:'v'`` as (``("a", "b")``, ``"v"``); None when it is not one condition."""
    match = _QUERY.fullmatch(text.strip())
    if match is None:
        return None
    return tuple(_KEY.findall(match.group(1))), match.group(2)


def _metadata_value(metadata: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(metadata, dict):
            return None
        metadata = metadata.get(key)
    return metadata


def _list(emulator: EmulatorState, params: dict[str, str]) -> Reply:
    status = params.get("status")
    if status is not None and status not in STATUSES:
        return _error(400, f"status must be one of {', '.join(STATUSES)}")
    condition = None
    if params.get("q"):
        condition = parse_query(params["q"])
        if condition is None:
            return _error(400, "q must be a user metadata query such as user_metadata['key']:'value'")
    now = emulator.now()

    def select(session: StoredSession, at: float) -> bool:
        if status is not None and wire_status(session, at) != status:
            return False
        if condition is None:
            return True
        return _metadata_value(session.fields.get("userMetadata"), condition[0]) == condition[1]

    key = ("browserbase", status, condition)
    matching = emulator.store.listing(key, now, select, lambda s, at: (-s.start, s.session_id))
    # No paging: every match in one bare array (the API documents none).
    return Reply(200, [browserbase_record(s, now) for s in matching])


def _get_one(emulator: EmulatorState, session_id: str) -> Reply:
    session = emulator.store.get("browserbase", session_id)
    if session is None:
        return _error(404, f"Session {session_id} not found")
    return Reply(200, browserbase_record(session, emulator.now(), live=True))


def _release(emulator: EmulatorState, session_id: str, body: bytes) -> Reply:
    try:
        request = json.loads(body) if body else None
    except ValueError:
        request = None
    if not isinstance(request, dict) or request.get("status") != "REQUEST_RELEASE":
        return _error(400, 'the body must be {"status": "REQUEST_RELEASE"}')
    session = emulator.store.get("browserbase", session_id)
    if session is None:
        return _error(404, f"Session {session_id} not found")
    now = emulator.now()
    if session.status_at(now) != "running":
        # Undocumented: the emulator refuses, naming the session (clients read a 4xx naming it as "already gone").
        return _error(400, f"Session {session_id} is not running ({wire_status(session, now)})")
    emulator.store.end("browserbase", session_id, "finished", now, {})
    return Reply(200, browserbase_record(session, now))


def rate_limited(retry_after: str) -> Reply:
    """The 429 of a concurrency or creation limit, with the ``x-ratelimit-*`` headers and ``retry-after``."""
    try:
        reset = max(0, math.ceil(float(retry_after)))
    except ValueError:
        reset = 0
    return Reply(
        429,
        {
            "statusCode": 429,
            "message": f"You've exceeded your max concurrent sessions limit (limit {RATE_LIMIT}, currently "
            f"{RATE_LIMIT}). Please contact support to increase your limit.",
        },
        {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(reset),
            "retry-after": retry_after,
        },
    )


def iso(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as Browserbase sends its times."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def wire_status(session: StoredSession, now: float) -> str:
    """The session's wire status at ``now``: PENDING in its first second, RUNNING, COMPLETED, or its failure."""
    status = session.status_at(now)
    if status == "running":
        return "PENDING" if now - session.start < 1.0 and session.fields.get("pending", True) else "RUNNING"
    if status == "failed":
        return str(session.fields.get("failure") or "ERROR")
    return "COMPLETED"


def browserbase_record(session: StoredSession, now: float, *, live: bool = False) -> dict[str, Any]:
    """
    The Browserbase wire record of a session at ``now``; with ``live``, as a read answers: plus the live
    browser's credentials (``connectUrl``, ``seleniumRemoteUrl``, ``signingKey``).

    A session added with ``wire={...}`` has those fields replaced as sent (an odd status, a wrong type).
    """
    f = session.fields
    end = session.end_time()
    running = session.status_at(now) == "running"
    record: dict[str, Any] = {
        "id": session.session_id,
        "createdAt": iso(session.start),
        "updatedAt": iso(min(now, end) if end is not None and not running else now),
        "startedAt": iso(session.start),
        "expiresAt": iso(session.start + 3600),
        "status": wire_status(session, now),
        "projectId": f.get("projectId", DEFAULT_BROWSERBASE_PROJECT_ID),
        "proxyBytes": 0 if running else f.get("proxyBytes", 0),
        "keepAlive": bool(f.get("keepAlive", False)),
        "region": f.get("region", REGIONS[0]),
    }
    if not running and end is not None:
        record["endedAt"] = iso(end)
    if f.get("contextId"):
        record["contextId"] = f["contextId"]
    if f.get("userMetadata") is not None:
        record["userMetadata"] = f["userMetadata"]
    if f.get("avgCpuUsage") is not None:
        record["avgCpuUsage"] = f["avgCpuUsage"]
    if live:
        key = live_secret(session)
        record["connectUrl"] = f"wss://connect.browserbase.example/?signingKey={key}"
        record["seleniumRemoteUrl"] = f"http://connect.browserbase.example/webdriver?signingKey={key}"
        record["signingKey"] = key
    wire = f.get("wire")
    return {**record, **wire} if isinstance(wire, dict) else record


def live_secret(session: StoredSession) -> str:
    """The session's signing key: what its read gives away, and what must appear nowhere downstream."""
    return f"bb-signing-{session.fields.get('token') or session.session_id}"


def browserbase_fields(rng: random.Random, outcome: str) -> dict[str, Any]:
    """Realistic planned fields of one Browserbase session (a failure kind only if it fails)."""
    return {
        "region": rng.choice(REGIONS),
        "proxyBytes": int(20_000 * rng.lognormvariate(3.0, 1.2)) if rng.random() < 0.6 else 0,
        "keepAlive": rng.random() < 0.2,
        "contextId": f"ctx-{rng.getrandbits(32):08x}" if rng.random() < 0.3 else None,
        "avgCpuUsage": rng.randint(1, 90) if rng.random() < 0.5 else None,
        "failure": rng.choice(("ERROR", "TIMED_OUT")) if outcome == "failed" else None,
        "userMetadata": {"job": rng.choice(("crawl", "checkout", "login"))},
        "token": f"{rng.getrandbits(64):016x}",
    }


def ended_fields(status: str, *, failure: str | None = None) -> dict[str, Any]:
    """What ``end_session`` sets: a failed session's wire status (``ERROR``, the default, or ``TIMED_OUT``)."""
    if failure is not None and failure not in ("ERROR", "TIMED_OUT"):
        raise ValueError("failure must be ERROR or TIMED_OUT")
    return {"failure": (failure or "ERROR") if status == "failed" else None}


def connection(base_url: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A ``browserbase`` connection to the emulator: its Host is the base URL, its Password the API key."""
    return {"conn_type": "browserbase", "host": base_url, "password": settings["browserbase_api_key"]}


API = PlatformApi(
    name="browserbase",
    title="Browserbase",
    owns=lambda segments: segments[:2] == ["v1", "sessions"],
    handle=handle,
    is_list=lambda call: call.method == "GET" and len(call.segments) == 2,
    # No paging: the "same page again" fault is the same whole answer, which a walk of one answer ends on.
    repeated_page=lambda emulator, call: handle(emulator, call),
    rate_limited=rate_limited,
    raw_rate_limited=lambda: _error(429, "Too many requests"),
    record=lambda session, now, server_url: browserbase_record(session, now),
    new_fields=browserbase_fields,
    ended_fields=ended_fields,
    history=2 * 86400,  # sessions of the last two days
    connection=connection,
    default_conn_id="browserbase_default",
    settings={"browserbase_api_key": DEFAULT_BROWSERBASE_API_KEY},
    max_running=50,
)
