"""The hook both platforms share: the connection, its settings and its test, and the sessions API users call."""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from functools import cache, cached_property
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_browsersessions import CONNECTION_TYPES
from airflow_provider_browsersessions.client import BrowserSessionsClient, ListingLimits, SessionIterator
from airflow_provider_browsersessions.compat import aget_connection
from airflow_provider_browsersessions.connection_extras import COMMON_EXTRAS
from airflow_provider_browsersessions.exceptions import (
    ApiError,
    AuthenticationError,
    ConnectionConfigError,
    ErrorContext,
    InvalidQueryError,
    MalformedResponseError,
    NotFoundError,
    TransportError,
)
from airflow_provider_browsersessions.hostnames import is_loopback_host
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery
from airflow_provider_browsersessions.transport import (
    ClientSettings,
    RetryPolicy,
    SyncTransport,
    warn_if_unverified,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator
    from contextlib import AbstractContextManager

    from airflow.providers.common.compat.sdk import Connection

    from airflow_provider_browsersessions.closing import SessionClose
    from airflow_provider_browsersessions.platforms.base import Platform

__all__ = [
    "BrowserSessionsHook",
    "aget_browser_sessions_hook",
    "get_browser_sessions_hook",
    "hook_class_for_conn_type",
]

#: The Test button's deadline per attempt: a person is waiting on the form.
TEST_CONNECTION_DEADLINE = 10.0


def _header_safe(value: str) -> bool:
    """Whether a credential can travel in an HTTP header as it is: printable ASCII only (both transports agree)."""
    return all(" " <= char <= "~" for char in value)


class BrowserSessionsHook(BaseHook):
    """
    Base of the platform hooks: lists, reads and closes sessions of one connection, and tests it.

    The hook resolves the Airflow connection (sync, or without blocking in the triggerer) into settings,
    limits and an error context, and builds an internal client from them that speaks HTTP; its methods are
    the API tasks, triggers and users call. Subclasses only say how a connection becomes credentials and
    which ``Platform`` to use.

    :param conn_id: The Airflow connection id (defaults to the platform's default connection).
    :param page_size: Page size for listings (default: the API's maximum).
    :param retry: Retry policy overriding the connection's extras.
    """

    conn_name_attr = "conn_id"
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    default_base_url: ClassVar[str]
    #: What a rejected secret is called in the messages ("API key" where the platform has one kind of secret).
    credential_name: ClassVar[str] = "credentials"
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

    def extra_setting(self, name: str) -> float | bool:
        """
        One of the common extras (``connection_extras.COMMON_EXTRAS``), checked; its default when unset.

        :param name: The extra's name.
        :raises ConnectionConfigError: naming this connection, the extra and what it accepts.
        """
        extra = COMMON_EXTRAS[name]
        value = self.extra_value(name)
        if value is None:
            return extra.default
        parsed = extra.parse(value)
        if parsed is None:
            raise self.config_problem(f"extra {name!r} must be {extra.allowed}, got {value!r}")
        return parsed

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
        if parts.scheme == "http" and not is_loopback_host(hostname) and not self.extra_setting("allow_insecure_http"):
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
        extra = self.extra_setting
        retry = self._retry_override or RetryPolicy(
            max_retries=int(extra("max_retries")), max_wait=float(extra("max_retry_wait"))
        )
        settings = ClientSettings(
            base_url=self.base_url(),
            headers=headers,
            secrets=secrets,
            timeout=float(extra("timeout")),
            connect_timeout=float(extra("connect_timeout")),
            verify=bool(extra("verify")),
            retry=retry,
            request_deadline=float(extra("request_deadline")),
            max_response_bytes=int(extra("max_response_bytes")),
            pace=bool(extra("pace")),
            errors=ErrorContext(conn_id=self.conn_id, host=self.api_host(), fix=self.fix_for),
        )
        warn_if_unverified(self.platform, settings)
        return settings

    @cached_property
    def limits(self) -> ListingLimits:
        """How listings page: ``page_size`` and the extras ``max_pages`` and ``pages_in_flight``."""
        return ListingLimits(
            page_size=self.page_size,
            max_pages=int(self.extra_setting("max_pages")),
            pages_in_flight=int(self.extra_setting("pages_in_flight")),
        )

    @cached_property
    def client(self) -> BrowserSessionsClient:
        """
        The internal client this hook's session calls go through, built from the resolved connection.

        Not API: call the hook's methods. Reading it reads the connection (sync); the async methods read it
        without blocking first.
        """
        return BrowserSessionsClient(
            platform=self.platform,
            settings=self.settings,
            limits=self.limits,
            log=self.log,
            is_unknown_session=self.is_unknown_session,
        )

    # -- the provider-neutral sessions API --------------------------------------------------------------

    def get_conn(self) -> SyncTransport:
        """The one pooled sync transport of this connection."""
        return self.client.get_conn()

    def calls_within(self, seconds: float | None) -> AbstractContextManager[None]:
        """
        The sync calls made inside end their retry and pacing sleeps within ``seconds``: a wait's deadline.

        A call that would have to sleep past it gives up with its last error; each attempt stays bounded by
        ``request_deadline``.

        :param seconds: Seconds from now; None leaves the calls unbounded (only the retry policy's own bounds).
        """
        return self.client.calls_within(seconds)

    def close(self) -> None:
        """Release the sync transports' connections (nothing to do when no call was made)."""
        # Never build the client to close it: that would read (and check) the connection in a ``finally``.
        if "client" in self.__dict__:
            self.client.close()

    async def aclose(self) -> None:
        """Release the async transport's connections (nothing to do when no call was made)."""
        if "client" in self.__dict__:
            await self.client.aclose()

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
        Yield matching sessions lazily, fetching the next page only when needed; ``.walk`` tells what was done.

        :param query: A ready ``SessionQuery``; or give the filters by name instead.
        :param max_results: Stop after this many sessions.
        :param page_size: Page size (default: the hook's, else the API maximum).
        :param read_ahead: The caller reads to the end (or stops only on an error): fetch the pages the walk
            is sure to need ahead, up to the extra ``pages_in_flight`` at once. Without it nothing is fetched
            before the caller asks past the page in hand, so stopping early never leaves a request unused.
        :raises InvalidQueryError: before any request, for a value that is not allowed.
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
        """Return matching sessions as a list (see :meth:`iter_sessions`; the pages are read ahead)."""
        return self.client.list_sessions(query, max_results=max_results, page_size=page_size, **filters)

    def get_session(self, session_id: str) -> BrowserSession | None:
        """
        Read one session; None when the platform does not know it (404 or a ``null`` body).

        :param session_id: The platform's session id (quoted into the path).
        """
        return self.client.get_session(session_id)

    def close_session(self, session_id: str) -> str:
        """
        Close a session (Cloudflare: ``DELETE .../devtools/browser/{id}``).

        :param session_id: The session to close (quoted into the path).
        :return: The API's answer, e.g. ``"closing"`` or ``"closed"``.
        :raises NotSupportedError: before any request, when the platform's API cannot close sessions.
        :raises NotFoundError: when the platform does not know the session (see :meth:`is_unknown_session`).
        """
        return self.client.close_session(session_id)

    def close_each(self, session_ids: Iterable[str]) -> Iterator[SessionClose]:
        """
        Close sessions one by one, yielding each one's outcome; an id the API refuses never stops the others.

        A close whose first attempt got no answer (a timeout, a reset connection, a 5xx) and whose retry
        then finds the session unknown was closed by that attempt (``closed``, not ``not_found``). The batch
        stops early, the rest ``not_attempted``, only when the API refuses the connection itself
        (credentials, a redirect, a wrong account) or gives no usable answer several ids in a row.

        :param session_ids: The sessions to close.
        :raises NotSupportedError: before any request, when the platform's API cannot close sessions.
        """
        return self.client.close_each(session_ids)

    async def aiter_sessions(
        self,
        query: SessionQuery,
        *,
        max_results: int | None = None,
        read_ahead: bool = False,
        server_judged: Iterable[str] = (),
    ) -> AsyncIterator[BrowserSession]:
        """
        The async twin of :meth:`iter_sessions`, for triggers: the same walk, driven by httpx.

        The connection is read without blocking the event loop before anything else.

        :param query: The query.
        :param max_results: Stop after this many sessions.
        :param read_ahead: As in :meth:`iter_sessions`.
        :param server_judged: Pushed-down filters whose server answer is final for this walk.
        """
        await self.aload_connection()
        sessions = self.client.aiter_sessions(
            query, max_results=max_results, read_ahead=read_ahead, server_judged=server_judged
        )
        try:
            async for session in sessions:
                yield session
        finally:
            # Closed here, not left to the garbage collector: its pages in flight end with it.
            await sessions.aclose()

    async def aget_session(self, session_id: str) -> BrowserSession | None:
        """The async twin of :meth:`get_session` (the connection is read without blocking first)."""
        await self.aload_connection()
        return await self.client.aget_session(session_id)

    async def aclose_session(self, session_id: str) -> str:
        """The async twin of :meth:`close_session` (the connection is read without blocking first)."""
        await self.aload_connection()
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
            # Its errors carry no connection context: the answer below words each one for the form.
            quick = dataclasses.replace(
                settings,
                retry=RetryPolicy(max_retries=1, max_wait=5.0),
                request_deadline=min(settings.request_deadline, TEST_CONNECTION_DEADLINE),
                errors=None,
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
            f"{self.platform.display_name} rejected the {self.credential_name} of connection {self.conn_id!r} "
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
