"""The hook both platforms share: the connection, its settings and its test; its ``client`` lists, reads and closes."""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from contextlib import AbstractContextManager, contextmanager
from functools import cache, cached_property
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_browsersessions import CONNECTION_TYPES
from airflow_provider_browsersessions.client import BrowserSessionsClient, SessionIterator
from airflow_provider_browsersessions.compat import aget_connection
from airflow_provider_browsersessions.exceptions import (
    ApiError,
    AuthenticationError,
    ConnectionConfigError,
    InvalidQueryError,
    MalformedResponseError,
    NotFoundError,
    TransportError,
)
from airflow_provider_browsersessions.hostnames import is_loopback_host
from airflow_provider_browsersessions.paging import DEFAULT_PAGES_IN_FLIGHT
from airflow_provider_browsersessions.platforms.base import DEFAULT_MAX_PAGES, Platform, SessionWalk
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery
from airflow_provider_browsersessions.transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_REQUEST_DEADLINE,
    AsyncTransport,
    ClientSettings,
    RetryPolicy,
    SyncTransport,
    warn_if_unverified,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator

    from airflow.providers.common.compat.sdk import Connection

__all__ = [
    "BrowserSessionsHook",
    "aget_browser_sessions_hook",
    "get_browser_sessions_hook",
    "hook_class_for_conn_type",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
#: The Test button's deadline per attempt: a person is waiting on the form.
TEST_CONNECTION_DEADLINE = 10.0


def _header_safe(value: str) -> bool:
    """Whether a credential can travel in an HTTP header as it is: printable ASCII only (both transports agree)."""
    return all(" " <= char <= "~" for char in value)


# A long listing says how far it got this often (pages), so a slow task is never silent for minutes.
class BrowserSessionsHook(BaseHook):
    """
    Base of the platform hooks: resolves the Airflow connection into settings, and tests it.

    Subclasses only say how a connection becomes credentials and which ``Platform`` to use. Listing,
    reading and closing sessions belong to :attr:`client` (a ``BrowserSessionsClient``); the hook's methods
    of the same names delegate to it, so tasks and triggers call the hook as before.

    :param conn_id: The Airflow connection id (defaults to the platform's default connection).
    :param page_size: Page size for listings (default: the API's maximum).
    :param retry: Retry policy overriding the connection's extras.
    """

    conn_name_attr = "conn_id"
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    default_base_url: ClassVar[str]
    #: Path prefix kept when the connection's host is a bare host name (Cloudflare: ``/client/v4``).
    default_path_prefix: ClassVar[str] = ""

    def __init__(
        self,
        *,
        conn_id: str | None = None,
        page_size: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self.page_size = page_size
        self._retry_override = retry
        self._connection: Connection | None = None

    # -- Airflow connection form (Airflow 2.11 reads these; Airflow 3 reads provider info) ------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden fields, labels and placeholders: the same data ``get_provider_info()`` declares."""
        behaviour = next(c for c in CONNECTION_TYPES if c["connection-type"] == cls.conn_type)["ui-field-behaviour"]
        return {
            "hidden_fields": list(behaviour["hidden-fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"]),
        }

    # -- connection -> settings ------------------------------------------------------------------

    @property
    def connection(self) -> Connection:
        """The Airflow connection, read once."""
        if self._connection is None:
            self._connection = self.get_connection(self.conn_id)
        return self._connection

    async def aload_connection(self) -> None:
        """Read the connection without blocking the event loop (the triggerer calls this first)."""
        if self._connection is None:
            self._connection = await aget_connection(self.conn_id)

    def config_problem(self, message: str) -> ConnectionConfigError:
        """An error that names this connection, so a person knows which form to fix."""
        return ConnectionConfigError(f"Connection {self.conn_id!r} ({self.hook_name}): {message}")

    def extra_value(self, name: str) -> Any:
        """An extra by its plain name, or by the ``extra__<conn_type>__<name>`` form older UIs wrote."""
        extra = self.connection.extra_dejson
        value = extra.get(name)
        if value in (None, ""):
            value = extra.get(f"extra__{self.conn_type}__{name}")
        return None if value == "" else value

    def _extra_number(self, name: str, default: float, *, integer: bool = False) -> float:
        value = self.extra_value(name)
        if value is None:
            return default
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        if not number >= 0 or (integer and not number.is_integer()):
            kind = "a non-negative integer" if integer else "a non-negative number"
            raise self.config_problem(f"extra {name!r} must be {kind}, got {value!r}")
        return number

    def _extra_bool(self, name: str, default: bool) -> bool:
        value = self.extra_value(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise self.config_problem(f"extra {name!r} must be true or false, got {value!r}")

    def base_url(self) -> str:
        """
        The API base URL: the default, or the connection's host.

        A host with a scheme (``http://127.0.0.1:54321/client/v4``) replaces the whole base URL; a bare
        host name gets ``https://``, the connection's port and the platform's default path prefix.

        :raises ConnectionConfigError: for user info in the Host (``user:pass@``), a scheme other than http(s),
            or ``http://`` to a host that is not loopback without the extra ``allow_insecure_http``.
        """
        host = (self.connection.host or "").strip()
        if not host:
            return self.default_base_url
        if "://" in host:
            url = host.rstrip("/")
        else:
            port = self.connection.port
            url = f"https://{host.rstrip('/')}{f':{port}' if port else ''}{self.default_path_prefix}"
        return self._checked_url(url)

    def _checked_url(self, url: str) -> str:
        try:
            parts = urlsplit(url)
            hostname = parts.hostname or ""
        except ValueError:
            raise self.config_problem("the Base URL (Host) is not a valid URL") from None
        # Never echo the netloc: it may hold a password.
        if "@" in parts.netloc:
            raise self.config_problem(
                "the Base URL (Host) holds a user name or password before '@'; remove it and put the "
                "credential in the Password field (it is sent in this provider's own header, never in the URL)"
            )
        if parts.scheme not in ("http", "https") or not hostname:
            raise self.config_problem("the Base URL (Host) must start with https:// (or http:// for loopback)")
        if (
            parts.scheme == "http"
            and not is_loopback_host(hostname)
            and not self._extra_bool("allow_insecure_http", False)
        ):
            raise self.config_problem(
                f"the Base URL is http:// to {hostname!r}, which is not loopback: the credentials would cross "
                'the network in clear text. Use https://, or set the extra {"allow_insecure_http": true} '
                "for a trusted network"
            )
        return url

    def header_credential(self, value: str, *, field: str) -> str:
        """
        A credential checked for what an HTTP header can carry; the error names the field, never the value.

        :param value: The credential, already stripped.
        :param field: The connection field it came from, as the form labels it ("Password", "Login").
        """
        if not _header_safe(value):
            raise self.config_problem(
                f"the {field} field holds a character that cannot be sent in an HTTP header (a line break, "
                "another control character or a non-ASCII character); paste the value again without it"
            )
        return value

    @abstractmethod
    def auth_headers(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """Authentication headers from the connection, and the secret values they contain."""

    @abstractmethod
    def build_platform(self) -> Platform:
        """The platform's wire logic, configured from the connection."""

    @cached_property
    def platform(self) -> Platform:
        """The platform's wire logic for this connection."""
        return self.build_platform()

    @cached_property
    def settings(self) -> ClientSettings:
        """Everything the transports need, resolved and validated from the connection."""
        headers, secrets = self.auth_headers()
        retry = self._retry_override or RetryPolicy(
            max_retries=int(self._extra_number("max_retries", DEFAULT_MAX_RETRIES, integer=True)),
            max_wait=self._extra_number("max_retry_wait", DEFAULT_MAX_RETRY_WAIT),
        )
        deadline = self._extra_number("request_deadline", DEFAULT_REQUEST_DEADLINE)
        max_bytes = self._extra_number("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES, integer=True)
        if deadline <= 0 or max_bytes <= 0:
            name = "request_deadline" if deadline <= 0 else "max_response_bytes"
            raise self.config_problem(f"extra {name!r} must be above 0")
        settings = ClientSettings(
            base_url=self.base_url(),
            headers=headers,
            secrets=secrets,
            timeout=self._extra_number("timeout", DEFAULT_TIMEOUT),
            connect_timeout=self._extra_number("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            verify=self._extra_bool("verify", True),
            retry=retry,
            request_deadline=deadline,
            max_response_bytes=int(max_bytes),
            pace=self._extra_bool("pace", True),
        )
        warn_if_unverified(self.platform, settings)
        return settings

    @cached_property
    def max_pages(self) -> int:
        """The most pages one walk fetches (extra ``max_pages``, default ``DEFAULT_MAX_PAGES``)."""
        value = self._extra_number("max_pages", DEFAULT_MAX_PAGES, integer=True)
        if value < 1:
            raise self.config_problem(f"extra 'max_pages' must be a positive integer, got {value:g}")
        return int(value)

    @cached_property
    def pages_in_flight(self) -> int:
        """The most list pages one listing fetches at once (extra ``pages_in_flight``, default 4; 1: one at a time)."""
        value = self._extra_number("pages_in_flight", DEFAULT_PAGES_IN_FLIGHT, integer=True)
        if value < 1:
            raise self.config_problem(f"extra 'pages_in_flight' must be a positive integer, got {value:g}")
        return int(value)

    @cached_property
    def client(self) -> BrowserSessionsClient:
        """The sessions client of this connection: its transports, and the listing, reading and closing calls."""
        return BrowserSessionsClient(self)

    # -- the provider-neutral API: thin delegates to ``client`` ------------------------------------------

    def get_conn(self) -> SyncTransport:
        """The client's one pooled sync transport."""
        return self.client.get_conn()

    def get_async_conn(self) -> AsyncTransport:
        """The client's one async transport (create it inside the event loop that will use it)."""
        return self.client.get_async_conn()

    def calls_within(self, seconds: float | None) -> AbstractContextManager[None]:
        """The sync calls made inside end their retry and pacing sleeps within ``seconds`` (see the client)."""
        return self.client.calls_within(seconds)

    def close(self) -> None:
        """Release the sync transports' connections."""
        self.client.close()

    async def aclose(self) -> None:
        """Release the async transport's connections."""
        await self.client.aclose()

    def plan_walk(
        self,
        query: SessionQuery | None = None,
        *,
        max_results: int | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> SessionWalk:
        """Validate everything and plan the listing; no request is sent."""
        return self.client.plan_walk(query, max_results=max_results, page_size=page_size, **filters)

    def iter_sessions(
        self,
        query: SessionQuery | None = None,
        *,
        max_results: int | None = None,
        page_size: int | None = None,
        read_ahead: bool = False,
        **filters: Any,
    ) -> SessionIterator:
        """
        Yield matching sessions lazily, fetching the next page only when needed.

        The parameters are those of
        :meth:`~airflow_provider_browsersessions.client.BrowserSessionsClient.iter_sessions`.
        """
        return self.client.iter_sessions(
            query, max_results=max_results, page_size=page_size, read_ahead=read_ahead, **filters
        )

    def list_sessions(
        self,
        query: SessionQuery | None = None,
        *,
        max_results: int | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> list[BrowserSession]:
        """Return matching sessions as a list (see :meth:`iter_sessions`)."""
        return self.client.list_sessions(query, max_results=max_results, page_size=page_size, **filters)

    def get_session(self, session_id: str) -> BrowserSession | None:
        """
        Read one session; None when the platform does not know it (404 or a ``null`` body).

        :param session_id: The platform's session id (quoted into the path).
        """
        return self.client.get_session(session_id)

    def aiter_sessions(
        self,
        query: SessionQuery,
        *,
        max_results: int | None = None,
        read_ahead: bool = False,
        server_judged: Iterable[str] = (),
    ) -> AsyncIterator[BrowserSession]:
        """The async twin of :meth:`iter_sessions`, for triggers: the same walk, driven by httpx."""
        return self.client.aiter_sessions(
            query, max_results=max_results, read_ahead=read_ahead, server_judged=server_judged
        )

    async def aget_session(self, session_id: str) -> BrowserSession | None:
        """The async twin of :meth:`get_session`."""
        return await self.client.aget_session(session_id)

    def close_session(self, session_id: str) -> str:
        """
        Close a session (Cloudflare: ``DELETE .../devtools/browser/{id}``).

        :param session_id: The session to close (quoted into the path).
        :return: The API's answer, e.g. ``"closing"`` or ``"closed"``.
        :raises NotSupportedError: before any request, when the platform's API cannot close sessions.
        :raises NotFoundError: when the platform does not know the session (see :meth:`is_unknown_session`).
        """
        return self.client.close_session(session_id)

    async def aclose_session(self, session_id: str) -> str:
        """The async twin of :meth:`close_session`."""
        return await self.client.aclose_session(session_id)

    def is_unknown_session(self, error: NotFoundError) -> bool:
        """Whether a 404 on a session read means "no such session" (not a wrong account or path)."""
        return True

    def test_connection(self) -> tuple[bool, str]:
        """
        One cheap authenticated call; a message a person can act on, never a secret.

        :return: (success, message), as Airflow's "Test connection" expects.
        """
        try:
            settings = self.settings
            probe = self.platform.list_request(SessionQuery(), page_size=1)
            # A person is waiting on the form: one quick retry, never minutes of backoff or of a silent server.
            quick = dataclasses.replace(
                settings,
                retry=RetryPolicy(max_retries=1, max_wait=5.0),
                request_deadline=min(settings.request_deadline, TEST_CONNECTION_DEADLINE),
            )
            transport = SyncTransport(platform=self.platform, settings=quick)
            try:
                transport.fetch_json(probe)
            finally:
                transport.close()
        except ConnectionConfigError as err:
            return False, str(err)
        except AuthenticationError as err:
            return False, self.explain_auth_failure(err)
        except NotFoundError as err:
            return False, self.explain_not_found(err)
        except ApiError as err:
            return False, str(err)
        return (
            True,
            f"Connected to {self.platform.display_name} at {settings.base_url}: credentials accepted.",
        )

    def explain_auth_failure(self, error: AuthenticationError) -> str:
        """The message for rejected credentials, naming the field to fix."""
        return (
            f"{self.platform.display_name} rejected the credentials of connection {self.conn_id!r} "
            f"(HTTP {error.status}: {error.api_message}). {self.auth_fix()}"
        )

    def explain_not_found(self, error: NotFoundError) -> str:
        """The message for a 404 on the probe: usually a wrong base URL."""
        return (
            f"{self.platform.display_name} answered 404 at {self.api_host()}{error.path} "
            f"({error.api_message}) for connection {self.conn_id!r}. {self.not_found_fix(error)}"
        )

    # -- what to fix: the same words in "Test connection" and in a task's error ---------------------

    def auth_fix(self) -> str:
        """The connection fields to check when the platform rejects the credentials."""
        return "Check the Password field."

    def not_found_fix(self, error: NotFoundError) -> str:
        """What to check when a listing or the probe gets a 404: usually the Base URL."""
        return "Check the Base URL (Host field)."

    def fix_for(self, error: ApiError) -> str | None:
        """What to check in the connection for this error, when the connection is the likely cause."""
        if isinstance(error, AuthenticationError):
            return self.auth_fix()
        if isinstance(error, NotFoundError):
            return self.not_found_fix(error)
        if isinstance(error, TransportError):
            return "Check the Base URL (Host field) and that this host is reachable from where the task runs."
        if isinstance(error, MalformedResponseError):
            return f"Check that the Base URL (Host field) points at the {self.platform.display_name} API."
        return None  # the platform refused or failed the request itself: its message says why

    def api_host(self) -> str:
        """The base URL's host and port, for messages: never userinfo, path or query."""
        try:
            try:
                url = self.base_url()
            except ConnectionConfigError:
                # A refused Base URL (user info, clear text) still has a host worth naming; urlsplit drops the rest.
                url = (self.connection.host or "").strip()
            parts = urlsplit(url if "://" in url else f"https://{url}")
            port = parts.port
        except ValueError:
            return "an unparsable Base URL"
        return f"{parts.hostname or '?'}{f':{port}' if port else ''}"

    @contextmanager
    def explained_errors(self) -> Iterator[None]:
        """
        Platform errors raised inside leave naming this connection, its host and what to fix.

        The sync calls tasks make and the triggerer's async calls both go through it, so a deferred wait's
        error says the same as a poke's.
        """
        try:
            yield
        except ApiError as err:
            err.add_context(conn_id=self.conn_id, host=self.api_host(), hint=self.fix_for(err))
            raise


@cache
def _hook_classes() -> dict[str, type[BrowserSessionsHook]]:
    # The registry is CONNECTION_TYPES (the provider info Airflow reads): each entry names its hook class
    # by import path, resolved on first use, so this module never imports the platform hook modules.
    classes: dict[str, type[BrowserSessionsHook]] = {}
    for entry in CONNECTION_TYPES:
        module_name, _, class_name = entry["hook-class-name"].rpartition(".")
        classes[entry["connection-type"]] = getattr(import_module(module_name), class_name)
    return classes


def hook_class_for_conn_type(conn_type: str | None) -> type[BrowserSessionsHook]:
    """The hook class for one of this provider's connection types (``CONNECTION_TYPES``), or a clear error."""
    classes = _hook_classes()
    try:
        return classes[conn_type or ""]
    except KeyError:
        raise InvalidQueryError(
            "conn_id", f"a connection of type {' or '.join(sorted(classes))}, not {conn_type!r}"
        ) from None


def get_browser_sessions_hook(conn_id: str, **hook_kwargs: Any) -> BrowserSessionsHook:
    """
    The right hook for a connection, chosen by its type, so one operator serves both platforms.

    :param conn_id: An Airflow connection of type ``brightdata`` or ``cloudflare_browser_rendering``.
    :param hook_kwargs: Passed to the hook (``page_size``, ``retry``).
    """
    return hook_for_connection(conn_id, BaseHook.get_connection(conn_id), **hook_kwargs)


def hook_for_connection(conn_id: str, connection: Connection, **hook_kwargs: Any) -> BrowserSessionsHook:
    """
    The right hook for a connection already read (the API server reads it with Airflow's core model).

    :param conn_id: The connection's id.
    :param connection: The connection.
    :param hook_kwargs: Passed to the hook (``page_size``, ``retry``).
    """
    hook = hook_class_for_conn_type(connection.conn_type)(conn_id=conn_id, **hook_kwargs)
    hook._connection = connection
    return hook


async def aget_browser_sessions_hook(conn_id: str, **hook_kwargs: Any) -> BrowserSessionsHook:
    """The async twin of :func:`get_browser_sessions_hook`, for the triggerer (the connection read does not block)."""
    connection = await aget_connection(conn_id)
    hook = hook_class_for_conn_type(connection.conn_type)(conn_id=conn_id, **hook_kwargs)
    hook._connection = connection
    return hook
