"""Fault injection: scripted per-request faults, seeded random faults and Cloudflare's rate-limit lockout."""

from __future__ import annotations

import collections
import dataclasses
import math
import random
import threading
import time
from typing import Any

FAULT_KINDS = (
    "429",
    "500",
    "503",
    "latency",
    "close_mid_body",
    "malformed_json",
    "html_error",
    "body",
    "ok",
    # Hostile networks: a body trickled byte by byte, headers that never come, a gzip bomb, a raw Retry-After,
    # a redirect.
    "trickle",
    "stall_headers",
    "gzip_bomb",
    "429_raw",
    "redirect",
    # A broken cache or proxy: the first list page again at every offset.
    "repeat_page",
)

#: Cloudflare's published budget: 1,200 requests per 5 minutes per user; past it, every call is refused for 5 minutes.
CLOUDFLARE_BUDGET = 1200
CLOUDFLARE_WINDOW = 300.0


@dataclasses.dataclass
class _Script:
    faults: collections.deque[dict[str, Any]]
    platform: str | None
    method: str | None
    path_contains: str | None

    def matches(self, platform: str, method: str, path: str) -> bool:
        return (
            (self.platform is None or self.platform == platform)
            and (self.method is None or self.method.upper() == method)
            and (self.path_contains is None or self.path_contains in path)
        )


def check_fault(fault: dict[str, Any]) -> dict[str, Any]:
    """Validate one fault dict (``{"kind": ...}``) and return it."""
    if not isinstance(fault, dict) or fault.get("kind") not in FAULT_KINDS:
        raise ValueError(f"a fault is a dict with 'kind' one of {', '.join(FAULT_KINDS)}; got {fault!r}")
    if fault["kind"] == "body" and not isinstance(fault.get("body"), str):
        raise ValueError("a 'body' fault needs 'body' (text), and may set 'status' and 'content_type'")
    _check_network_fault(fault)
    return dict(fault)


def _positive(fault: dict[str, Any], name: str, *, required: bool = False) -> None:
    value = fault.get(name)
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"a {fault['kind']!r} fault needs {name!r} as a number above 0, got {value!r}")


def _check_network_fault(fault: dict[str, Any]) -> None:
    """The hostile-network kinds' parameters (see docs/emulator.md)."""
    kind = fault["kind"]
    if kind == "trickle":
        _positive(fault, "bytes_per_second")
        _positive(fault, "size")
    elif kind == "stall_headers":
        _positive(fault, "seconds")
    elif kind == "gzip_bomb":
        _positive(fault, "size", required=True)
        if int(fault["size"]) > 16 * 1024**3:
            raise ValueError("a 'gzip_bomb' inflates to at most 16 GiB ('size' in bytes)")
    elif kind == "429_raw":
        if not isinstance(fault.get("retry_after"), str):
            raise ValueError("a '429_raw' fault needs 'retry_after': the raw Retry-After header value, as text")
    elif kind == "redirect":
        if not isinstance(fault.get("location"), str) or not fault["location"]:
            raise ValueError("a 'redirect' fault needs 'location' (text), and may set 'status' (300..399)")
        status = fault.get("status", 302)
        if isinstance(status, bool) or not isinstance(status, int) or not 300 <= status <= 399:
            raise ValueError(f"a 'redirect' fault's 'status' is 300..399, got {status!r}")


class FaultPlan:
    """Decides, per API request, whether it fails and how."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """No faults of any kind."""
        with self._lock:
            self._scripts: list[_Script] = []
            self._rate = 0.0
            self._kinds: list[str] = []
            self._rng = random.Random(0)
            self._retry_after = 0.05
            self._latency = 0.05
            self._random_platform: str | None = None
            self._budget: int | None = CLOUDFLARE_BUDGET
            self._window = CLOUDFLARE_WINDOW
            self._lockout = CLOUDFLARE_WINDOW
            self._window_start = time.monotonic()
            self._window_count = 0
            self._locked_until: float | None = None

    def script(
        self, faults: list[dict[str, Any]], *, platform: str | None, method: str | None, path_contains: str | None
    ) -> None:
        """Queue faults for the matching requests, consumed in order."""
        checked = collections.deque(check_fault(f) for f in faults)
        with self._lock:
            self._scripts.append(_Script(checked, platform, method, path_contains))

    def set_random(
        self, *, rate: float, kinds: list[str], seed: int, retry_after: float, latency: float, platform: str | None
    ) -> None:
        """Fault each request with probability ``rate``, the kind drawn uniformly from ``kinds``."""
        for kind in kinds:
            check_fault({"kind": kind})
        if not 0 <= rate <= 1 or (rate and not kinds):
            raise ValueError("rate is a probability from 0 to 1, with at least one kind when above 0")
        with self._lock:
            self._rate, self._kinds, self._rng = float(rate), list(kinds), random.Random(seed)
            self._retry_after, self._latency, self._random_platform = retry_after, latency, platform

    def set_lockout(self, *, budget: int | None, window: float, lockout: float | None = None) -> None:
        """
        Cloudflare's budget: past ``budget`` requests in a ``window`` of real seconds, every call answers 429
        for ``lockout`` seconds (default: ``window``); ``budget=None`` turns the budget and its headers off.
        """
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
            raise ValueError(f"budget is a whole number of requests (0 or more) or null, got {budget!r}")
        if not float(window) > 0 or (lockout is not None and not float(lockout) > 0):
            raise ValueError("window and lockout are seconds above 0")
        with self._lock:
            self._budget, self._window = budget, float(window)
            self._lockout = float(window if lockout is None else lockout)
            self._window_start, self._window_count, self._locked_until = time.monotonic(), 0, None

    def _count_cloudflare(self, now: float) -> dict[str, Any] | None:
        # Called with the lock held. A user past the budget is locked out for the whole lockout period,
        # whatever the window; a new window starts when the lockout ends.
        if self._locked_until is not None:
            if now < self._locked_until:
                return {
                    "kind": "429",
                    "retry_after": math.ceil((self._locked_until - now) * 100) / 100,
                    "lockout": True,
                }
            self._locked_until, self._window_start, self._window_count = None, now, 0
        if now - self._window_start >= self._window:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        if self._budget is not None and self._window_count > self._budget:
            self._locked_until = now + self._lockout
            return {"kind": "429", "retry_after": math.ceil(self._lockout * 100) / 100, "lockout": True}
        return None

    def ratelimit_headers(self) -> dict[str, str]:
        """Cloudflare's ``Ratelimit``/``Ratelimit-Policy`` headers for the budget as it stands now (IETF draft form)."""
        with self._lock:
            if self._budget is None:
                return {}
            now = time.monotonic()
            if self._locked_until is not None and now < self._locked_until:
                remaining, reset = 0, self._locked_until - now
            else:
                remaining = max(0, self._budget - self._window_count)
                reset = max(0.0, self._window_start + self._window - now)
            window = int(self._window) if self._window.is_integer() else self._window
        return {
            "Ratelimit": f'"default";r={remaining};t={math.ceil(reset)}',
            "Ratelimit-Policy": f'"default";q={self._budget};w={window}',
        }

    def decide(self, platform: str, method: str, path: str) -> dict[str, Any] | None:
        """The fault for this request, or None to serve it normally."""
        with self._lock:
            if platform == "cloudflare":
                locked = self._count_cloudflare(time.monotonic())
                if locked is not None:
                    return locked
            for script in self._scripts:
                if script.faults and script.matches(platform, method, path):
                    fault = script.faults.popleft()
                    return None if fault["kind"] == "ok" else fault
            if self._rate and (self._random_platform in (None, platform)) and self._rng.random() < self._rate:
                kind = self._rng.choice(self._kinds)
                return {"kind": kind, "retry_after": self._retry_after, "seconds": self._latency}
        return None
