"""HTTP transports: one retry policy driving requests (in tasks) and httpx (in the triggerer)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import tenacity
import urllib3

from airflow_provider_browsersessions import __version__, metrics
from airflow_provider_browsersessions.connection_extras import COMMON_EXTRAS
from airflow_provider_browsersessions.exceptions import (
    ApiError,
    ErrorContext,
    MalformedResponseError,
    RedirectRefusedError,
    RequestDeadlineError,
    ResponseTooLargeError,
    TransportError,
    is_retryable,
)
from airflow_provider_browsersessions.pacing import MAX_REQUEST_RETRY_AFTER, Pacer, pacer_for, parse_ratelimit
from airflow_provider_browsersessions.platforms.base import ApiRequest, Platform, decode_response
from airflow_provider_browsersessions.response_body import (
    ACCEPT_ENCODING,
    ERROR_BODY_LIMIT,
    READ_SIZE,
    BodyTooLarge,
    BoundedBody,
    UnsupportedEncoding,
)

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Mapping

    import httpx

# The defaults of the connection extras of the same names (their one table: ``connection_extras``).
DEFAULT_MAX_RETRIES = int(COMMON_EXTRAS["max_retries"].default)
DEFAULT_MAX_RETRY_WAIT = float(COMMON_EXTRAS["max_retry_wait"].default)
#: Seconds one attempt may take end to end: connect, headers and the whole body.
DEFAULT_REQUEST_DEADLINE = float(COMMON_EXTRAS["request_deadline"].default)
#: Decoded (decompressed) bytes one answer may have.
DEFAULT_MAX_RESPONSE_BYTES = int(COMMON_EXTRAS["max_response_bytes"].default)

USER_AGENT = f"airflow-provider-browsersessions/{__version__}"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """
    When and how long to retry one request: 429, 5xx, connection errors and cut bodies.

    The server's ``Retry-After`` wins when it asks for a positive wait (capped at ``MAX_REQUEST_RETRY_AFTER``);
    otherwise, and for ``0``, negative values, past dates and garbage, the wait grows exponentially with
    jitter. Both the number of retries and the total time spent waiting are bounded: a wait that would pass
    ``max_wait`` ends the retries at once with the last error.

    :param max_retries: Retries after the first attempt.
    :param max_wait: Seconds of waiting, summed over all retries of one request, never exceeded.
    :param backoff: First backoff in seconds; it doubles per retry, plus up to as much jitter.
    :param max_backoff: Cap of a single backoff (a larger ``Retry-After`` is still honoured).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    max_wait: float = DEFAULT_MAX_RETRY_WAIT
    backoff: float = 0.5
    max_backoff: float = 30.0

    def should_retry(self, error: BaseException) -> bool:
        """Whether a failed attempt is worth another (``exceptions.is_retryable`` decides)."""
        return is_retryable(error)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        # 0, a past date or a negative value would retry at once, again and again: only a real wait counts.
        if isinstance(retry_after, int | float) and retry_after > 0:
            return min(float(retry_after), MAX_REQUEST_RETRY_AFTER)
        # wait_exponential + wait_random: stable across tenacity 8 and 9 (wait_exponential_jitter renamed args).
        exponential = tenacity.wait_exponential(multiplier=self.backoff, max=self.max_backoff) + tenacity.wait_random(
            0, self.backoff
        )
        return float(exponential(state))

    def _stop(self, state: tenacity.RetryCallState, ends_at: float | None = None) -> bool:
        if state.attempt_number > self.max_retries:
            return True
        # A caller's own deadline (a sensor's timeout) ends the retries too: no backoff sleeps past it.
        if ends_at is not None and time.monotonic() + state.upcoming_sleep > ends_at:
            return True
        return state.idle_for + state.upcoming_sleep > self.max_wait

    def tenacity_kwargs(
        self, *, ends_at: float | None = None, on_retry: Callable[[BaseException], None] | None = None
    ) -> dict[str, Any]:
        """
        Arguments for ``tenacity.Retrying`` and ``AsyncRetrying`` alike: the one policy both share.

        :param ends_at: ``time.monotonic()`` by which the retries must be over (a wait's deadline), or None.
        :param on_retry: Called with each failed attempt's error before it is retried (a close learns that an
            earlier attempt may have acted).
        """

        def before_sleep(state: tenacity.RetryCallState) -> None:  # the error names the endpoint already
            error = state.outcome.exception() if state.outcome else None
            if on_retry is not None and error is not None:
                on_retry(error)
            log.warning(
                "%s; retry %d of %d in %.2f s",
                error,
                state.attempt_number,
                self.max_retries,
                state.upcoming_sleep,
            )

        def give_up(state: tenacity.RetryCallState) -> Any:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, ApiError) and self.should_retry(error):
                final = error.after_attempts(state.attempt_number)
                raise final.with_traceback(error.__traceback__) from error.__cause__
            if error is not None:
                raise error
            return None

        return {
            "retry": tenacity.retry_if_exception(self.should_retry),
            "wait": self._wait,
            "stop": lambda state: self._stop(state, ends_at),
            "before_sleep": before_sleep,
            "retry_error_callback": give_up,
        }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    """
    Everything a transport needs to reach a platform, resolved from an Airflow connection.

    :param base_url: Base URL without a trailing slash.
    :param headers: Authentication headers. Never shown in ``repr``.
    :param secrets: Values to redact from any error text. Never shown in ``repr``.
    :param timeout: Read timeout in seconds (per read; ``request_deadline`` bounds the whole attempt).
    :param connect_timeout: Connect timeout in seconds.
    :param verify: Verify TLS certificates.
    :param retry: The retry policy.
    :param request_deadline: Seconds one attempt may take end to end (connect, headers, whole body).
    :param max_response_bytes: Decoded bytes one answer may have.
    :param pace: Pace requests by the ``Ratelimit`` headers (see ``pacing.Pacer``).
    :param errors: The connection every error names, with its host and what to fix (None: the request only).
    """

    base_url: str
    headers: Mapping[str, str] = dataclasses.field(repr=False)
    secrets: tuple[str, ...] = dataclasses.field(repr=False, default=())
    timeout: float = float(COMMON_EXTRAS["timeout"].default)
    connect_timeout: float = float(COMMON_EXTRAS["connect_timeout"].default)
    verify: bool = True
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    request_deadline: float = DEFAULT_REQUEST_DEADLINE
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    pace: bool = True
    errors: ErrorContext | None = dataclasses.field(default=None, repr=False, compare=False)


def _root_cause(err: BaseException) -> BaseException:
    # requests wraps urllib3 wraps the socket error; the innermost one says what happened.
    seen: set[int] = set()
    current: BaseException = err
    while id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException) and current.args and isinstance(current.args[0], BaseException):
            inner = current.args[0]
        inner = inner if isinstance(inner, BaseException) else current.__cause__ or current.__context__
        if inner is None:
            break
        current = inner
    return current


def _transport_error(transport: SyncTransport | AsyncTransport, request: ApiRequest, err: Exception) -> TransportError:
    root = _root_cause(err)
    detail = str(root).split("\n", 1)[0]
    # A proxy's socket error can echo a request header back: redacted before the cut, so no prefix of a
    # secret survives it.
    for secret in transport.settings.secrets:
        if secret:
            detail = detail.replace(secret, "***")
    # urllib3 prefixes "HTTPConnection(host=..., port=...): "; the reason is what follows.
    detail = detail.rsplit("): ", 1)[-1][:200] or type(root).__name__
    return TransportError(
        platform=transport.platform.display_name,
        method=request.method,
        path=request.path,
        status=None,
        message=f"{type(err).__name__}: {detail}",
        context=transport.settings.errors,
    )


def _deadline_error(
    transport: SyncTransport | AsyncTransport, request: ApiRequest, deadline: float
) -> RequestDeadlineError:
    return RequestDeadlineError(
        platform=transport.platform.display_name,
        method=request.method,
        path=request.path,
        status=None,
        context=transport.settings.errors,
        message=(
            f"no complete answer within the request deadline of {deadline:g} s (connect, headers and body); "
            "raise the connection extra 'request_deadline' if the API or a proxy is this slow"
        ),
    )


def _body_error(
    transport: SyncTransport | AsyncTransport, request: ApiRequest, status: int, err: Exception
) -> ApiError:
    platform = transport.platform.display_name
    context = transport.settings.errors
    if isinstance(err, BodyTooLarge):
        cap = transport.settings.max_response_bytes
        return ResponseTooLargeError(
            platform=platform,
            method=request.method,
            path=request.path,
            status=status,
            message=(
                f"the answer is larger than {cap} bytes (decompressed), the connection extra 'max_response_bytes'; "
                "raise it if the platform really sends this much"
            ),
            context=context,
        )
    if isinstance(err, UnsupportedEncoding):
        return MalformedResponseError(
            platform=platform,
            method=request.method,
            path=request.path,
            status=status,
            message=f"the answer uses Content-Encoding {str(err)[:40]!r}, which was not asked for",
            context=context,
        )
    return MalformedResponseError(
        platform=platform,
        method=request.method,
        path=request.path,
        status=status,
        message=str(err)[:200],
        retryable=True,  # a corrupt compressed body is a cut or garbled transfer: worth another try
        context=context,
    )


def _new_body(transport: SyncTransport | AsyncTransport, status: int, headers: Mapping[str, str]) -> BoundedBody:
    # An error's text is cut to a few hundred characters: keep its first bytes, never the whole of it.
    failed = not 200 <= status < 300
    return BoundedBody(
        content_encoding=headers.get("Content-Encoding", ""),
        limit=ERROR_BODY_LIMIT if failed else transport.settings.max_response_bytes,
        truncate=failed,
    )


def warn_if_unverified(platform: Platform, settings: ClientSettings) -> None:
    """Log a WARNING when TLS verification is off (the hooks call it once, when they resolve their settings)."""
    if not settings.verify:
        log.warning(
            "TLS certificate verification is OFF for %s at %s (connection extra 'verify' is false): "
            "anyone on the path can read the credentials. Use it only for a trusted proxy.",
            platform.display_name,
            settings.base_url,
        )


class SyncTransport:
    """
    Sends ``ApiRequest`` objects with one pooled ``requests.Session``, retrying by the policy.

    Each attempt is bounded end to end by ``request_deadline`` (the body is streamed, each read's timeout
    is what is left of it) and its decoded size by ``max_response_bytes``. ``verify`` is passed with every
    request, so ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` can never turn a disabled verification back on
    (or the other way round); proxies from the environment still apply.

    :param platform: The platform's wire logic (for decoding and messages).
    :param settings: Where and how to connect.
    """

    def __init__(self, *, platform: Platform, settings: ClientSettings) -> None:
        self.platform = platform
        self.settings = settings
        self._session = requests.Session()
        self._session.headers.update(
            {"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING}
        )
        self._session.headers.update(settings.headers)
        self._session.verify = settings.verify
        # URL user info would make requests replace our Authorization header with Basic auth (hooks refuse it
        # too); and a .netrc must never add credentials of its own.
        self._session.auth = lambda prepared: prepared
        self._pacer: Pacer | None = (
            pacer_for(base_url=settings.base_url, secrets=settings.secrets) if settings.pace else None
        )
        #: ``time.monotonic()`` by which retry and pacing sleeps must end (a sensor's deadline); None: no bound.
        self.calls_end: float | None = None

    def fetch_json(self, request: ApiRequest, *, on_retry: Callable[[BaseException], None] | None = None) -> Any:
        """
        Send the request (with retries) and return its decoded JSON body; raise ``ApiError`` on failure.

        :param request: The request.
        :param on_retry: Called with each failed attempt's error before it is retried.
        """
        retrying = tenacity.Retrying(**self.settings.retry.tenacity_kwargs(ends_at=self.calls_end, on_retry=on_retry))
        return retrying(self._once, request)

    @metrics.counted_request
    def _once(self, request: ApiRequest) -> Any:
        if self._pacer is not None:
            pause = min(self._pacer.delay(), self.settings.request_deadline)
            if self.calls_end is not None:
                pause = min(pause, max(0.0, self.calls_end - time.monotonic()))
            metrics.paced(platform=self.platform.name, seconds=pause)
            time.sleep(pause)
        started = time.monotonic()
        deadline = self.settings.request_deadline

        def left() -> float:
            return deadline - (time.monotonic() - started)

        try:
            response = self._session.request(
                request.method,
                self.settings.base_url + request.path,
                params=list(request.params),
                data=request.body,
                headers=_body_headers(request),
                timeout=(min(self.settings.connect_timeout, left()), min(self.settings.timeout, left())),
                allow_redirects=False,
                stream=True,
                verify=self.settings.verify,
            )
        except requests.RequestException as err:
            if left() <= 0:
                raise _deadline_error(self, request, deadline) from None
            raise _transport_error(self, request, err) from None
        complete = False
        try:
            body, complete = self._read_body(request, response, left)
        finally:
            # A body read to its end gives the connection back to the pool; anything else (a cut error body,
            # a cap, a deadline) leaves unread bytes on it, so it is closed.
            if complete:
                response.raw.release_conn()
            else:
                response.close()
        return _decoded(self, request, response.status_code, response.headers, body)

    def _read_body(self, request: ApiRequest, response: requests.Response, left: Any) -> tuple[bytes, bool]:
        """The decoded body, and whether it was read to its end (not cut at the error-body limit)."""
        try:
            body = _new_body(self, response.status_code, response.headers)
            while not body.full:
                remaining = left()
                if remaining <= 0:
                    raise _deadline_error(self, request, self.settings.request_deadline)
                # Each read waits at most what is left of the deadline; read1 returns what arrived, so a
                # trickling server cannot hold one read open for a whole buffer's worth of seconds.
                sock = getattr(getattr(response.raw, "connection", None), "sock", None)
                if sock is not None:
                    sock.settimeout(min(self.settings.timeout, remaining))
                chunk = response.raw.read1(READ_SIZE, decode_content=False)
                if not chunk:
                    return body.finish(), True
                body.feed(chunk)
            return body.finish(), False
        except (BodyTooLarge, UnsupportedEncoding, ValueError) as err:
            raise _body_error(self, request, response.status_code, err) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            if left() <= 0:
                raise _deadline_error(self, request, self.settings.request_deadline) from None
            raise _transport_error(self, request, err) from None

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()


def _body_headers(request: ApiRequest) -> dict[str, str] | None:
    """``Content-Type`` for a request that carries a JSON body; None (nothing added) for the rest."""
    return None if request.body is None else {"Content-Type": "application/json"}


def _redirect_error(
    transport: SyncTransport | AsyncTransport, request: ApiRequest, status: int, headers: Any
) -> RedirectRefusedError:
    location = str(headers.get("Location") or "")
    try:
        host = urlsplit(location).hostname
    except ValueError:
        host = None
    # Only the host: a Location's query string can carry anything, a signed token included.
    target = f"to host {host!r}" if host else "to a path on the same host" if location else "with no Location"
    return RedirectRefusedError(
        platform=transport.platform.display_name,
        method=request.method,
        path=request.path,
        status=status,
        message=(
            f"redirected {target}; redirects are refused on purpose, so the credentials are never sent to "
            "another host: set the connection's Base URL to where the API really is"
        ),
        context=transport.settings.errors,
    )


def _decoded(
    transport: SyncTransport | AsyncTransport, request: ApiRequest, status: int, headers: Any, body: bytes
) -> Any:
    """Decode a response (or raise its ``ApiError``, secrets redacted) after the pacer saw it: both transports."""
    if transport._pacer is not None:
        transport._pacer.observe(headers)
    remaining, _, quota = parse_ratelimit(headers)  # never raises: garbage is read as no budget
    metrics.budget_seen(platform=transport.platform.name, remaining=remaining, quota=quota)
    if 300 <= status < 400:
        raise _redirect_error(transport, request, status, headers)
    return decode_response(
        transport.platform,
        request,
        status=status,
        headers=headers,
        body=body,
        secrets=transport.settings.secrets,
        context=transport.settings.errors,
    )


@functools.cache
def _shared_ssl_context(*, verify: bool, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """
    One SSL context per process and trust setting, shared by every ``AsyncTransport``.

    Building one (loading the CA bundle) is most of the cost of a new ``httpx.AsyncClient``: tens of
    milliseconds of CPU, paid by each trigger's hook at its first read, which is often the final check at
    its deadline. Keyed on the variables httpx reads, so changing them still takes effect.

    :param verify: Verify TLS certificates.
    :param cert_file: ``SSL_CERT_FILE`` (httpx's trust_env default honours it).
    :param cert_dir: ``SSL_CERT_DIR``.
    """
    import httpx

    del cert_file, cert_dir  # the cache key only: httpx reads them from the environment
    return httpx.create_ssl_context(verify=verify)


class AsyncTransport:
    """
    The ``httpx.AsyncClient`` twin of ``SyncTransport`` for the triggerer's event loop (no blocking I/O).

    Each attempt runs under ``asyncio.timeout(request_deadline)``; the raw body is read in pieces and
    decoded by the same ``BoundedBody`` as the sync side.

    :param platform: The platform's wire logic.
    :param settings: Where and how to connect.
    """

    def __init__(self, *, platform: Platform, settings: ClientSettings) -> None:
        import httpx  # imported here: DAG files import operators at every parse, and need no httpx

        self.platform = platform
        self.settings = settings
        self._httpx = httpx
        self._client: httpx.AsyncClient = httpx.AsyncClient(
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
                **settings.headers,
            },
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            verify=_shared_ssl_context(
                verify=settings.verify,
                cert_file=os.environ.get("SSL_CERT_FILE"),
                cert_dir=os.environ.get("SSL_CERT_DIR"),
            ),
            follow_redirects=False,
            # A no-op auth: httpx would otherwise turn URL user info into Basic auth over our header.
            auth=httpx.Auth(),
        )
        self._pacer: Pacer | None = (
            pacer_for(base_url=settings.base_url, secrets=settings.secrets) if settings.pace else None
        )

    async def fetch_json(self, request: ApiRequest) -> Any:
        """Send the request (with retries) and return its decoded JSON body; raise ``ApiError`` on failure."""
        retrying = tenacity.AsyncRetrying(**self.settings.retry.tenacity_kwargs())
        return await retrying(self._once, request)

    @metrics.acounted_request
    async def _once(self, request: ApiRequest) -> Any:
        if self._pacer is not None:
            pause = min(self._pacer.delay(), self.settings.request_deadline)
            metrics.paced(platform=self.platform.name, seconds=pause)
            await asyncio.sleep(pause)
        deadline = self.settings.request_deadline
        try:
            async with asyncio.timeout(deadline):
                status, headers, body = await self._exchange(request)
        except TimeoutError:
            raise _deadline_error(self, request, deadline) from None
        except self._httpx.HTTPError as err:
            raise _transport_error(self, request, err) from None
        return _decoded(self, request, status, headers, body)

    async def _exchange(self, request: ApiRequest) -> tuple[int, httpx.Headers, bytes]:
        url = self.settings.base_url + request.path
        async with self._client.stream(
            request.method, url, params=list(request.params), content=request.body, headers=_body_headers(request)
        ) as response:
            try:
                body = _new_body(self, response.status_code, response.headers)
                async for chunk in response.aiter_raw(READ_SIZE):
                    body.feed(chunk)
                    if body.full:
                        break
                return response.status_code, response.headers, body.finish()
            except (BodyTooLarge, UnsupportedEncoding, ValueError) as err:
                raise _body_error(self, request, response.status_code, err) from None

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()
