"""Fault injection: scripted per-request faults, seeded random faults and each platform's rate-budget lockout."""

from __future__ import annotations

import collections
import dataclasses
import math
import random
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

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
    # The request takes effect, its answer is lost on the way back: no answer at all, or a gateway's 5xx.
    "drop_after_apply",
)
#: The largest gzip bomb (bytes once inflated): built in seconds, about 1 MB on the wire.
MAX_BOMB_BYTES = 1024**3
#: The largest trickled body (bytes): it is held in memory while it trickles.
MAX_TRICKLE_BYTES = 16 * 1024**2


@dataclasses.dataclass(frozen=True)
class RateBudget:
    """
    A platform's published request budget, on by default: past ``requests`` in ``window`` real seconds,
    every call is refused (429) for ``window`` seconds, and every answer carries ``Ratelimit`` headers.

    :param requests: Requests allowed per window.
    :param window: Seconds of one window (and of the lockout).
    """

    requests: int
    window: float


class _BudgetCount:
    """One platform's budget as it stands: its settings, the current window's count, a lockout if one runs."""

    def __init__(self, *, budget: int | None, window: float, lockout: float) -> None:
        self.budget, self.window, self.lockout = budget, window, lockout
        self.window_start, self.window_count = time.monotonic(), 0
        self.locked_until: float | None = None

    def count(self, now: float) -> dict[str, Any] | None:
        """Count one request; the lockout's 429 fault when it is over the budget (or locked out already)."""
        # A user past the budget is locked out for the whole lockout period, whatever the window; a new
        # window starts when the lockout ends.
        if self.locked_until is not None:
            if now < self.locked_until:
                return {"kind": "429", "retry_after": math.ceil((self.locked_until - now) * 100) / 100, "lockout": True}
            self.locked_until, self.window_start, self.window_count = None, now, 0
        if now - self.window_start >= self.window:
            self.window_start, self.window_count = now, 0
        self.window_count += 1
        if self.budget is not None and self.window_count > self.budget:
            self.locked_until = now + self.lockout
            return {"kind": "429", "retry_after": math.ceil(self.lockout * 100) / 100, "lockout": True}
        return None

    def headers(self, now: float) -> dict[str, str]:
        """``Ratelimit``/``Ratelimit-Policy`` for the budget as it stands (IETF draft form), none without a budget."""
        if self.budget is None:
            return {}
        if self.locked_until is not None and now < self.locked_until:
            remaining, reset = 0, self.locked_until - now
        else:
            remaining = max(0, self.budget - self.window_count)
            reset = max(0.0, self.window_start + self.window - now)
        window = int(self.window) if self.window.is_integer() else self.window
        return {
            "Ratelimit": f'"default";r={remaining};t={math.ceil(reset)}',
            "Ratelimit-Policy": f'"default";q={self.budget};w={window}',
        }


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
        if fault.get("size") is not None and fault["size"] > MAX_TRICKLE_BYTES:
            raise ValueError(f"a 'trickle' fault's 'size' is at most {MAX_TRICKLE_BYTES:,} bytes (the cap)")
    elif kind == "stall_headers":
        _positive(fault, "seconds")
    elif kind == "gzip_bomb":
        _positive(fault, "size", required=True)
        if fault["size"] > MAX_BOMB_BYTES:
            raise ValueError(f"a 'gzip_bomb' fault's 'size' is at most {MAX_BOMB_BYTES:,} bytes (1 GiB, the cap)")
    elif kind == "429_raw":
        if not isinstance(fault.get("retry_after"), str):
            raise ValueError("a '429_raw' fault needs 'retry_after': the raw Retry-After header value, as text")
    elif kind == "drop_after_apply":
        status = fault.get("status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 500 <= status <= 599):
            raise ValueError(f"a 'drop_after_apply' fault's 'status' is 500..599 (absent: no answer), got {status!r}")
    elif kind == "redirect":
        if not isinstance(fault.get("location"), str) or not fault["location"]:
            raise ValueError("a 'redirect' fault needs 'location' (text), and may set 'status' (300..399)")
        status = fault.get("status", 302)
        if isinstance(status, bool) or not isinstance(status, int) or not 300 <= status <= 399:
            raise ValueError(f"a 'redirect' fault's 'status' is 300..399, got {status!r}")


class FaultPlan:
    """
    Decides, per API request, whether it fails and how.

    :param budgets: Each rate-limited platform's published budget, by platform name (see ``PlatformApi.rate_budget``).
    """

    def __init__(self, budgets: Mapping[str, RateBudget] | None = None) -> None:
        self._lock = threading.Lock()
        self._published = dict(budgets or {})
        self.clear()

    def clear(self) -> None:
        """No faults of any kind; each platform's budget back to its published one."""
        with self._lock:
            self._scripts: list[_Script] = []
            self._rate = 0.0
            self._kinds: list[str] = []
            self._rng = random.Random(0)
            self._retry_after = 0.05
            self._latency = 0.05
            self._random_platform: str | None = None
            self._budgets = {
                name: _BudgetCount(budget=published.requests, window=published.window, lockout=published.window)
                for name, published in self._published.items()
            }

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

    def set_lockout(
        self, *, budget: int | None, window: float, lockout: float | None = None, platform: str | None = None
    ) -> None:
        """
        A platform's budget: past ``budget`` requests in a ``window`` of real seconds, every call answers 429
        for ``lockout`` seconds (default: ``window``); ``budget=None`` turns the budget and its headers off.
        ``platform`` names one rate-limited platform; None sets every one.
        """
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
            raise ValueError(f"budget is a whole number of requests (0 or more) or null, got {budget!r}")
        if not float(window) > 0 or (lockout is not None and not float(lockout) > 0):
            raise ValueError("window and lockout are seconds above 0")
        if platform is not None and platform not in self._published:
            limited = ", ".join(self._published) or "none"
            raise ValueError(f"platform must be one with a rate budget ({limited}), not {platform!r}")
        with self._lock:
            for name in self._published if platform is None else (platform,):
                self._budgets[name] = _BudgetCount(
                    budget=budget, window=float(window), lockout=float(window if lockout is None else lockout)
                )

    def ratelimit_headers(self, platform: str) -> dict[str, str]:
        """The platform's ``Ratelimit``/``Ratelimit-Policy`` headers now; none for a platform without a budget."""
        with self._lock:
            count = self._budgets.get(platform)
            return {} if count is None else count.headers(time.monotonic())

    def decide(self, platform: str, method: str, path: str) -> dict[str, Any] | None:
        """The fault for this request, or None to serve it normally."""
        with self._lock:
            count = self._budgets.get(platform)
            if count is not None and (locked := count.count(time.monotonic())) is not None:
                return locked
            for script in self._scripts:
                if script.faults and script.matches(platform, method, path):
                    fault = script.faults.popleft()
                    return None if fault["kind"] == "ok" else fault
            if self._rate and (self._random_platform in (None, platform)) and self._rng.random() < self._rate:
                kind = self._rng.choice(self._kinds)
                return {"kind": kind, "retry_after": self._retry_after, "seconds": self._latency}
        return None
