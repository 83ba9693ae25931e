"""What a platform gives the emulator: paths and handler, error shapes, records, seeding, settings, budget."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping

    from airflow_provider_browsersessions.testing.emulator.faults import RateBudget
    from airflow_provider_browsersessions.testing.emulator.responses import Reply
    from airflow_provider_browsersessions.testing.emulator.store import SessionStore, StoredSession


class EmulatorState(Protocol):
    """What a platform API reads of the running emulator: its data, its clock, its settings and options."""

    store: SessionStore
    #: Every platform's settings by name (``brightdata_api_key``), as declared in ``PlatformApi.settings``.
    settings: dict[str, Any]
    #: Every platform's optional body shapes by name (``cloudflare_envelope``), see ``PlatformApi.options``.
    options: dict[str, bool]

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
    :param body: The request body as sent (an update's JSON, e.g. a release); empty for most calls.
    """

    method: str
    segments: list[str]
    query: dict[str, list[str]]
    headers: Any  # http.server gives an email.message.Message: a mapping that only needs ``get`` here
    raw_path: str
    body: bytes = b""

    def params(self) -> dict[str, str]:
        """The query with the last value of each name, as the APIs read it."""
        return {name: values[-1] for name, values in self.query.items()}


def _no_own_body(status: int) -> Reply | None:
    return None


@dataclasses.dataclass(frozen=True)
class PlatformApi:
    """
    One emulated platform, everything of it the emulator serves and stores: each platform's emulator module
    declares one, ``server.PLATFORM_APIS`` lists them (or ``Emulator(apis=...)``).

    :param name: The platform's name in the store, the request log, fault rules and the Python API (``"brightdata"``).
    :param title: Its name for people (``"Bright Data"``), in the command line's banner.
    :param owns: Whether a request path (its segments) belongs to this API; the first API that owns it serves it.
    :param handle: Serve a request that no fault replaced (checking its credentials).
    :param is_list: Whether a request lists sessions (where the ``repeat_page`` fault applies).
    :param repeated_page: The ``repeat_page`` fault's answer to a list request: the first page again.
    :param rate_limited: The API's 429 for the ``429`` fault, given the ``Retry-After`` value.
    :param raw_rate_limited: The API's 429 body for the ``429_raw`` fault (the server adds ``Retry-After``).
    :param record: A stored session's wire record at a time, given the server's URL (for URLs in records).
    :param new_fields: A new session's planned fields (``add_session`` and seeding), given a RNG and its outcome.
    :param ended_fields: The fields ``end_session`` sets, given the status and the platform's own keyword
        arguments (Bright Data's ``error``, Cloudflare's ``close_reason``).
    :param history: Seconds back over which the generator spreads the starts of ended sessions.
    :param connection: The Airflow connection (JSON form) for this API, given its base URL and the settings.
    :param default_conn_id: The connection id ``connection_env`` wires by default.
    :param base_path: The path of the connection's base URL under the server's URL (``"/client/v4"``).
    :param settings: The ``Emulator`` keyword arguments it adds, with their defaults (credentials, retention),
        each named with the platform's prefix; the API reads them in ``EmulatorState.settings``.
    :param options: Its optional body shapes (``set_options``), each off by default, named with its prefix.
    :param max_running: At most this many running sessions in a generated data set (its concurrency), if any.
    :param rate_budget: Its published rate budget, enforced and announced in ``Ratelimit`` headers, if any.
    :param server_error: The API's own body for a fault status (500, 503), or None for the generic one.
    :param showcase: Reshapes the data set an emulator starts with (``Emulator(sessions=N)``, the command line)
        so that each documented example shows its point, given the sessions, a seeded RNG and the time; only
        ended sessions change, and their number stays. None: the generated set as it is.
    """

    name: str
    title: str
    owns: Callable[[list[str]], bool]
    handle: Callable[[EmulatorState, ApiCall], Reply]
    is_list: Callable[[ApiCall], bool]
    repeated_page: Callable[[EmulatorState, ApiCall], Reply]
    rate_limited: Callable[[str], Reply]
    raw_rate_limited: Callable[[], Reply]
    record: Callable[[StoredSession, float, str], dict[str, Any]]
    new_fields: Callable[[random.Random, str], dict[str, Any]]
    ended_fields: Callable[..., dict[str, Any]]
    history: float
    connection: Callable[[str, Mapping[str, Any]], dict[str, Any]]
    default_conn_id: str
    base_path: str = ""
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    options: tuple[str, ...] = ()
    max_running: int | None = None
    rate_budget: RateBudget | None = None
    server_error: Callable[[int], Reply | None] = _no_own_body
    showcase: Callable[[list[StoredSession], random.Random, float], None] | None = None
