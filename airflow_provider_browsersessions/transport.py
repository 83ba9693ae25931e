"""HTTP transports: one retry policy driving requests (in tasks) and httpx (in the triggerer)."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import requests
import tenacity

from airflow_provider_browsersessions import __version__
from airflow_provider_browsersessions.exceptions import ApiError, TransportError
from airflow_provider_browsersessions.platforms.base import ApiRequest, Platform, decode_response

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_RETRY_WAIT = 300.0

USER_AGENT = f"airflow-provider-browsersessions/{__version__}"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """
    When and how long to retry one request: 429, 5xx, connection errors and cut bodies.

    The server's ``Retry-After`` wins when it sends one; otherwise the wait grows exponentially
    with jitter. Both the number of retries and the total time spent waiting are bounded.

    :param max_retries: Retries after the first attempt.
    :param max_wait: Seconds of waiting, summed over all retries of one request, never exceeded.
    :param backoff: First backoff in seconds; it doubles per retry, plus up to as much jitter.
    :param max_backoff: Cap of a single backoff (a larger ``Retry-After`` is still honoured).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    max_wait: float = DEFAULT_MAX_RETRY_WAIT
    backoff: float = 0.5
    max_backoff: float = 30.0

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        # wait_exponential + wait_random: stable across tenacity 8 and 9 (wait_exponential_jitter renamed args).
        exponential = tenacity.wait_exponential(multiplier=self.backoff, max=self.max_backoff) + tenacity.wait_random(
            0, self.backoff
        )
        return float(exponential(state))

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number > self.max_retries:
            return True
        return state.idle_for + state.upcoming_sleep > self.max_wait

    def tenacity_kwargs(self, *, describe: str) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying`` and ``AsyncRetrying`` alike: the one policy both share."""

        def before_sleep(state: tenacity.RetryCallState) -> None:  # the error names the endpoint already
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s; retry %d of %d in %.2f s",
                error,
                state.attempt_number,
                self.max_retries,
                state.upcoming_sleep,
            )

        def give_up(state: tenacity.RetryCallState) -> Any:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, ApiError) and error.retryable:
                error.args = (f"{error.args[0]} (gave up after {state.attempt_number} attempt(s))",)
            if error is not None:
                raise error
            return None

        return {
            "retry": tenacity.retry_if_exception(lambda err: isinstance(err, ApiError) and err.retryable),
            "wait": self._wait,
            "stop": self._stop,
            "before_sleep": before_sleep,
            "retry_error_callback": give_up,
            "reraise": True,
        }


@dataclasses.dataclass(slots=True)
class TransportStats:
    """Requests sent and body bytes received, for log lines and benchmarks."""

    requests: int = 0
    bytes_received: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    """
    Everything a transport needs to reach a platform, resolved from an Airflow connection.

    :param base_url: Base URL without a trailing slash.
    :param headers: Authentication headers. Never shown in ``repr``.
    :param secrets: Values to redact from any error text. Never shown in ``repr``.
    :param timeout: Read timeout in seconds.
    :param connect_timeout: Connect timeout in seconds.
    :param verify: Verify TLS certificates.
    :param retry: The retry policy.
    """

    base_url: str
    headers: Mapping[str, str] = dataclasses.field(repr=False)
    secrets: tuple[str, ...] = dataclasses.field(repr=False, default=())
    timeout: float = 30.0
    connect_timeout: float = 10.0
    verify: bool = True
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)


def _redacted(error: ApiError, secrets: tuple[str, ...]) -> ApiError:
    # A proxy or an API can echo a request header back in its error text; never let a secret through.
    for secret in secrets:
        if secret and any(secret in str(arg) for arg in error.args):
            error.args = tuple(str(arg).replace(secret, "***") for arg in error.args)
            error.api_message = error.api_message.replace(secret, "***")
    return error


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


def _transport_error(platform: Platform, request: ApiRequest, err: Exception) -> TransportError:
    root = _root_cause(err)
    detail = str(root).split("\n", 1)[0]
    # urllib3 prefixes "HTTPConnection(host=..., port=...): "; the reason is what follows.
    detail = detail.rsplit("): ", 1)[-1][:200] or type(root).__name__
    return TransportError(
        platform=platform.display_name,
        method=request.method,
        path=request.path,
        status=None,
        message=f"{type(err).__name__}: {detail}",
    )


class SyncTransport:
    """
    Sends ``ApiRequest`` objects with one pooled ``requests.Session``, retrying by the policy.

    :param platform: The platform's wire logic (for decoding and messages).
    :param settings: Where and how to connect.
    """

    def __init__(self, *, platform: Platform, settings: ClientSettings) -> None:
        self.platform = platform
        self.settings = settings
        self.stats = TransportStats()
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._session.headers.update(settings.headers)
        self._session.verify = settings.verify

    def fetch_json(self, request: ApiRequest) -> Any:
        """Send the request (with retries) and return its decoded JSON body; raise ``ApiError`` on failure."""
        retrying = tenacity.Retrying(**self.settings.retry.tenacity_kwargs(describe=self._describe(request)))
        return retrying(self._once, request)

    def _once(self, request: ApiRequest) -> Any:
        try:
            response = self._session.request(
                request.method,
                self.settings.base_url + request.path,
                params=list(request.params),
                timeout=(self.settings.connect_timeout, self.settings.timeout),
                allow_redirects=False,
            )
            body = response.content
        except requests.RequestException as err:
            raise _redacted(_transport_error(self.platform, request, err), self.settings.secrets) from None
        return _decoded(self, request, response.status_code, response.headers, body)

    def _describe(self, request: ApiRequest) -> str:
        return f"{self.platform.display_name} API {request.describe()}"

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()


def _decoded(
    transport: SyncTransport | AsyncTransport, request: ApiRequest, status: int, headers: Any, body: bytes
) -> Any:
    """Count the response, then decode it (or raise its ``ApiError``, secrets redacted): both transports."""
    transport.stats.requests += 1
    transport.stats.bytes_received += len(body)
    try:
        return decode_response(
            transport.platform, request, status=status, headers=headers, body=body, secrets=transport.settings.secrets
        )
    except ApiError as err:
        raise _redacted(err, transport.settings.secrets) from None


class AsyncTransport:
    """
    The ``httpx.AsyncClient`` twin of ``SyncTransport`` for the triggerer's event loop (no blocking I/O).

    :param platform: The platform's wire logic.
    :param settings: Where and how to connect.
    """

    def __init__(self, *, platform: Platform, settings: ClientSettings) -> None:
        import httpx  # imported here: DAG files import operators at every parse, and need no httpx

        self.platform = platform
        self.settings = settings
        self.stats = TransportStats()
        self._httpx = httpx
        self._client: httpx.AsyncClient = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **settings.headers},
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            verify=settings.verify,
            follow_redirects=False,
        )

    async def fetch_json(self, request: ApiRequest) -> Any:
        """Send the request (with retries) and return its decoded JSON body; raise ``ApiError`` on failure."""
        kwargs = self.settings.retry.tenacity_kwargs(describe=f"{self.platform.display_name} API {request.describe()}")
        retrying = tenacity.AsyncRetrying(**kwargs)
        return await retrying(self._once, request)

    async def _once(self, request: ApiRequest) -> Any:
        try:
            response = await self._client.request(
                request.method, self.settings.base_url + request.path, params=list(request.params)
            )
        except self._httpx.HTTPError as err:
            raise _redacted(_transport_error(self.platform, request, err), self.settings.secrets) from None
        return _decoded(self, request, response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()
