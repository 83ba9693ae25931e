"""Sans-I/O wire logic shared by the platforms: requests, responses, error decoding and the session walk."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import pendulum
from pendulum import DateTime

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.connection_extras import COMMON_EXTRAS
from airflow_provider_browsersessions.exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ErrorContext,
    InvalidQueryError,
    MalformedResponseError,
    NotFoundError,
    NotSupportedError,
    RateLimitedError,
    ServerError,
    TransportError,
    WalkLimitError,
    cut_text,
)
from airflow_provider_browsersessions.response_body import ERROR_BODY_LIMIT
from airflow_provider_browsersessions.sessions import (
    DOT_SEGMENTS,
    BrowserSession,
    SessionQuery,
    SessionStatus,
    check_path_value,
    sort_sessions,
)

if TYPE_CHECKING:
    from airflow_provider_browsersessions.warning_log import WarningLog

# An error text longer than this is cut: proxies answer with whole HTML pages.
_MAX_MESSAGE_CHARS = 300
#: Filters that only a platform that sends them to its server can honour (``Platform.check_query``).
SERVER_FILTERS = frozenset({"metadata"})
# A value quoted in a message about a record (an odd status, a broken timestamp) is cut to this.
_MAX_QUOTED_VALUE_CHARS = 60

#: Pages a walk fetches at most unless the connection's extra ``max_pages`` says otherwise (its default).
DEFAULT_MAX_PAGES = int(COMMON_EXTRAS["max_pages"].default)

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class ApiRequest:
    """
    One HTTP request to a platform, before any I/O.

    :param method: HTTP method.
    :param path: Path below the base URL, starting with ``/``, path parameters already quoted.
    :param params: Query parameters, in order.
    :param body: A JSON body, already encoded (Browserbase's release is a ``POST`` with one); None for none.
    """

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    def describe(self) -> str:
        """``METHOD /path`` for messages: the query string is left out on purpose."""
        return f"{self.method} {self.path}"


@dataclasses.dataclass(frozen=True, slots=True)
class OddValue:
    """
    A record field whose value this provider does not understand, kept in a safe form rather than
    failing the whole page (see docs/platforms.md, "Values the provider does not know").

    :param session_id: The record's session id; None when the record has no usable id (it is dropped).
    :param field: The field as the API names it.
    :param value: The value as sent, quoted and cut for messages (for a dropped record: what is wrong).
    :param kept_as: What the session holds instead, in words.
    """

    session_id: str | None
    field: str
    value: str
    kept_as: str

    def describe(self) -> str:
        """One line for the warning log."""
        if self.session_id is None:
            return f"a record is unusable ({self.value}): {self.kept_as}"
        return (
            f"session {self.session_id!r} has {self.field} {self.value}, not understood by this provider: "
            f"{self.kept_as}"
        )


def quoted_value(value: Any) -> str:
    """
    ``value`` quoted for messages, short whatever it is: a hostile value of megabytes (or an array nested
    thousands deep, whose ``repr`` would exhaust the stack) must not reach a log line whole.
    """
    if isinstance(value, str | bytes):
        if len(value) > _MAX_QUOTED_VALUE_CHARS:
            return f"{value[:_MAX_QUOTED_VALUE_CHARS]!r}…"
        return repr(value)
    if isinstance(value, list | tuple):
        return f"an array of {len(value):,} item(s)"
    if isinstance(value, Mapping):
        return f"an object of {len(value):,} key(s)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**_MAX_QUOTED_VALUE_CHARS:
        # Not str(): past 4,300 digits Python refuses to convert an int to text at all.
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
    return cut_text(repr(value), _MAX_QUOTED_VALUE_CHARS)


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """
    One decoded list page.

    :param sessions: The page's sessions, normalized, in the API's order.
    :param next_request: The request for the following page, or None when this was the last.
    :param total: How many sessions match server-side, when the API says.
    :param odd_values: Field values the parser did not understand and replaced with a safe form, and the
        records it dropped (``session_id`` None).
    :param dropped: Records left out because they have no usable session id.
    """

    sessions: list[BrowserSession]
    next_request: ApiRequest | None
    total: int | None = None
    odd_values: list[OddValue] = dataclasses.field(default_factory=list)
    dropped: int = 0


class ResponseShapeError(ValueError):
    """A 2xx body that does not have the documented shape; turned into ``MalformedResponseError``."""


def utc_datetime(value: datetime) -> DateTime:
    """
    ``value`` in UTC as a pendulum ``DateTime`` (naive means UTC), built field by field.

    Every session carries one or two times and listings run to 100 000 sessions: this is ten times
    cheaper than ``pendulum.parse`` or ``pendulum.instance``, with the same result.
    """
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return DateTime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=pendulum.UTC,
    )


def seconds_later(value: DateTime, seconds: float) -> DateTime:
    """
    ``value`` plus ``seconds``, as ``utc_datetime`` builds it; ``OverflowError`` past the year 9999.

    The arithmetic is done on a plain datetime: pendulum's own addition costs ten times as much per session.
    """
    plain = datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, tzinfo=UTC
    )
    return utc_datetime(plain + timedelta(seconds=seconds))


def path_segment(value: str, *, parameter: str) -> str:
    """
    ``value`` as exactly one URL path segment: every reserved character percent-encoded.

    ``quote`` leaves dots alone and ``.``/``..`` cannot be sent as a segment by every client (see
    ``DOT_SEGMENTS``), so those two are refused, naming ``parameter``.
    """
    return quote(check_path_value(value, parameter=parameter), safe="")


class Platform(ABC):
    """
    Everything that differs between platforms, without I/O: how a query becomes requests and how a
    response body becomes ``BrowserSession`` objects.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Its name becomes an allowed metric tag: metrics.py learns the platforms without importing them.
        if isinstance(vars(cls).get("name"), str):
            metrics.register_platform(cls.name)

    #: Short id used in ``BrowserSession.provider`` and in serialized triggers.
    name: ClassVar[str]
    #: Name used in messages.
    display_name: ClassVar[str]
    #: The largest page the list endpoint serves.
    max_page_size: ClassVar[int]
    #: Filters this platform cannot honour at all: using one is an error, never silently ignored.
    unsupported_filters: ClassVar[frozenset[str]] = frozenset()
    #: Pushed-down filters whose match rule is the API's own (undocumented): not re-judged locally.
    server_judged_filters: ClassVar[frozenset[str]] = frozenset()

    def check_query(self, query: SessionQuery) -> None:
        """
        Reject filters the platform cannot honour, naming them; called before any request.

        Besides ``unsupported_filters``, a filter of ``SERVER_FILTERS`` is refused where the platform does not
        send it: no other platform's records carry what it matches (user metadata), so it would match nothing.
        """
        refused = self.unsupported_filters | (SERVER_FILTERS - self.pushed_filters(query))
        for name in sorted(query.active_filters() & refused):
            raise InvalidQueryError(
                name,
                f"a filter {self.display_name} supports",
                message=(
                    f"Filter {name!r} is not supported on {self.display_name}: its session records do not "
                    "carry that information. Remove it, or use a connection of another platform."
                ),
            )

    #: Whether the list endpoint also returns ended sessions (history), not only the running ones.
    lists_ended_sessions: ClassVar[bool] = True

    def lists_newest_first(self, query: SessionQuery) -> bool:
        """Whether list pages for ``query`` come ordered by start time, newest first (default: unknown, no)."""
        return False

    @abstractmethod
    def pushed_filters(self, query: SessionQuery) -> frozenset[str]:
        """The filters of ``query`` that the list request sends to the server."""

    @abstractmethod
    def list_request(self, query: SessionQuery, *, page_size: int) -> ApiRequest:
        """The request for the first list page."""

    @abstractmethod
    def parse_list_page(self, request: ApiRequest, payload: Any) -> Page:
        """Decode one list page; raise ``ResponseShapeError`` when the body is not as documented."""

    @abstractmethod
    def get_request(self, session_id: str) -> ApiRequest:
        """The request that reads one session."""

    @abstractmethod
    def parse_session_body(self, payload: Any) -> BrowserSession | None:
        """Decode a single-session body; None when the API says the session does not exist."""

    #: Whether the API has an endpoint that closes a session.
    closes_sessions: ClassVar[bool] = False

    def console_url(self, *, session_id: str | None = None) -> str | None:
        """
        The platform's web console page for these sessions (a task's extra link); None when it has none.

        :param session_id: The one session the task concerns, when it names exactly one: a platform with a page
            per session links there; the others ignore it.
        """
        return None

    def check_can_close(self) -> None:
        """
        Refuse, before any request, to close sessions on a platform whose API cannot.

        :raises NotSupportedError: naming the platform.
        """
        if not self.closes_sessions:
            raise NotSupportedError(
                f"Closing sessions is not supported by this platform: the {self.display_name} API has no "
                "endpoint that closes a session. Nothing was sent."
            )

    def close_request(self, session_id: str) -> ApiRequest:
        """The request that closes one session (only where ``closes_sessions``)."""
        self.check_can_close()
        raise NotImplementedError(f"{type(self).__name__} says it closes sessions but builds no close request")

    def parse_close_body(self, payload: Any) -> str:
        """The API's answer to a close, as one word (e.g. ``"closing"``); ``ResponseShapeError`` when odd."""
        self.check_can_close()
        raise NotImplementedError(f"{type(self).__name__} says it closes sessions but reads no close answer")

    def error_reason(self, headers: Mapping[str, str]) -> str | None:
        """The reason an error answer gives in its headers rather than its body (default: none)."""
        return None

    def names_a_gone_session(self, request: ApiRequest, status: int, message: str) -> bool:
        """
        Whether an error answer (not a 404) means the session the request names is gone, read as a 404.

        Default: never. Browserbase answers a release of an ended session with an undocumented 4xx.
        """
        return False

    def pages_after(self, request: ApiRequest, *, total: int | None) -> Iterator[ApiRequest]:
        """
        The list requests that certainly follow ``request`` while the server's count stays ``total``.

        Default: none (the API says only on each page whether another one follows).

        :param request: A list request the walk will send.
        :param total: How many sessions the server last said match, when it says.
        """
        return iter(())

    def check_page_size(self, page_size: int) -> int:
        """Validate a page size against the API's limit, naming the parameter."""
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= self.max_page_size:
            raise InvalidQueryError(
                "page_size", f"an integer from 1 to {self.max_page_size} ({self.display_name}'s maximum)"
            )
        return page_size


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds (fractions tolerated) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
            when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # "-0000": UTC, RFC 5322
            seconds = (when - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, OverflowError, IndexError):  # garbage, a year the calendar cannot hold
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None  # NaN, and 1e400 read as infinity


def api_error_text(body: bytes, secrets: Sequence[str] = ()) -> str:
    """
    The API's own error text, whatever shape it came in.

    Cloudflare's envelope ``{"errors": [{"code", "message"}]}``, ``{"error": "..."}`` (Bright Data,
    Cloudflare tooling), ``{"message": "..."}`` and raw text or HTML are all understood.

    :param secrets: Values replaced by ``***`` before the text is cut to length (a proxy may echo them).
    """
    # Only the start is read for its text (the transports keep no more anyway): a 50 MB error page that reaches
    # this function another way costs ERROR_BODY_LIMIT bytes of work, not 50 MB.
    text = body[:ERROR_BODY_LIMIT].decode("utf-8", errors="replace").strip()
    if not text:
        return "(empty body)"
    try:
        data = json.loads(text)
    # RecursionError: JSON nested thousands deep; read as the text it is, like any body that is not JSON.
    except (ValueError, RecursionError):
        return _shorten(re.sub(r"<[^>]*>", " ", text), secrets)
    try:
        return _json_error_text(data, text, secrets)
    except RecursionError:  # an item nested just shallow enough to decode, too deep to write out
        return _shorten(text, secrets)


def _json_error_text(data: Any, text: str, secrets: Sequence[str]) -> str:
    """The error text of a decoded JSON error body (``api_error_text``)."""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            return _shorten("; ".join(_describe_error_item(item) for item in errors), secrets)
        for key in ("error", "message", "detail"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("code")
            if isinstance(value, str) and value:
                details = data.get("details")
                return _shorten(f"{value} ({details})" if isinstance(details, str) and details else value, secrets)
    return _shorten(text, secrets)


def _describe_error_item(item: Any) -> str:
    if isinstance(item, dict):
        code, message = item.get("code"), item.get("message")
        if code is not None and message:
            return f"{plain_text(message)} (code {plain_text(code)})"
        return plain_text(message or code or item) or ""
    return plain_text(item) or ""


def _shorten(text: str, secrets: Sequence[str] = ()) -> str:
    # Redact before cutting: a cut through an echoed credential would leave a prefix of it that no later
    # redaction of the whole value can recognise.
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return cut_text(text, _MAX_MESSAGE_CHARS)


def decode_response(
    platform: Platform,
    request: ApiRequest,
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str] = (),
    context: ErrorContext | None = None,
) -> Any:
    """
    Turn an HTTP response into the decoded JSON payload, or raise the matching ``ApiError``.

    Errors carry the platform, the request (never its query string or headers), the status and the
    API's own text, with ``secrets`` redacted, and the connection's ``context``. ``headers`` must be
    case-insensitive (requests and httpx both provide that).
    """
    if 200 <= status < 300:
        return _decode_json(platform, request, status, body, context)
    error_class: type[ApiError] = ApiError
    if status in (400, 422):
        error_class = BadRequestError
    elif status in (401, 403):
        error_class = AuthenticationError
    elif status == 404:
        error_class = NotFoundError
    elif status == 408:
        error_class = TransportError
    elif status == 429:
        error_class = RateLimitedError
    elif status >= 500 and status != 501:
        error_class = ServerError
    message = _error_message(platform, headers, body, secrets)
    if (
        error_class in (ApiError, BadRequestError)
        and 400 <= status < 500
        and platform.names_a_gone_session(request, status, message)
    ):
        error_class = NotFoundError
    raise error_class(
        platform=platform.display_name,
        method=request.method,
        path=request.path,
        status=status,
        message=message,
        retry_after=parse_retry_after(headers.get("Retry-After")),
        context=context,
    )


def _decode_json(
    platform: Platform, request: ApiRequest, status: int, body: bytes, context: ErrorContext | None
) -> Any:
    """A 2xx body's JSON; an empty, garbled or undecodable body is a ``MalformedResponseError``."""
    if not body.strip():
        # No endpoint of either API answers a 2xx without a body: an empty one is a proxy's or a cut answer,
        # never "null" (a Cloudflare read's null means "unknown session", so the difference matters).
        raise malformed_response(
            platform,
            request,
            "the body is empty where JSON was expected",
            status=status,
            retryable=True,
            context=context,
        )
    try:
        return json.loads(body)
    # RecursionError: JSON nested thousands deep (a broken or hostile proxy) exhausts the parser's stack.
    except (ValueError, RecursionError) as err:
        detail = f"{err.msg} at byte {err.pos}" if isinstance(err, json.JSONDecodeError) else str(err)
        # A cut or garbled body from a proxy is transient on an idempotent GET: worth a retry.
        message = f"the body is not valid JSON ({cut_text(detail, 200)})"
        raise malformed_response(platform, request, message, status=status, retryable=True, context=context) from None
    except MemoryError:
        # The same body would exhaust memory again: not retried. Our error, not a raw MemoryError, so the
        # sensor's and the triggers' handling applies.
        message = f"the body ({len(body):,} bytes) needs more memory to decode than this process has"
        raise malformed_response(platform, request, message, status=status, context=context) from None


def _error_message(platform: Platform, headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> str:
    """The API's error text from the body, with the reason some platforms send in headers (redacted, cut)."""
    try:
        text = api_error_text(body, secrets)
    except MemoryError:
        text = f"(an error body of {len(body):,} bytes, too large to read)"
    reason = platform.error_reason(headers)
    if not reason:
        return text
    reason = _shorten(reason, secrets)
    # The header's reason first: a long HTML body behind it would otherwise push it out of the cut.
    return reason if text == "(empty body)" else _shorten(f"{reason}; {text}", secrets)


def malformed_response(
    platform: Platform,
    request: ApiRequest,
    message: str,
    *,
    status: int = 200,
    retryable: bool = False,
    context: ErrorContext | None = None,
) -> MalformedResponseError:
    """
    The ``MalformedResponseError`` for an answer to ``request``: the platform, the endpoint (never its query
    string) and the status, built in this one place.

    :param platform: The platform that answered.
    :param request: The request it answered.
    :param message: What is wrong with the answer.
    :param status: The answer's HTTP status (a 2xx: the body is what is wrong).
    :param retryable: Whether the same request may well be answered right next time (a cut or garbled body,
        a page that left out a running session); a body of the wrong shape would come again, so not by default.
    :param context: The connection's context (id, host, what to fix), when the caller has one.
    """
    return MalformedResponseError(
        platform=platform.display_name,
        method=request.method,
        path=request.path,
        status=status,
        message=message,
        retryable=retryable,
        context=context,
    )


def shape_error(
    platform: Platform, request: ApiRequest, err: ResponseShapeError, context: ErrorContext | None = None
) -> MalformedResponseError:
    """Wrap a parser's complaint with the platform, the endpoint it came from and the connection's context."""
    return malformed_response(platform, request, f"unexpected response shape: {err}", context=context)


class _SeenSessions:
    """
    Which sessions a walk handed out already, to drop the duplicates that offset paging produces.

    Offset pages shift when sessions start during a walk, so a session can come again on a later page.
    For a newest-first walk the memory stays small whatever the listing's size: every session handed out
    started at or after the oldest start seen so far (the floor), so a later one that started after the
    floor is a shifted duplicate (or a session newer than the walk), and only the ids *at* the floor are
    kept to settle ties. Other orders keep every id.

    It also answers :meth:`handed_out` (was this session handed out before?) for the repeated-page rule,
    with the same memory: newest first, every session that started strictly between the floor and the
    newest start handed out (the ceiling) existed when the walk began and sat above the floor, so it was
    handed out; at the floor and at the ceiling, the ids there settle it.

    :param newest_first: The pages come ordered by start time, newest first.
    """

    def __init__(self, *, newest_first: bool) -> None:
        self.newest_first = newest_first
        self.floor: DateTime | None = None
        self.ids: set[str] = set()  # newest first: the ids started exactly at the floor; else every id
        self.ceiling: DateTime | None = None
        self.ceiling_ids: set[str] = set()  # newest first: the ids started exactly at the ceiling

    def handed_out(self, session: BrowserSession) -> bool:
        """Whether the walk surely handed this session out before (False when it cannot tell)."""
        started = session.started_at
        if not self.newest_first or started is None:
            return session.session_id in self.ids
        if self.floor is None or self.ceiling is None or not self.floor <= started <= self.ceiling:
            return False
        if self.floor < started < self.ceiling:
            return True
        return session.session_id in (self.ids if started == self.floor else self.ceiling_ids)

    def first_time(self, session: BrowserSession) -> bool:
        """Remember the session; False when it was handed out before."""
        started = session.started_at
        if not self.newest_first or started is None:
            if session.session_id in self.ids:
                return False
            self.ids.add(session.session_id)
            return True
        if self.floor is not None and (
            started > self.floor or (started == self.floor and session.session_id in self.ids)
        ):
            return False
        if self.floor is None or started < self.floor:
            self.floor, self.ids = started, set()
        self.ids.add(session.session_id)
        if self.ceiling is None or started > self.ceiling:
            self.ceiling, self.ceiling_ids = started, set()
        if started == self.ceiling:
            self.ceiling_ids.add(session.session_id)
        return True


@dataclasses.dataclass(slots=True)
class WalkStats:
    """What a walk did, for the one log line a task writes."""

    pages: int = 0
    scanned: int = 0
    duplicates: int = 0
    matched: int = 0
    returned: int = 0
    dropped: int = 0
    server_total: int | None = None
    truncated: bool = False


class OddValueTally:
    """
    The odd values of one listing, by field: one warning per field however many records had one
    (a listing of 100,000 sessions with a changed field logs one line, not 100,000).
    """

    def __init__(self) -> None:
        self._fields: dict[str, tuple[int, OddValue]] = {}

    def add(self, odd_values: Sequence[OddValue]) -> None:
        """Count a page's odd values; the first of each field is kept as the example."""
        for odd in odd_values:
            count, first = self._fields.get(odd.field, (0, odd))
            self._fields[odd.field] = (count + 1, first)

    def report(self, platform: Platform, log: WarningLog) -> None:
        """Log one warning per field counted so far, then forget them (a second call logs only what is new)."""
        for field, (count, first) in self._fields.items():
            log.warning(
                "%s: field %r not understood in %d record(s) of this listing, e.g. %s",
                platform.display_name,
                field,
                count,
                first.describe(),
            )
        self._fields = {}


class SessionWalk:
    """
    A lazy walk through a platform's list pages, without I/O.

    The driver asks :meth:`next_request`, performs it, and feeds the decoded payload to :meth:`consume_page`,
    which returns the new sessions to yield: de-duplicated by id (offset pages shift when sessions
    start while paging), filtered by what the server did not apply, and capped at ``max_results``.
    The sync hook and the async trigger drive the same walk, so the paging rules exist once.

    Every walk is bounded (docs/reliability.md, section 8): a page that asks for a next one but
    repeats the previous page, or is the second in a row to hold only sessions this walk already had,
    ends the walk with a ``MalformedResponseError``; and no walk fetches more than ``max_pages`` pages
    (a ``WalkLimitError`` naming the bound). Record values the parser kept in a safe form, and records it
    dropped, are logged as one warning per field when the walk ends (or is abandoned: the drivers in
    ``paging`` call :meth:`report_odd_values`).

    :param platform: The platform's wire logic.
    :param query: A validated query.
    :param max_results: Stop once this many sessions were returned (None: all).
    :param page_size: Page size to ask for (default: the API's maximum).
    :param max_pages: The most pages this walk fetches (default ``DEFAULT_MAX_PAGES``).
    :param log: Where the warnings about odd values go (default: this module's logger).
    :param server_judged: Pushed-down filters whose server answer is final for this walk, besides the
        platform's own ``server_judged_filters`` (an event watcher's history window keeps a session the
        server listed in it even when its record has no start time).
    :param context: The connection its errors name (None: the request only).
    """

    def __init__(
        self,
        platform: Platform,
        query: SessionQuery,
        *,
        max_results: int | None = None,
        page_size: int | None = None,
        max_pages: int | None = None,
        log: WarningLog | None = None,
        server_judged: Iterable[str] = (),
        context: ErrorContext | None = None,
    ) -> None:
        platform.check_query(query)
        self.context = context
        if max_results is not None and (
            isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1
        ):
            raise InvalidQueryError("max_results", f"a positive integer or None, not {max_results!r}")
        if max_pages is not None and (isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1):
            raise InvalidQueryError("max_pages", f"a positive integer or None, not {max_pages!r}")
        self.max_pages = max_pages or DEFAULT_MAX_PAGES
        self.log = log or logger
        self.platform = platform
        self.query = query
        self.max_results = max_results
        self.pushed = platform.pushed_filters(query)
        # Sort and order shape the walk, they filter nothing; server-judged filters are trusted.
        judged = platform.server_judged_filters | frozenset(server_judged)
        self.local = query.active_filters() - {"sort", "order"} - (self.pushed & judged)
        # A sort the server cannot do needs every session first (Cloudflare: bounded by concurrency).
        self._sort_locally = query.sort is not None and "sort" not in self.pushed
        self._held: list[BrowserSession] = []
        self._seen = _SeenSessions(newest_first=platform.lists_newest_first(query))
        self._next: ApiRequest | None = platform.list_request(
            query, page_size=platform.check_page_size(page_size or platform.max_page_size)
        )
        self.stats = WalkStats()
        # The previous page's fingerprint, and how many pages in a row brought only sessions already had.
        self._previous_page: int | None = None
        self._stale_pages = 0
        self._odd_values = OddValueTally()

    @property
    def filters_left_to_server(self) -> frozenset[str]:
        """Filters left to the server (not re-judged on the normalized sessions)."""
        return self.query.active_filters() - self.local

    def next_request(self) -> ApiRequest | None:
        """
        The next page to fetch, or None when the walk is over.

        :raises WalkLimitError: when the listing goes on past ``max_pages`` pages.
        """
        if self._next is not None and self.stats.pages >= self.max_pages:
            raise WalkLimitError(
                platform=self.platform.display_name,
                method=self._next.method,
                path=self._next.path,
                message=(
                    f"the listing did not end within {self.max_pages:,} pages ({self.stats.scanned:,} sessions "
                    f"scanned, {self.stats.matched:,} matched), so it was stopped rather than paged on. If the "
                    f"account really lists that many sessions, raise the connection extra 'max_pages' (now "
                    f"{self.max_pages:,}, default {DEFAULT_MAX_PAGES:,}) or narrow the filters"
                ),
                context=self.context,
            )
        return self._next

    def known_requests(self, limit: int) -> list[ApiRequest]:
        """
        Up to ``limit`` requests after :meth:`next_request` that this walk is already sure to send.

        Sure means: the server's last count says those pages exist, ``max_results`` cannot be reached
        before them (a page holds at most a page size of new matches), and ``max_pages`` allows them.
        Nothing is known before two pages were fed: the second shows the server pages on rather than
        answering the first page again (which ends the walk at its second request). Pipelined drivers
        fetch these ahead; nothing else is ever fetched ahead.
        """
        request = self._next
        if request is None or limit < 1 or self.stats.pages < 2:
            return []
        room = self.max_pages - self.stats.pages - 1
        if self.max_results is not None:
            page_size = int(dict(request.params).get("limit", "0") or 0)
            if page_size < 1:
                return []
            left = self.max_results - self.stats.returned
            # The next page itself is one of the ceil(left / page_size) pages still needed at least.
            room = min(room, -(-left // page_size) - 1)
        known: list[ApiRequest] = []
        for later in self.platform.pages_after(request, total=self.stats.server_total):
            if len(known) >= min(limit, room):
                break
            known.append(later)
        return known

    def consume_page(self, request: ApiRequest, payload: Any) -> list[BrowserSession]:
        """
        Consume one page's payload; return the sessions to hand out now.

        :raises MalformedResponseError: for a body not as documented, or a page that repeats this walk.
        """
        metrics.page_walked(platform=self.platform.name)
        try:
            page = self.platform.parse_list_page(request, payload)
        except ResponseShapeError as err:
            raise shape_error(self.platform, request, err, self.context) from None
        self.stats.pages += 1
        self._odd_values.add(page.odd_values)
        if page.dropped:
            self._refuse_to_drop_a_running_session(request, page)
        if page.next_request is not None and page.sessions:
            self._refuse_a_repeated_page(request, page)
        if page.total is not None:
            self.stats.server_total = page.total
        self._next = page.next_request
        fresh: list[BrowserSession] = []
        for session in page.sessions:
            self.stats.scanned += 1
            if not self._seen.first_time(session):
                self.stats.duplicates += 1
                continue
            if self.query.matches(session, skip=self.filters_left_to_server):
                self.stats.matched += 1
                fresh.append(session)
        if self._sort_locally:
            self._held.extend(fresh)
            if self._next is not None:
                return []
            fresh = sort_sessions(self._held, sort=str(self.query.sort), order=self.query.order or "desc")
            self._held = []
        fresh = self._cap(fresh)
        if self._next is None:
            self.report_odd_values()
        return fresh

    def report_odd_values(self) -> None:
        """Log the odd values counted so far, one warning per field (at the walk's end, or when it is left)."""
        self._odd_values.report(self.platform, self.log)

    def _refuse_to_drop_a_running_session(self, request: ApiRequest, page: Page) -> None:
        """
        Count the records a page dropped; in a walk of the running sessions, fail instead (retryable).

        A walk of running sessions answers "what still runs?" for waits and watchers: a record with no usable
        id may be any running session, so leaving it out could open a drain's gate while it runs. The error
        is retryable, so a wait skips this poll and goes on (docs/platforms.md).
        """
        self.stats.dropped += page.dropped
        if self.query.status != frozenset({SessionStatus.RUNNING}):
            return
        raise malformed_response(
            self.platform,
            request,
            f"{page.dropped} running session record(s) on this page have no usable id (e.g. "
            f"{next(odd.value for odd in page.odd_values if odd.session_id is None)}): a list of the running "
            "sessions cannot leave one out, so this answer is not used",
            retryable=True,
            context=self.context,
        )

    def _refuse_a_repeated_page(self, request: ApiRequest, page: Page) -> None:
        """
        End the walk at a page that would make it go round in circles (docs/reliability.md, section 8).

        A page that asks for another one is a repeat when it holds exactly the previous page's sessions
        (a server answering the same page again), or when it is the second page in a row to hold only
        sessions this walk already had. Offset drift moves a page by as many sessions as started (or
        ended) between two requests: a shift of less than a page always leaves something new on it; a
        shift of a whole page or more (a page size of sessions starting within one round trip) can bring
        nothing new once, and the next page moves on again, so one such page is let through.
        """
        fingerprint = hash(tuple(session.session_id for session in page.sessions))
        previous, self._previous_page = self._previous_page, fingerprint
        if fingerprint == previous:
            what = "exactly the previous page's sessions, in the same order"
        elif all(self._seen.handed_out(session) for session in page.sessions):
            self._stale_pages += 1
            if self._stale_pages < 2:
                return
            what = f"only sessions this listing already had ({len(page.sessions)}), for the second page in a row"
        else:
            self._stale_pages = 0
            return
        where = ", ".join(f"{key} {value}" for key, value in request.params if key in ("offset", "limit"))
        raise malformed_response(
            self.platform,
            request,
            f"pagination repeats itself: page {self.stats.pages} ({where}) holds {what} and asks for "
            "another page; the listing was stopped rather than paged forever",
            context=self.context,
        )

    def _cap(self, sessions: list[BrowserSession]) -> list[BrowserSession]:
        if self.max_results is None:
            self.stats.returned += len(sessions)
            return sessions
        room = self.max_results - self.stats.returned
        if len(sessions) >= room:
            if len(sessions) > room or self._next is not None:
                self.stats.truncated = True
            sessions = sessions[:room]
            self._next = None
        self.stats.returned += len(sessions)
        return sessions

    def describe(self) -> str:
        """One human line: what was pushed down, applied locally, fetched and found."""
        stats = self.stats
        pushed = ", ".join(sorted(self.pushed)) or "none"
        local = ", ".join(sorted(self.local - self.pushed)) or "none"
        line = (
            f"{self.platform.display_name}: filters pushed down [{pushed}], applied locally only [{local}]; "
            f"{stats.pages} page(s), {stats.scanned} scanned, {stats.duplicates} duplicate(s) dropped, "
            f"{stats.matched} matched, {stats.returned} returned"
        )
        if stats.dropped:
            line += f"; {stats.dropped} record(s) without a usable id dropped"
        if stats.truncated:
            line += f"; stopped at max_results={self.max_results}, more matching sessions were left behind"
            if stats.server_total is not None:
                line += f" (the server counts {stats.server_total} before local filters)"
        return line


def require_mapping(value: Any, what: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a JSON object, else raise ``ResponseShapeError`` naming ``what``."""
    if not isinstance(value, Mapping):
        raise ResponseShapeError(f"{what} should be a JSON object, got {_json_type(value)}")
    return value


def require_list(value: Any, what: str) -> Sequence[Any]:
    """Return ``value`` if it is a JSON array, else raise ``ResponseShapeError`` naming ``what``."""
    if not isinstance(value, list):
        raise ResponseShapeError(f"{what} should be a JSON array, got {_json_type(value)}")
    return value


# Session ids are UUIDs or similar: one longer than this is not an id but a broken or hostile record,
# and it would travel into request paths, XCom and trigger events.
MAX_SESSION_ID_CHARS = 1024


def require_session_id(record: Mapping[str, Any], key: str) -> str:
    """
    The record's session id under ``key``: a non-empty string of at most ``MAX_SESSION_ID_CHARS``, and not
    a ``DOT_SEGMENTS`` value (no request could name it).
    """
    session_id = record.get(key)
    if not isinstance(session_id, str) or not session_id:
        raise ResponseShapeError(f"a session has no {key}")
    if len(session_id) > MAX_SESSION_ID_CHARS:
        raise ResponseShapeError(
            f"a session has a {key} of {len(session_id):,} characters (at most {MAX_SESSION_ID_CHARS} expected)"
        )
    if session_id in DOT_SEGMENTS:
        raise ResponseShapeError(f"a session has the {key} {session_id!r}, which no request path can name")
    return session_id


#: The largest count a record may report (navigations, bandwidth): 2**53, the largest integer JSON tools
#: and float arithmetic (the view's charts) carry exactly. A larger one is not a count but a broken record.
MAX_RECORD_COUNT = 2**53
#: The longest duration a record may report, in seconds: ten years. Longer is not a browser session.
MAX_RECORD_SECONDS = 10 * 366 * 24 * 3600.0
#: An epoch number at or above this is in milliseconds where the unit is not fixed (year 5138 in seconds).
_EPOCH_MILLISECONDS_FROM = 10**11
#: A time text longer than this is not a time (and is not handed to a date parser whole).
_MAX_TIME_TEXT_CHARS = 64
# A number sent as text ("3", "5.0"): the API's intent is clear; anything else in text ("3s", "1e3", "NaN") is not.
_NUMBER_TEXT = re.compile(r"\s*\+?([0-9]{1,20})(\.[0-9]{1,20})?\s*")
_KEPT_AS_NONE = "kept as None"


def json_number(value: Any) -> int | float | None:
    """A JSON number, or a plain decimal number sent as text; None for anything else (booleans too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and (match := _NUMBER_TEXT.fullmatch(value)):
        return float(match.group(0)) if match.group(2) else int(match.group(1))
    return None


class RecordFields:
    """
    One record's optional fields, read leniently: a value that does not parse, or is out of range, becomes
    None and is noted in ``odd_values`` (docs/platforms.md, "Values the provider does not know"). Nothing
    here raises: one broken field harms only itself, never the record, the page or a wait on them.

    :param data: The record.
    :param session_id: Its id, for the notes.
    :param odd_values: Collects the values replaced.
    """

    def __init__(self, data: Mapping[str, Any], session_id: str, odd_values: list[OddValue]) -> None:
        self.data = data
        self.session_id = session_id
        self.odd_values = odd_values

    def odd(self, key: str, value: Any, kept_as: str = _KEPT_AS_NONE) -> None:
        """Note that ``key`` held ``value``, replaced as ``kept_as`` says."""
        self.odd_values.append(OddValue(self.session_id, key, quoted_value(value), kept_as))

    def unread(self, key: str, value: Any) -> None:
        """What a field that does not parse reads as: None, noted unless the record left it out (None)."""
        if value is not None:
            self.odd(key, value)

    def text(self, key: str) -> str | None:
        """A text field; anything but a string is None."""
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        self.unread(key, value)
        return None

    def count(self, key: str) -> int | None:
        """A whole number from 0 to ``MAX_RECORD_COUNT`` (``12.0`` and ``"12"`` read as 12)."""
        value = self.data.get(key)
        if type(value) is int and 0 <= value <= MAX_RECORD_COUNT:  # the usual case, first: listings are long
            return value
        number = json_number(value)
        if isinstance(number, float) and math.isfinite(number) and number.is_integer():
            number = int(number)
        if isinstance(number, int) and 0 <= number <= MAX_RECORD_COUNT:
            return number
        self.unread(key, value)
        return None

    def seconds(self, key: str) -> float | None:
        """A duration in seconds, from 0 to ``MAX_RECORD_SECONDS`` (``"5.0"`` reads as 5.0)."""
        value = self.data.get(key)
        number = json_number(value)
        # Compared before float(): an int of 400 digits does not convert.
        if number is not None and 0 <= number <= MAX_RECORD_SECONDS:
            return float(number)
        self.unread(key, value)
        return None

    def time(self, key: str, *, milliseconds: bool) -> DateTime | None:
        """
        A point in time: ISO 8601 text (UTC when it names no zone), or an epoch number (0 means "not set").

        :param milliseconds: Epoch numbers are milliseconds (Cloudflare); otherwise seconds, or milliseconds
            from ``_EPOCH_MILLISECONDS_FROM`` on.
        """
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str) and len(value) <= _MAX_TIME_TEXT_CHARS:
            parsed = _iso_time(value)  # first: the usual case, and "20251201" is a date, not an epoch number
            if parsed is not None:
                return parsed
        number = json_number(value)
        if number is not None:
            if number == 0:  # the reference's example sends 0 for every time: "not set", never 1970
                return None
            return self._epoch(key, value, number, milliseconds=milliseconds)
        self.unread(key, value)
        return None

    def _epoch(self, key: str, value: Any, number: float, *, milliseconds: bool) -> DateTime | None:
        # Before 1970 is no session's time, past 10**20 (ms) none in the calendar; NaN fails both comparisons,
        # and the bound comes first: an int of 400 digits does not even divide to a float.
        if 0 < number < 10**20:
            if milliseconds or number >= _EPOCH_MILLISECONDS_FROM:
                number = number / 1000
            try:
                return utc_datetime(datetime.fromtimestamp(number, UTC))
            except (ValueError, OverflowError, OSError):  # outside the calendar
                pass
        self.unread(key, value)
        return None


_DATE_FIRST = re.compile(r"[0-9]{4}-?[0-9]{2}")


def _iso_time(value: str) -> DateTime | None:
    """ISO 8601 text as a UTC time (naive means UTC); None when it is not a date-time in the calendar."""
    try:
        # The API's form ("2025-12-01T10:00:00Z") is what fromisoformat reads, fast; pendulum takes the rest.
        return utc_datetime(datetime.fromisoformat(value))
    except (ValueError, OverflowError):  # not ISO for fromisoformat, or a zone that leaves the calendar
        pass
    # A date first: pendulum reads "now", "today" and "12:00" as (a time of) the day it is asked, no record's time.
    if not _DATE_FIRST.match(value):
        return None
    try:
        parsed = pendulum.parse(value, tz="UTC")
        return utc_datetime(parsed) if isinstance(parsed, datetime) else None
    except (ValueError, TypeError, OverflowError):
        return None


def plain_text(value: Any) -> str | None:
    """A free-text field (an error's code or message) as text: numbers written out, arrays and objects as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | float) or (isinstance(value, int) and abs(value) < 10**_MAX_QUOTED_VALUE_CHARS):
        return json.dumps(value)
    try:
        return cut_text(json.dumps(value, default=str), _MAX_MESSAGE_CHARS * 4)
    except (ValueError, TypeError, RecursionError):  # nested thousands deep, or an int too long for text
        return quoted_value(value)


def read_records(
    records: Sequence[Any], parse: Any, *, id_key: str
) -> tuple[list[BrowserSession], list[OddValue], int]:
    """
    A page's records as sessions, one by one: a record that is not an object or has no usable id is
    dropped and noted; every other record is kept (its odd fields noted by ``parse``).

    :param records: The page's records.
    :param parse: The platform's ``parse_session(record, odd_values=...)``.
    :param id_key: The id's field, for the note about a dropped record.
    :return: The sessions, the notes, and how many records were dropped.
    """
    sessions: list[BrowserSession] = []
    odd_values: list[OddValue] = []
    dropped = 0
    for record in records:
        try:
            sessions.append(parse(record, odd_values=odd_values))
        except ResponseShapeError as err:
            dropped += 1
            odd_values.append(OddValue(None, id_key, str(err), "record dropped"))
    return sessions, odd_values, dropped


def read_one_record(platform: Platform, record: Any, parse: Any, log: WarningLog | None = None) -> BrowserSession:
    """
    One session read on its own (a ``GET`` of one id): parsed, and each odd field logged as one warning (a
    listing aggregates them instead: ``OddValueTally``).

    :param platform: The platform, named in the warnings.
    :param record: The session record.
    :param parse: The platform's ``parse_session(record, odd_values=...)``.
    :param log: Where the warnings go (the module's logger by default).
    """
    odd_values: list[OddValue] = []
    session: BrowserSession = parse(record, odd_values=odd_values)
    for odd in odd_values:
        (log or logger).warning("%s: %s", platform.display_name, odd.describe())
    return session


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)
