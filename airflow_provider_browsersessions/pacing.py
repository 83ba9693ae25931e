"""How long a server may make us wait: pacing in its rate budget (``Ratelimit`` headers), caps on ``Retry-After``."""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: Longest single pacing wait, in seconds, whatever the headers say (a request's deadline may cap it further).
MAX_PACE_WAIT = 30.0

# A server's ``Retry-After`` is capped twice, for two different waits (docs/reliability.md, "Two caps on
# Retry-After"): a request's retries may sleep longer, because ``max_retry_wait`` bounds them anyway; a poll
# loop has no such bound, so its cap is what keeps a watcher from sleeping for days.

#: Longest ``Retry-After`` one request's retries honour, in seconds (``transport.RetryPolicy``): a larger one
#: counts as this, which is longer than the default ``max_retry_wait`` (300 s) and so ends the retries at once.
MAX_REQUEST_RETRY_AFTER = 600.0

#: Longest a poll loop (the triggerer's shared polls, the event watcher's stream) waits after failed polls,
#: in seconds, whether a server's ``Retry-After`` or the loop's own backoff asks for more
#: (``waiting.next_poll_delay``). A wait's own deadline is never delayed by it: the trigger wakes for it anyway.
MAX_POLL_RETRY_AFTER = 300.0

#: The furthest reset the pacer plans for, in seconds: a window longer than an hour (a daily quota) is not
#: one to spread requests over, and a reset further away is garbage; either way the headers are ignored.
MAX_RESET_SECONDS = 3600.0

#: A reset at or above this many seconds is an epoch time (2001-09-09), not a delay: 31 years is no window.
_EPOCH_RESET_FROM = 1e9

#: Fraction of the budget kept back: several processes on one token each see ``remaining`` a little late.
RESERVE_FRACTION = 0.1

# A parameter's whole value: "t=1e400" or "r=5x" is garbage, not 1 or 5.
_ITEM_PARAM = re.compile(r"([A-Za-z-]+)\s*=\s*([0-9.]+)\s*(?=[;,]|$)")
_NAMES = {"r": "remaining", "remaining": "remaining", "t": "reset", "reset": "reset", "q": "quota", "limit": "quota"}


def _number(text: str) -> float | None:
    """A header parameter's number; None for what only looks like one (``1.2.3``, ``...``) or is not finite."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_ratelimit(
    headers: Mapping[str, str], *, now: float | None = None
) -> tuple[int | None, float | None, int | None]:
    """
    ``(remaining, seconds until reset, quota)`` from the IETF draft headers; ``None`` for what is not there.

    Understands ``Ratelimit: "default";r=50;t=30`` with ``Ratelimit-Policy: "default";q=100;w=30`` (the
    form Cloudflare sends) and the older ``RateLimit-Remaining``/``-Reset``/``-Limit`` triple, also with the
    ``X-`` prefix (Browserbase's ``x-ratelimit-*``). With several
    policies in one header the one with the least remaining wins. A reset given as an epoch time (some
    APIs send one) is read as such; a reset in the past or more than ``MAX_RESET_SECONDS`` away is ignored.
    Garbage is ignored, never an error.

    :param now: The wall clock's epoch seconds, for an epoch reset (default: ``time.time()``).
    """
    values: dict[str, float] = {}
    combined = headers.get("Ratelimit") or headers.get("RateLimit")
    if combined:
        best: dict[str, float] | None = None
        for item in str(combined).split(","):
            found = {
                _NAMES[k.lower()]: number
                for k, v in _ITEM_PARAM.findall(item)
                if k.lower() in _NAMES and (number := _number(v)) is not None
            }
            if "remaining" in found and (best is None or found["remaining"] < best["remaining"]):
                best = found
        values.update(best or {})
    for header, name in (("Ratelimit-Remaining", "remaining"), ("Ratelimit-Reset", "reset")):
        raw = headers.get(header) or headers.get(f"X-{header}")
        number = (
            _number(raw) if name not in values and raw is not None and re.fullmatch(r"\s*[0-9.]+\s*", raw) else None
        )
        if number is not None:
            values[name] = number
    policy = headers.get("Ratelimit-Policy") or headers.get("Ratelimit-Limit") or headers.get("X-Ratelimit-Limit")
    if policy:
        quotas = [n for k, v in _ITEM_PARAM.findall(str(policy)) if k.lower() in ("q", "limit") and (n := _number(v))]
        if not quotas and re.fullmatch(r"\s*[0-9]+\s*", str(policy)) and (number := _number(policy)) is not None:
            quotas = [number]
        if quotas:
            values["quota"] = min(quotas)
    remaining = values.get("remaining")
    reset = values.get("reset")
    if reset is not None and reset >= _EPOCH_RESET_FROM:
        reset -= time.time() if now is None else now
    quota = values.get("quota")
    return (
        None if remaining is None else int(remaining),
        reset if reset is not None and 0 <= reset <= MAX_RESET_SECONDS else None,
        int(quota) if quota is not None and quota >= 1 else None,
    )


class Pacer:
    """
    Spreads what is left of a rate budget over what is left of its window, per process and credential.

    While more than half of the usable budget remains, requests go at once (bursts are what the budget is
    for). Below that, each request waits ``time left / usable requests left``, so the pace slows as
    ``remaining`` falls and reaches the window's end before the budget runs out; with nothing usable left it
    waits for the window to reset. Threads of one process share a pacer and take turns; processes sharing a
    token each see the server's ``remaining`` fall and slow down too, with no coordination between them.
    Without the headers it never waits.

    :param clock: Monotonic seconds (tests pass their own).
    :param max_wait: Cap of one wait.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_wait: float = MAX_PACE_WAIT) -> None:
        self._clock = clock
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._remaining: int | None = None
        self._quota: int | None = None
        self._reset_at = 0.0
        self._last_start = -math.inf

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the budget from an answer's headers (any status); answers without them change nothing."""
        remaining, reset, quota = parse_ratelimit(headers)
        if remaining is None or reset is None:
            return
        now = self._clock()
        reset_at = now + reset
        with self._lock:
            if quota is not None:
                self._quota = quota
            new_window = self._remaining is None or now >= self._reset_at or reset_at > self._reset_at + 1.0
            # Within a window, a late answer must not undo what this process has sent since: keep the lower.
            self._remaining = remaining if new_window else min(remaining, self._remaining or 0)
            self._reset_at = reset_at
            # The answer's request went just now: the next turn is counted from here (a new process too).
            self._last_start = max(self._last_start, now)

    def delay(self) -> float:
        """Reserve the next request's turn; seconds to wait before sending it (0 when nothing is known)."""
        now = self._clock()
        with self._lock:
            if self._remaining is None or now >= self._reset_at:
                return 0.0
            left = self._reset_at - now
            quota = self._quota or max(self._remaining, 1)
            reserve = max(2, math.ceil(quota * RESERVE_FRACTION))
            usable = self._remaining - reserve
            self._remaining -= 1  # this request, until the server's next answer says better
            if usable <= 0:
                return min(left, self.max_wait)
            if usable > (quota - reserve) / 2:
                return 0.0
            start = max(now, self._last_start + left / usable)
            self._last_start = start
            return min(start - now, self.max_wait)


_PACERS: dict[tuple[str, str], Pacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(*, base_url: str, secrets: tuple[str, ...]) -> Pacer:
    """The process's pacer for one API and credential (the budget is the credential's), kept by a digest."""
    digest = hashlib.sha256("\0".join(secrets).encode("utf-8", "replace")).hexdigest()
    key = (base_url, digest)
    with _PACERS_LOCK:
        return _PACERS.setdefault(key, Pacer())
