"""Bright Data's Browser Sessions API as the emulator serves it (``/browser_sessions``): routes, records, data."""

from __future__ import annotations

import dataclasses
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

DEFAULT_BRIGHTDATA_API_KEY = "emulator-brightdata-key"

ZONES = ("scraping_browser1", "scraping_browser2", "checkout_monitor")
DOMAINS = (
    "www.example.com", "shop.example.org", "news.example.net", "www.amazon.com", "www.linkedin.com",
    "www.booking.com", "www.zillow.com", "www.walmart.com", "www.ebay.com", "www.indeed.com",
    "www.target.com", "www.homedepot.com", "www.bestbuy.com", "www.etsy.com", "www.airbnb.com",
    "www.tripadvisor.com", "www.yelp.com", "www.expedia.com", "www.costco.com", "www.instacart.com",
)  # fmt: skip
PATHS = ("/", "/search?q=shoes", "/product/12345", "/jobs/view/987", "/category/electronics", "/deals")
CAPTCHA_WEIGHTS = (("none", 70), ("solved", 20), ("detected", 5), ("failed", 5))
ERRORS = (
    ("unknown", "Error"),
    ("timeout", "Navigation timeout of 30000 ms exceeded"),
    ("navigation_failed", "net::ERR_CONNECTION_RESET"),
    ("proxy_error", "Proxy connection failed"),
    ("captcha_failed", "Captcha could not be solved"),
)

_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_ENUMS = {
    "status": ("running", "finished", "failed", "all"),
    "sort": ("timestamp", "duration", "bandwidth"),
    "order": ("asc", "desc"),
}


def _bad(details: str) -> Reply:
    # "details" is an emulator addition: the real API documents only {"error": "Invalid request parameters"}.
    return Reply(400, {"error": "Invalid request parameters", "details": details})


def _date(value: str, name: str) -> float | Reply:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return _bad(f"{name} must be an ISO 8601 date-time, e.g. 2025-12-01T00:00:00Z")


def _int(value: str, name: str, low: int, high: int | None) -> int | Reply:
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if number < low or (high is not None and number > high):
        return _bad(
            f"{name} must be an integer {'from ' + str(low) + ' to ' + str(high) if high else '>= ' + str(low)}"
        )
    return number


def authorize(emulator: EmulatorState, headers: Any) -> Reply | None:
    """401 in Bright Data's shape unless the Bearer key is right."""
    auth = headers.get("Authorization")
    if not auth:
        return Reply(401, {"error": "Credentials are missing"})
    if auth != f"Bearer {emulator.settings['brightdata_api_key']}":
        return Reply(401, {"error": "Invalid credentials"})
    return None


def handle(emulator: EmulatorState, call: ApiCall) -> Reply:
    """Serve ``GET /browser_sessions`` and ``GET /browser_sessions/{id}``."""
    denied = authorize(emulator, call.headers)
    if denied:
        return denied
    if call.method != "GET":
        return Reply(405, {"error": "Method not allowed"})
    if len(call.segments) == 2:
        return _get_one(emulator, call.segments[1])
    return _list(emulator, call.params())


def _get_one(emulator: EmulatorState, session_id: str) -> Reply:
    if not _ID.match(session_id):
        return Reply(400, {"error": "Invalid session_id format"})
    session = emulator.store.get("brightdata", session_id)
    if session is None:
        return Reply(404, {"error": "Session not found", "session_id": session_id})
    return Reply(200, {"session": brightdata_record(session, emulator.now())})


def _list(emulator: EmulatorState, params: dict[str, str]) -> Reply:
    limit = _int(params.get("limit", "50"), "limit", 1, 100)
    offset = _int(params.get("offset", "0"), "offset", 0, None)
    for bad in (limit, offset):
        if isinstance(bad, Reply):
            return bad
    assert isinstance(limit, int)
    assert isinstance(offset, int)
    choices = {name: params.get(name, allowed[0] if name != "status" else "all") for name, allowed in _ENUMS.items()}
    choices["order"] = params.get("order", "desc")
    for name, allowed in _ENUMS.items():
        if choices[name] not in allowed:
            return _bad(f"{name} must be one of {', '.join(allowed)}")
    bounds: dict[str, float] = {}
    for name in ("start_date", "end_date"):
        if params.get(name):
            parsed = _date(params[name], name)
            if isinstance(parsed, Reply):
                return parsed
            bounds[name] = parsed
    api_name, target, end_url = params.get("api_name"), params.get("target_url"), params.get("end_url")
    now = emulator.now()

    def select(session: StoredSession, at: float) -> bool:
        record = brightdata_record(session, at)
        if choices["status"] != "all" and record["status"] != choices["status"]:
            return False
        if api_name and record["api_name"] != api_name:
            return False
        start = int(session.start)  # the wire timestamp has whole seconds
        if "start_date" in bounds and start < bounds["start_date"]:
            return False
        if "end_date" in bounds and start > bounds["end_date"]:
            return False
        # The real match rule is undocumented; the emulator matches a case-insensitive substring.
        if target and target.lower() not in (record["target_url"] or "").lower():
            return False
        return not (end_url and end_url.lower() not in (record["end_url"] or "").lower())

    descending = choices["order"] == "desc"

    def sort_key(session: StoredSession, at: float) -> tuple[Any, ...]:
        record = brightdata_record(session, at)
        value = {"timestamp": session.start, "duration": record["duration"], "bandwidth": record["bandwidth"]}[
            choices["sort"]
        ]
        # Missing values last whatever the order; ties by id so pages never reorder between calls.
        if value is None:
            return (1, 0, session.session_id)
        return (0, -value if descending else value, session.session_id)

    key = ("brightdata", tuple(sorted(choices.items())), tuple(sorted(bounds.items())), api_name, target, end_url)
    matching = emulator.store.listing(key, now, select, sort_key)
    page = matching[offset : offset + limit]
    has_more = offset + len(page) < len(matching)
    return Reply(
        200,
        {
            "sessions": [brightdata_record(s, now) for s in page],
            "count": len(page),
            "total": len(matching),
            "pagination": {
                "offset": offset,
                "limit": limit,
                "has_more": has_more,
                "next_offset": offset + len(page) if has_more else None,
            },
        },
    )


# Bright Data puts a 429's reason in headers (its published guidance; shared/api notes), often with no
# reason in the body: clients must read them.
RATE_LIMIT_REASON_HEADERS = {
    "x-brd-error": "too_many_requests",
    "x-brd-err-msg": "Too many requests: rate limit exceeded, slow down",
}


def rate_limited(retry_after: str) -> Reply:
    """Bright Data's 429: its body, its reason headers, and ``Retry-After``."""
    return Reply(429, {"error": "Too many requests"}, {**RATE_LIMIT_REASON_HEADERS, "Retry-After": retry_after})


def repeated_page(emulator: EmulatorState, call: ApiCall) -> Reply:
    """
    The ``repeat_page`` fault: the first page again, whatever the offset, its pagination still advancing
    (``has_more: true``, ``next_offset`` = offset + limit), as a broken cache or proxy in front of the API would.
    """
    params = call.params()
    first = dataclasses.replace(
        call, method="GET", segments=["browser_sessions"], query={**call.query, "offset": ["0"]}
    )
    reply = handle(emulator, first)
    if reply.status != 200:
        return reply
    offset, limit = int(params.get("offset", "0") or 0), int(params.get("limit", "50") or 50)
    reply.body["pagination"] = {"offset": offset, "limit": limit, "has_more": True, "next_offset": offset + limit}
    return reply


def iso(epoch: float) -> str:
    """ISO-8601 UTC with ``Z``, whole seconds, as Bright Data sends ``timestamp``."""
    return datetime.fromtimestamp(math.floor(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def brightdata_record(session: StoredSession, now: float) -> dict[str, Any]:
    """
    The Bright Data wire record of a session at ``now``.

    A session added with ``wire={...}`` has those fields replaced as sent (e.g. a status the API might
    add one day, or a bandwidth of the wrong type), whatever its state: clients meet odd values this way.
    """
    record = _state_record(session, now)
    wire = session.fields.get("wire")
    return {**record, **wire} if isinstance(wire, dict) else record


def _state_record(session: StoredSession, now: float) -> dict[str, Any]:
    status = session.status_at(now)
    f = session.fields
    if status == "running":
        return {
            "session_id": session.session_id,
            "api_name": f["api_name"],
            "status": "running",
            "target_url": None,
            "end_url": None,
            "navigations": 0,
            "timestamp": iso(session.start),
            "duration": None,
            "captcha": "none",
            "bandwidth": 0,
            "error": None,
        }
    end = session.end_time() or now
    error = f.get("error")
    if status == "failed" and error is None:
        error = {"code": "unknown", "message": "Error"}
    return {
        "session_id": session.session_id,
        "api_name": f["api_name"],
        "status": status,
        "target_url": f["target_url"],
        "end_url": f["end_url"],
        "navigations": f["navigations"],
        "timestamp": iso(session.start),
        "duration": round(max(0.0, end - session.start), 3),
        "captcha": f["captcha"],
        "bandwidth": f["bandwidth"],
        "error": error if status == "failed" else None,
    }


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def brightdata_fields(rng: random.Random, outcome: str) -> dict[str, Any]:
    """Realistic planned fields of one Bright Data session (an ``error`` only if it fails)."""
    domain = rng.choice(DOMAINS)
    navigations = rng.randint(1, 25)
    error = None
    if outcome == "failed":
        code, message = rng.choice(ERRORS)
        error = {"code": code, "message": message}
    return {
        "api_name": rng.choice(ZONES),
        "target_url": f"https://{domain}",
        "end_url": f"https://{domain}{rng.choice(PATHS)}",
        "navigations": navigations,
        "captcha": _pick(rng, CAPTCHA_WEIGHTS),
        "bandwidth": min(200_000_000, int(10_000 * navigations * rng.lognormvariate(3.0, 1.2))),
        "error": error,
    }


#: Failed sessions the starting data set has on each zone in the 24 hours before it starts: the first listing
#: a user tries ("yesterday's failed sessions of a zone", as in the examples) then shows some.
SHOWCASE_FAILED_PER_ZONE = 3
DAY = 86400.0


def showcase(sessions: list[StoredSession], rng: random.Random, now: float) -> None:
    """
    Give each zone ``SHOWCASE_FAILED_PER_ZONE`` failed sessions that started and ended in the last 24 hours.

    Ended sessions of the zone that are not such yet (finished ones, or failed ones of earlier days) are moved
    into the last day and fail, in the order generated; running ones are left alone, so the set's size, its
    running sessions and its ids stay what the seed gave.

    :param sessions: The generated sessions (changed in place).
    :param rng: Seeded: the same seed reshapes the same way.
    :param now: The emulator's time (epoch seconds).
    """
    for zone in ZONES:
        ended = [s for s in sessions if s.fields["api_name"] == zone and (s.end_time() or math.inf) <= now]
        recent = [s for s in ended if s.outcome == "failed" and s.start >= now - DAY]
        others = [s for s in ended if s not in recent]
        for session in others[: max(0, SHOWCASE_FAILED_PER_ZONE - len(recent))]:
            session.duration = min(session.duration or 0.0, 3600.0)
            session.start = now - session.duration - rng.uniform(600, DAY - 2 * 3600)
            session.outcome = "failed"
            code, message = rng.choice(ERRORS)
            session.fields["error"] = {"code": code, "message": message}


def ended_fields(status: str, *, error: dict[str, str] | None = None) -> dict[str, Any]:
    """What ``end_session`` sets: the ``error`` of a failed session (``{"code", "message"}``), else none."""
    return {"error": error if status == "failed" else None}


def connection(base_url: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A ``brightdata`` connection to the emulator: its Host is the base URL, its Password the key."""
    return {"conn_type": "brightdata", "host": base_url, "password": settings["brightdata_api_key"]}


API = PlatformApi(
    name="brightdata",
    title="Bright Data",
    owns=lambda segments: segments[0] == "browser_sessions",
    handle=handle,
    is_list=lambda call: call.method == "GET" and call.segments[-1] == "browser_sessions",
    repeated_page=repeated_page,
    rate_limited=rate_limited,
    # A 429 from a front end in the raw form: no reason headers, only its body (the server adds Retry-After).
    raw_rate_limited=lambda: Reply(429, {"error": "Too many requests"}),
    record=lambda session, now, server_url: brightdata_record(session, now),
    new_fields=brightdata_fields,
    ended_fields=ended_fields,
    history=7 * 86400,  # sessions of the last seven days
    connection=connection,
    default_conn_id="brightdata_default",
    settings={"brightdata_api_key": DEFAULT_BRIGHTDATA_API_KEY},
    showcase=showcase,
)
