"""What a platform API gives the emulator's server: its paths, its handler and its own error shapes."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_browsersessions.testing.emulator.responses import Reply
    from airflow_provider_browsersessions.testing.emulator.store import SessionStore


class EmulatorState(Protocol):
    """What a platform API reads of the running emulator: its data, its clock, its credentials and options."""

    store: SessionStore
    options: dict[str, bool]
    brightdata_api_key: str
    cloudflare_api_token: str
    cloudflare_email: str
    cloudflare_global_key: str
    cloudflare_account_id: str
    cloudflare_retention: float

    def now(self) -> float:
        """The emulator clock."""
        ...

    @property
    def url(self) -> str:
        """The server's base URL (records carry it in their devtools URLs)."""
        ...


@dataclasses.dataclass(frozen=True)
class ApiCall:
    """
    One request to a platform API, split once by the server.

    :param method: ``GET``, ``POST`` or ``DELETE``.
    :param segments: The path's segments, each percent-decoded on its own (an encoded ``/`` stays inside).
    :param query: The query string, every value of every name.
    :param headers: The request headers (``get`` by name).
    :param raw_path: The path as sent, for messages that quote it.
    """

    method: str
    segments: list[str]
    query: dict[str, list[str]]
    headers: Any  # http.server gives an email.message.Message: a mapping that only needs ``get`` here
    raw_path: str

    def params(self) -> dict[str, str]:
        """The query with the last value of each name, as the APIs read it."""
        return {name: values[-1] for name, values in self.query.items()}


@dataclasses.dataclass(frozen=True)
class PlatformApi:
    """
    One platform API as the server routes to it: each API module declares one, ``server.PLATFORM_APIS`` lists them.

    :param name: The platform's name in the store, the request log and fault rules (``"brightdata"``).
    :param owns: Whether a request path (its segments) belongs to this API; the first API that owns it serves it.
    :param handle: Serve a request that no fault replaced.
    :param is_list: Whether a request lists sessions (where the ``repeat_page`` fault applies).
    :param repeated_page: The ``repeat_page`` fault's answer to a list request: the first page again.
    :param rate_limited: The API's 429 for the ``429`` fault, given the ``Retry-After`` value.
    :param raw_rate_limited: The API's 429 body for the ``429_raw`` fault (the server adds ``Retry-After``).
    :param server_error: The API's own body for a fault status (500, 503), or None for the generic one.
    :param sends_rate_budget: Every answer carries the rate-budget headers of the fault plan (Cloudflare).
    """

    name: str
    owns: Callable[[list[str]], bool]
    handle: Callable[[EmulatorState, ApiCall], Reply]
    is_list: Callable[[ApiCall], bool]
    repeated_page: Callable[[EmulatorState, ApiCall], Reply]
    rate_limited: Callable[[str], Reply]
    raw_rate_limited: Callable[[], Reply]
    server_error: Callable[[int], Reply | None] = lambda status: None
    sends_rate_budget: bool = False
