"""The emulator's state: a clock, sessions whose status follows it, a seeded generator, and wire records."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

PLATFORMS = ("brightdata", "cloudflare")

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
CF_FAILURES = ("ChromiumCrashed", "ConnectionError", "SessionEvicted")
CF_CODES = {"NormalClosure": 1, "BrowserIdle": 2}
# Paid plan concurrency: the generator never seeds more running Cloudflare browsers than this.
CF_MAX_RUNNING = 120


class Clock:
    """Emulator time in epoch seconds: real time scaled by ``speed``, plus whatever ``advance`` added."""

    def __init__(self, speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._base = time.time()
        self._anchor = time.monotonic()
        self._speed = float(speed)

    def now(self) -> float:
        """Current emulator time."""
        with self._lock:
            return self._base + (time.monotonic() - self._anchor) * self._speed

    def advance(self, seconds: float) -> None:
        """Jump forward (or back) by ``seconds`` of emulator time."""
        with self._lock:
            self._base += float(seconds)

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (time so far is kept)."""
        with self._lock:
            now = self._base + (time.monotonic() - self._anchor) * self._speed
            self._base, self._anchor, self._speed = now, time.monotonic(), float(speed)

    @property
    def speed(self) -> float:
        """Emulator seconds per real second."""
        return self._speed


@dataclasses.dataclass(slots=True)
class StoredSession:
    """
    One session's plan: it runs from ``start`` until ``start + duration`` (or until ended explicitly)
    and then shows ``outcome``; its status is derived from the clock, so no thread moves it along.
    """

    platform: str
    session_id: str
    start: float
    duration: float | None
    outcome: str
    fields: dict[str, Any]
    ended_at: float | None = None

    def end_time(self) -> float | None:
        """When it ends (or ended), if that is known."""
        if self.ended_at is not None:
            return self.ended_at
        return None if self.duration is None else self.start + self.duration

    def status_at(self, now: float) -> str:
        """``running`` until the end time, then the outcome."""
        end = self.end_time()
        return "running" if end is None or now < end else self.outcome


def iso(epoch: float) -> str:
    """ISO-8601 UTC with ``Z``, whole seconds, as Bright Data sends ``timestamp``."""
    return datetime.fromtimestamp(math.floor(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def brightdata_record(session: StoredSession, now: float) -> dict[str, Any]:
    """
    The Bright Data wire record of a session at ``now``.

    A session added with ``wire={...}`` has those fields replaced as sent (e.g. a status the API might
    add one day, or a bandwidth of the wrong type), whatever its state: clients meet odd values this way.
    """
    record = _brightdata_state_record(session, now)
    wire = session.fields.get("wire")
    return {**record, **wire} if isinstance(wire, dict) else record


def _brightdata_state_record(session: StoredSession, now: float) -> dict[str, Any]:
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
            "closeReason": CF_CODES.get(reason, reason) if f.get("numeric_reason", True) else reason,
        }
    )
    record.pop("connectionId", None)
    return record


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def new_id(rng: random.Random | None = None) -> str:
    """A UUID-shaped id (seeded when given a RNG, so data sets repeat)."""
    return str(uuid.UUID(int=(rng or random).getrandbits(128), version=4))


def brightdata_fields(rng: random.Random, outcome: str) -> dict[str, Any]:
    """Realistic planned fields of one Bright Data session."""
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


def cloudflare_fields(rng: random.Random, outcome: str) -> dict[str, Any]:
    """Realistic planned fields of one Cloudflare session."""
    reason = rng.choice(("NormalClosure", "BrowserIdle")) if outcome == "finished" else rng.choice(CF_FAILURES)
    return {
        "closeReasonText": reason,
        "numeric_reason": rng.random() < 0.5,
        "zero_end": rng.random() < 0.5,
        "connectionId": new_id(rng),
        "token": f"{rng.getrandbits(64):016x}",
    }


class SessionStore:
    """
    Sessions of both platforms, thread-safe, with a cache of each query's sorted matches.

    A cached listing stays valid until the store changes (``version``) or the clock passes the next
    planned end of a running session, so paging a 100 000-session store costs one sort per query.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.sessions: dict[str, dict[str, StoredSession]] = {p: {} for p in PLATFORMS}
        self.version = 0
        self._cache: dict[tuple[Any, ...], tuple[int, float, list[StoredSession]]] = {}

    def changed(self) -> None:
        """Invalidate cached listings."""
        self.version += 1
        self._cache.clear()

    def add(self, session: StoredSession) -> StoredSession:
        """Store (or replace) a session."""
        with self.lock:
            self.sessions[session.platform][session.session_id] = session
            self.changed()
        return session

    def get(self, platform: str, session_id: str) -> StoredSession | None:
        """A stored session by id."""
        with self.lock:
            return self.sessions[platform].get(session_id)

    def end(self, platform: str, session_id: str, status: str, now: float, fields: dict[str, Any]) -> StoredSession:
        """End a session now with ``status``."""
        with self.lock:
            session = self.sessions[platform][session_id]
            session.ended_at, session.outcome = now, status
            session.fields.update(fields)
            self.changed()
            return session

    def listing(self, key: tuple[Any, ...], now: float, select: Any, sort_key: Any) -> list[StoredSession]:
        """The sessions ``select(session, now)`` keeps, sorted by ``sort_key(session, now)``; cached."""
        with self.lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == self.version and now < hit[1]:
                return hit[2]
            platform = key[0]
            chosen = [s for s in self.sessions[platform].values() if select(s, now)]
            chosen.sort(key=lambda s: sort_key(s, now))
            ends = [e for s in self.sessions[platform].values() if (e := s.end_time()) is not None and e > now]
            self._cache[key] = (self.version, min(ends, default=math.inf), chosen)
            return chosen

    def clear(self) -> None:
        """Forget every session."""
        with self.lock:
            for sessions in self.sessions.values():
                sessions.clear()
            self.changed()


def generate(platform: str, *, count: int, seed: int | None, now: float) -> list[StoredSession]:
    """
    A seeded, realistic data set: ~80 % finished, ~12 % failed, ~8 % running (ending within the next
    1-120 emulator seconds) spread over the last 7 days; Cloudflare keeps at most 120 running.
    """
    rng = random.Random(seed)
    made: list[StoredSession] = []
    running_cf = 0
    for _ in range(count):
        roll = rng.random()
        if roll < 0.08 and (platform == "brightdata" or running_cf < CF_MAX_RUNNING):
            start = now - rng.uniform(5, 300)
            duration = (now - start) + rng.uniform(1, 120)
            outcome = "failed" if rng.random() < 0.12 else "finished"
            running_cf += platform == "cloudflare"
        else:
            outcome = "failed" if roll < 0.20 else "finished"
            duration = round(rng.lognormvariate(4.0, 1.0), 3)
            horizon = 7 * 86400 if platform == "brightdata" else 3000
            start = now - duration - rng.uniform(10, horizon)
        fields = brightdata_fields(rng, outcome) if platform == "brightdata" else cloudflare_fields(rng, outcome)
        made.append(StoredSession(platform, new_id(rng), start, duration, outcome, fields))
    return made
