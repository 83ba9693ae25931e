"""The extras every connection type of this provider reads: one table for the hooks, the form and the docs."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

__all__ = ["COMMON_EXTRAS", "ConnectionExtra"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionExtra:
    """
    One optional connection extra: its type, default and bounds, and the words the form shows for it.

    The hooks parse it (:meth:`parse`), the connection form declares it (:meth:`conn_field`, Airflow 3's
    ``conn-fields``), the errors say what it accepts (:attr:`allowed`) and docs/connections.md's table lists
    it with :attr:`default_text` (a test compares them).

    :param name: The key in the connection's extra.
    :param kind: ``number`` (any non-negative float), ``integer`` (whole numbers only) or ``boolean``.
    :param default: The value when the extra is absent or empty.
    :param label: The form's label.
    :param help: The form's description, without the default (added from ``default``).
    :param minimum: The smallest value allowed (numbers; ``above`` makes it exclusive).
    :param above: Whether ``minimum`` itself is refused.
    :param default_note: Words after the default in the form, e.g. ``32 MiB``.
    """

    name: str
    kind: Literal["number", "integer", "boolean"]
    default: float | int | bool
    label: str
    help: str
    minimum: float = 0
    above: bool = False
    default_note: str = ""

    @property
    def default_text(self) -> str:
        """The default as the form and the docs write it: ``30``, ``true``, ``33554432``."""
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return f"{self.default:g}" if self.kind == "number" else str(int(self.default))

    @property
    def allowed(self) -> str:
        """What the extra accepts, in words, for an error message."""
        if self.kind == "boolean":
            return "true or false"
        noun = "an integer" if self.kind == "integer" else "a number"
        if self.above:
            return f"{noun} above {self.minimum:g}"
        if self.minimum == 0:
            return f"a non-negative {self.kind}"
        if self.kind == "integer" and self.minimum == 1:
            return "a positive integer"
        return f"{noun} of at least {self.minimum:g}"

    def parse(self, value: Any) -> float | bool | None:
        """
        The value the connection holds, checked against the type and bounds; None when it is not allowed.

        Numbers may come as JSON numbers or as text (a URI's query parameters are text); booleans as JSON
        booleans or as ``true``/``false``/``1``/``0``/``yes``/``no`` in any case.

        :param value: The extra's value, never None (an absent extra takes ``default``).
        """
        if self.kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.strip().lower() in ("true", "1", "yes")
            return None
        if isinstance(value, bool):  # JSON true is not the number 1 here
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        # ``not >=`` refuses NaN too; infinity passes a number's bounds (no limit), never an integer's.
        if not number >= self.minimum or (self.above and number == self.minimum):
            return None
        if self.kind == "integer" and not number.is_integer():
            return None
        return number

    def conn_field(self) -> dict[str, Any]:
        """The extra as Airflow 3's connection form declares it (``conn-fields`` of ``get_provider_info()``)."""
        schema: dict[str, Any]
        if self.kind == "boolean":
            schema = {"type": ["boolean", "null"]}
        else:
            bound = "exclusiveMinimum" if self.above else "minimum"
            schema = {"type": [self.kind, "null"], bound: int(self.minimum)}
        note = f" ({self.default_note})" if self.default_note else ""
        return {
            "label": self.label,
            "description": f"{self.help} Default {self.default_text}{note}.",
            "schema": schema,
        }


def _table(*extras: ConnectionExtra) -> dict[str, ConnectionExtra]:
    return {extra.name: extra for extra in extras}


#: The extras both connection types read, in the order the form and the docs show them.
COMMON_EXTRAS: dict[str, ConnectionExtra] = _table(
    ConnectionExtra(
        name="timeout",
        kind="number",
        default=30.0,
        label="Read timeout (seconds)",
        help="Seconds to wait for a response before retrying.",
    ),
    ConnectionExtra(
        name="connect_timeout",
        kind="number",
        default=10.0,
        label="Connect timeout (seconds)",
        help="Seconds to wait for a TCP/TLS connection.",
    ),
    ConnectionExtra(
        name="max_retries",
        kind="integer",
        default=5,
        label="Max retries",
        help="Retries after the first attempt on 429, 5xx and connection errors.",
    ),
    ConnectionExtra(
        name="max_retry_wait",
        kind="number",
        default=300.0,
        label="Max total retry wait (seconds)",
        help="Upper bound on the time spent waiting between retries of one request.",
    ),
    ConnectionExtra(
        name="verify",
        kind="boolean",
        default=True,
        label="Verify TLS certificates",
        help="Set to false only for a trusted proxy with a self-signed certificate (a warning is logged).",
    ),
    ConnectionExtra(
        name="request_deadline",
        kind="number",
        default=60.0,
        above=True,
        label="Request deadline (seconds)",
        help="Seconds one attempt may take end to end: connect, headers and the whole body.",
    ),
    ConnectionExtra(
        name="max_response_bytes",
        kind="integer",
        default=32 * 1024 * 1024,
        above=True,
        label="Max response size (bytes)",
        help="Decompressed bytes one answer may have; larger ones fail clearly.",
        default_note="32 MiB",
    ),
    ConnectionExtra(
        name="pace",
        kind="boolean",
        default=True,
        label="Pace requests by the rate-limit headers",
        help="Slow down as the platform's Ratelimit headers say the budget runs out.",
    ),
    ConnectionExtra(
        name="allow_insecure_http",
        kind="boolean",
        default=False,
        label="Allow http:// to a non-loopback host",
        help="Send the credentials in clear text to an http:// Base URL that is not loopback.",
    ),
    ConnectionExtra(
        name="max_pages",
        kind="integer",
        # 200,000 sessions at Bright Data's 100 per page (the largest real listings hold about 100,000),
        # 400,000 at Cloudflare's 200 (whose list holds only the running sessions, at most a few hundred).
        default=2000,
        minimum=1,
        label="Max pages per listing",
        help="The most pages one listing fetches before it stops with an error naming this bound.",
        default_note="200,000 Bright Data sessions",
    ),
    ConnectionExtra(
        name="pages_in_flight",
        kind="integer",
        default=4,
        minimum=1,
        label="List pages in flight",
        help="How many list pages a listing fetches at once when the walk already knows they are "
        "needed (Bright Data: from the server's total). 1 fetches one page at a time.",
    ),
)
