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
    "repeat_page",
)


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
    return dict(fault)


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
            self._budget: int | None = None
            self._window = 300.0
            self._window_start = 0.0
            self._window_count = 0

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

    def set_lockout(self, *, budget: int | None, window: float) -> None:
        """Cloudflare's lockout: past ``budget`` requests in a ``window`` of real seconds, all answer 429."""
        with self._lock:
            self._budget, self._window = budget, float(window)
            self._window_start, self._window_count = time.monotonic(), 0

    def decide(self, platform: str, method: str, path: str) -> dict[str, Any] | None:
        """The fault for this request, or None to serve it normally."""
        with self._lock:
            if platform == "cloudflare" and self._budget is not None:
                now = time.monotonic()
                if now - self._window_start >= self._window:
                    self._window_start, self._window_count = now, 0
                self._window_count += 1
                if self._window_count > self._budget:
                    left = self._window - (now - self._window_start)
                    return {"kind": "429", "retry_after": math.ceil(left * 100) / 100, "lockout": True}
            for script in self._scripts:
                if script.faults and script.matches(platform, method, path):
                    fault = script.faults.popleft()
                    return None if fault["kind"] == "ok" else fault
            if self._rate and (self._random_platform in (None, platform)) and self._rng.random() < self._rate:
                kind = self._rng.choice(self._kinds)
                return {"kind": kind, "retry_after": self._retry_after, "seconds": self._latency}
        return None
