"""``EmulatorClient``: the emulator's Python methods, over its HTTP control API, for another process."""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import quote


class EmulatorClient:
    """
    Drive a running emulator from a DAG, a demo or a benchmark in another process.

    :param url: The emulator's ``http://host:port``.
    :param timeout: Seconds per control call.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, route: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_emulator/{route}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read() or b"null")

    def health(self) -> bool:
        """True when the emulator answers."""
        return bool(self._call("GET", "health").get("ok"))

    def now(self) -> float:
        """Emulator time."""
        return float(self._call("GET", "clock")["now"])

    def advance(self, seconds: float) -> None:
        """Jump the clock forward."""
        self._call("POST", "clock", {"advance": seconds})

    def set_speed(self, speed: float) -> None:
        """Change the clock speed."""
        self._call("POST", "clock", {"speed": speed})

    def seed_sessions(self, *, platform: str = "both", count: int, seed: int | None = None) -> list[str]:
        """Seed generated sessions."""
        return list(self._call("POST", "seed", {"platform": platform, "count": count, "seed": seed})["ids"])

    def add_session(self, platform: str, **kwargs: Any) -> dict[str, Any]:
        """Start a session (see ``Emulator.add_session``)."""
        return dict(self._call("POST", f"sessions/{platform}", kwargs))

    def end_session(self, platform: str, session_id: str, **kwargs: Any) -> dict[str, Any]:
        """End a session now."""
        return dict(self._call("POST", f"sessions/{platform}/{quote(session_id, safe='')}/end", kwargs))

    def sessions(self, platform: str) -> list[dict[str, Any]]:
        """Every wire record of a platform."""
        return list(self._call("GET", f"sessions/{platform}"))

    def set_options(self, **options: bool) -> None:
        """Switch Cloudflare's optional body shapes."""
        self._call("POST", "options", options)

    def script_faults(self, faults: list[dict[str, Any]], **match: Any) -> None:
        """Queue faults for matching requests."""
        self._call("POST", "faults/script", {"faults": faults, **match})

    def set_random_faults(self, **kwargs: Any) -> None:
        """Random faults (see ``Emulator.set_random_faults``)."""
        self._call("POST", "faults/random", kwargs)

    def set_lockout(self, *, budget: int | None, window: float = 300.0, lockout: float | None = None) -> None:
        """Cloudflare's budget and lockout (see ``Emulator.set_lockout``)."""
        self._call("POST", "faults/lockout", {"budget": budget, "window": window, "lockout": lockout})

    def clear_faults(self) -> None:
        """No faults."""
        self._call("DELETE", "faults")

    def request_log(self, *, platform: str | None = None) -> list[dict[str, Any]]:
        """Logged API requests."""
        return list(self._call("GET", "requests" + (f"?platform={platform}" if platform else "")))

    def request_count(self, *, platform: str | None = None) -> int:
        """How many API requests were logged."""
        return len(self.request_log(platform=platform))

    def clear_log(self) -> None:
        """Forget logged requests."""
        self._call("DELETE", "requests")

    def reset(self) -> None:
        """Forget sessions, faults, options and the log."""
        self._call("POST", "reset")
