"""The sessions client of one connection: list, read and close, sync and async, over one walk per listing.

Internal: the hooks build it from a resolved connection and are the API users call. It knows nothing of
the hooks (no import of them), only what it is given: the platform, the settings, the listing limits, a
logger and what a 404 on a session means.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_browsersessions.closing import MAX_UNANSWERED_IN_A_ROW, CloseOutcome, SessionClose
from airflow_provider_browsersessions.exceptions import (
    ApiError,
    AuthenticationError,
    InvalidQueryError,
    NotFoundError,
    RedirectRefusedError,
    may_have_taken_effect,
)
from airflow_provider_browsersessions.paging import aiter_walk, iter_walk
from airflow_provider_browsersessions.platforms.base import (
    ApiRequest,
    ResponseShapeError,
    SessionWalk,
    shape_error,
)
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery, check_path_value
from airflow_provider_browsersessions.transport import AsyncTransport, ClientSettings, SyncTransport
from airflow_provider_browsersessions.warning_log import WarningLog

if TYPE_CHECKING:
    from airflow_provider_browsersessions.platforms.base import Platform

__all__ = ["BrowserSessionsClient", "ListingLimits", "SessionIterator"]

_PROGRESS_EVERY_PAGES = 10


class SessionIterator(Iterator[BrowserSession]):
    """
    Sessions, lazily, one page fetched at a time; ``walk`` tells what was fetched and filtered.

    :param walk: The walk being driven (its ``stats`` and ``describe()`` are live).
    :param sessions: The generator that drives it.
    """

    def __init__(self, walk: SessionWalk, sessions: Iterator[BrowserSession]) -> None:
        self.walk = walk
        self._sessions = sessions

    def __iter__(self) -> SessionIterator:
        return self

    def __next__(self) -> BrowserSession:
        return next(self._sessions)


class ProgressLog(WarningLog, Protocol):
    """A logger the ``logging`` way (a stdlib logger, or an Airflow hook's ``log``): warnings and progress."""

    def info(self, msg: Any, /, *args: Any) -> Any:
        """Log ``msg % args`` as information."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ListingLimits:
    """
    How a listing pages, from the connection's extras and the hook's arguments.

    :param page_size: Page size to ask for (None: the API's maximum).
    :param max_pages: The most pages one walk fetches (extra ``max_pages``).
    :param pages_in_flight: The most list pages one listing fetches at once (extra ``pages_in_flight``).
    """

    page_size: int | None
    max_pages: int
    pages_in_flight: int


def _check_session_id(session_id: Any) -> str:
    """Validate a session id before it goes into a path (it is quoted there, never trusted; '..' is refused)."""
    if not isinstance(session_id, str) or not session_id.strip():
        raise InvalidQueryError("session_id", f"a non-empty string, not {session_id!r}")
    return check_path_value(session_id, parameter="session_id")


def _reason(error: ApiError) -> str:
    """Why one close failed, in the API's words: ``HTTP 414: URI Too Long`` (the path and connection are known)."""
    return f"HTTP {error.status}: {error.api_message}" if error.status is not None else error.api_message


class BrowserSessionsClient:
    """
    Lists, reads and closes the sessions of one connection: the sync calls tasks make and their async twins.

    The hook resolves the connection into what this client is built from (the async path reads it without
    blocking first); the client owns the transports built from it and drives the platform's
    ``SessionWalk``: the sync side through pooled ``SyncTransport`` objects (one per page in flight for a
    pipelined listing), the async side through one ``AsyncTransport`` for the triggerer. Every error it
    raises names the connection, its host and what to fix (``settings.errors``), built so by the transports
    and the walks.

    :param platform: The platform's wire logic for this connection.
    :param settings: Where and how to connect, and the connection's error context.
    :param limits: How listings page.
    :param log: Where progress and odd values are logged (the hook's logger).
    :param is_unknown_session: Whether a 404 on a session means "no such session" (not a wrong account or path).
    """

    def __init__(
        self,
        *,
        platform: Platform,
        settings: ClientSettings,
        limits: ListingLimits,
        log: ProgressLog,
        is_unknown_session: Callable[[NotFoundError], bool],
    ) -> None:
        self.platform = platform
        self.settings = settings
        self.limits = limits
        self.log = log
        self._is_unknown_session = is_unknown_session
        self._transport: SyncTransport | None = None
        self._async_transport: AsyncTransport | None = None
        # More sync transports for pipelined listings: one per page in flight, each used by one thread at a time.
        self._page_transports: list[SyncTransport] = []
        self._calls_end: float | None = None

    # -- transports ---------------------------------------------------------------------------------------

    def get_conn(self) -> SyncTransport:
        """The one pooled sync transport."""
        if self._transport is None:
            self._transport = SyncTransport(platform=self.platform, settings=self.settings)
        self._transport.calls_end = self._calls_end
        return self._transport

    def _page_fetchers(self, count: int) -> list[Any]:
        """``count`` sync fetchers for a pipelined walk: the pooled transport and pooled extras (kept for reuse)."""
        while len(self._page_transports) < count - 1:
            self._page_transports.append(SyncTransport(platform=self.platform, settings=self.settings))
        for transport in self._page_transports:
            transport.calls_end = self._calls_end
        return [self.get_conn().fetch_json, *(t.fetch_json for t in self._page_transports[: count - 1])]

    @contextmanager
    def calls_within(self, seconds: float | None) -> Iterator[None]:
        """
        The sync calls made inside end their retry and pacing sleeps within ``seconds``: a wait's deadline.

        A poke-mode sensor's retries would otherwise honour a ``Retry-After`` (or back off) past its
        ``timeout``; with this, a call that would have to sleep past it gives up with its last error, which
        skips that poke. Each attempt itself stays bounded by ``request_deadline``.

        :param seconds: Seconds from now; None leaves the calls unbounded (only the retry policy's own bounds).
        """
        previous = self._calls_end
        self._calls_end = None if seconds is None else time.monotonic() + max(0.0, seconds)
        try:
            yield
        finally:
            self._calls_end = previous

    def get_async_conn(self) -> AsyncTransport:
        """The one async transport (create it inside the event loop that will use it)."""
        if self._async_transport is None:
            self._async_transport = AsyncTransport(platform=self.platform, settings=self.settings)
        return self._async_transport

    def close(self) -> None:
        """Release the sync transports' connections."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for transport in self._page_transports:
            transport.close()
        self._page_transports = []

    async def aclose(self) -> None:
        """Release the async transport's connections."""
        if self._async_transport is not None:
            await self._async_transport.aclose()
            self._async_transport = None

    # -- sessions -----------------------------------------------------------------------------------------

    def plan_walk(
        self,
        query: SessionQuery | None = None,
        *,
        max_results: int | None = None,
        page_size: int | None = None,
        server_judged: Iterable[str] = (),
        **filters: Any,
    ) -> SessionWalk:
        """Validate everything and plan the listing; no request is sent (``server_judged``: see ``SessionWalk``)."""
        return SessionWalk(
            self.platform,
            SessionQuery.build_or_take(query, filters),
            max_results=max_results,
            page_size=page_size or self.limits.page_size,
            max_pages=self.limits.max_pages,
            log=self.log,
            server_judged=server_judged,
            context=self.settings.errors,
        )

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

        :param query: A ready ``SessionQuery``; or give the filters by name instead.
        :param max_results: Stop after this many sessions.
        :param page_size: Page size (default: the API maximum).
        :param read_ahead: The caller reads to the end (or stops only on an error): fetch the pages the walk
            is sure to need ahead, up to the extra ``pages_in_flight`` at once. Without it nothing is fetched
            before the caller asks past the page in hand, so stopping early never leaves a request unused.
        :raises InvalidQueryError: before any request, for a value that is not allowed.
        """
        walk = self.plan_walk(query, max_results=max_results, page_size=page_size, **filters)
        return SessionIterator(
            walk, self._sessions_from_walk(walk, in_flight=self.limits.pages_in_flight if read_ahead else 1)
        )

    def _sessions_from_walk(self, walk: SessionWalk, *, in_flight: int = 1) -> Iterator[BrowserSession]:
        """Fetch the walk's pages (up to ``in_flight`` at once) and yield its sessions, logging progress."""
        for sessions in iter_walk(walk, self._page_fetchers(in_flight), in_flight=in_flight):
            yield from sessions
            stats = walk.stats
            if stats.pages % _PROGRESS_EVERY_PAGES == 0:
                self.log.info(
                    "%s: listing in progress: %d pages, %d sessions scanned, %d matched so far",
                    self.platform.display_name,
                    stats.pages,
                    stats.scanned,
                    stats.matched,
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
        return list(self.iter_sessions(query, max_results=max_results, page_size=page_size, read_ahead=True, **filters))

    def get_session(self, session_id: str) -> BrowserSession | None:
        """
        Read one session; None when the platform does not know it (404 or a ``null`` body).

        :param session_id: The platform's session id (quoted into the path).
        """
        request = self.platform.get_request(_check_session_id(session_id))
        try:
            payload = self.get_conn().fetch_json(request)
        except NotFoundError as err:
            if self._is_unknown_session(err):
                return None
            raise
        return self._parse_session(request, payload)

    async def aiter_sessions(
        self,
        query: SessionQuery,
        *,
        max_results: int | None = None,
        read_ahead: bool = False,
        server_judged: Iterable[str] = (),
    ) -> AsyncGenerator[BrowserSession]:
        """The async twin of :meth:`iter_sessions`, for triggers: the same walk, driven by httpx."""
        walk = self.plan_walk(query, max_results=max_results, server_judged=server_judged)
        in_flight = self.limits.pages_in_flight if read_ahead else 1
        pages = aiter_walk(walk, self.get_async_conn().fetch_json, in_flight=in_flight)
        try:
            async for sessions in pages:
                for session in sessions:
                    yield session
        finally:
            await pages.aclose()

    async def aget_session(self, session_id: str) -> BrowserSession | None:
        """The async twin of :meth:`get_session`."""
        request = self.platform.get_request(_check_session_id(session_id))
        try:
            payload = await self.get_async_conn().fetch_json(request)
        except NotFoundError as err:
            if self._is_unknown_session(err):
                return None
            raise
        return self._parse_session(request, payload)

    def close_session(self, session_id: str) -> str:
        """
        Close a session (Cloudflare: ``DELETE .../devtools/browser/{id}``).

        :param session_id: The session to close (quoted into the path).
        :return: The API's answer, e.g. ``"closing"`` or ``"closed"``.
        :raises NotSupportedError: before any request, when the platform's API cannot close sessions.
        :raises NotFoundError: when the platform does not know the session (see the hook's ``is_unknown_session``).
        """
        request = self.platform.close_request(_check_session_id(session_id))
        return self._parse_close(request, self.get_conn().fetch_json(request))

    def close_each(self, session_ids: Iterable[str]) -> Iterator[SessionClose]:
        """
        Close sessions one by one, yielding each one's outcome; an id the API refuses never stops the others.

        A close whose first attempt got no answer (a timeout, a reset connection, a 5xx) may have acted all
        the same: when its retry then finds the session unknown, that attempt closed it (``closed``, not
        ``not_found``). The batch stops early, the rest ``not_attempted``, only when the API refuses the
        connection itself (credentials, a redirect, a wrong account: every id would get the same answer) or
        gives no usable answer ``MAX_UNANSWERED_IN_A_ROW`` ids in a row.

        :param session_ids: The sessions to close.
        :raises NotSupportedError: before any request, when the platform's API cannot close sessions.
        """
        self.platform.check_can_close()
        stopped: str | None = None
        unanswered = 0
        for session_id in session_ids:
            if stopped is not None:
                yield SessionClose(session_id=session_id, outcome=CloseOutcome.NOT_ATTEMPTED, error=stopped)
                continue
            close, error = self._close_one(session_id)
            yield close
            unanswered = unanswered + 1 if close.outcome is CloseOutcome.FAILED else 0
            if isinstance(error, AuthenticationError | RedirectRefusedError | NotFoundError):
                stopped = f"the batch stopped: the API refused the connection itself ({error})"
            elif unanswered >= MAX_UNANSWERED_IN_A_ROW:
                stopped = f"the batch stopped: {unanswered} sessions in a row got no usable answer (last: {error})"

    def _close_one(self, session_id: str) -> tuple[SessionClose, ApiError | None]:
        """One close: its outcome, and the error behind it (None when it was closed or already gone)."""
        request = self.platform.close_request(_check_session_id(session_id))
        earlier: list[BaseException] = []
        try:
            payload = self.get_conn().fetch_json(request, on_retry=earlier.append)
            answer = self._parse_close(request, payload)
        except NotFoundError as err:
            if not self._is_unknown_session(err):  # a wrong account or path: not this session's answer
                return SessionClose(session_id=session_id, outcome=CloseOutcome.REFUSED, error=_reason(err)), err
            if any(may_have_taken_effect(attempt) for attempt in earlier):
                return SessionClose(session_id=session_id, outcome=CloseOutcome.CLOSED), None
            return SessionClose(session_id=session_id, outcome=CloseOutcome.NOT_FOUND), None
        except ApiError as err:
            # A 4xx is the API's answer about this id; anything else (5xx, 429 or no answer after the
            # retries, an unreadable body) is no usable answer.
            refused = err.status is not None and 400 <= err.status < 500 and not err.retryable
            outcome = CloseOutcome.REFUSED if refused else CloseOutcome.FAILED
            return SessionClose(session_id=session_id, outcome=outcome, error=_reason(err)), err
        return SessionClose(session_id=session_id, outcome=CloseOutcome.CLOSED, answer=answer), None

    async def aclose_session(self, session_id: str) -> str:
        """The async twin of :meth:`close_session`."""
        request = self.platform.close_request(_check_session_id(session_id))
        return self._parse_close(request, await self.get_async_conn().fetch_json(request))

    def _parse_close(self, request: ApiRequest, payload: Any) -> str:
        try:
            return self.platform.parse_close_body(payload)
        except ResponseShapeError as err:
            raise shape_error(self.platform, request, err, self.settings.errors) from None

    def _parse_session(self, request: ApiRequest, payload: Any) -> BrowserSession | None:
        try:
            return self.platform.parse_session_body(payload)
        except ResponseShapeError as err:
            raise shape_error(self.platform, request, err, self.settings.errors) from None
