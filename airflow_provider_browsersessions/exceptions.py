"""The provider's exceptions: one small hierarchy naming platform, request, HTTP status and API text."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Self

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "BrowserSessionsError",
    "ConnectionConfigError",
    "ErrorContext",
    "HostUnreachableError",
    "InvalidQueryError",
    "MalformedResponseError",
    "NotFoundError",
    "NotSupportedError",
    "RateLimitedError",
    "RedirectRefusedError",
    "RequestDeadlineError",
    "ResponseTooLargeError",
    "ServerError",
    "SessionsNotClosedError",
    "SessionsRefusedError",
    "TransportError",
    "WalkLimitError",
    "XComTooLargeError",
]

#: The longest ``ApiError`` message (and the longest path quoted in it): every error text of this provider
#: reaches logs, exception reprs and trigger events, so a hostile body or header cannot make it megabytes.
#: The API's own text inside it is cut shorter still (300 characters, ``platforms.base``).
MAX_ERROR_MESSAGE_CHARS = 1000
_MAX_PATH_CHARS = 200


def cut_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ErrorContext:
    """
    What every ``ApiError`` of one connection says besides its request: the connection, its host, the fix.

    The hook builds it from the connection; the transports, the walks and the client pass it to each error
    they build, so a task's error and a deferred wait's name the same connection and field to fix.

    :param conn_id: The Airflow connection id.
    :param host: The base URL's host (and port): never userinfo, path or query.
    :param fix: What to check in the connection for an error (None: the platform's message says it).
    """

    conn_id: str
    host: str
    fix: Callable[[ApiError], str | None] = dataclasses.field(repr=False, compare=False)


class BrowserSessionsError(AirflowException):
    """Base class of every error this provider raises."""


class InvalidQueryError(BrowserSessionsError, AirflowFailException, ValueError):
    """
    A parameter has a value the provider or the platform does not allow; raised before any request.

    It fails the task without retries: the same value would fail again.

    :param parameter: The parameter's name as the DAG author wrote it.
    :param allowed: What the parameter accepts, in words.
    :param message: The whole message, when "invalid value" is not the right words (e.g. a filter the
        platform cannot apply).
    """

    def __init__(self, parameter: str, allowed: str, *, message: str | None = None) -> None:
        self.parameter = parameter
        self.allowed = allowed
        super().__init__(message or f"Invalid value for {parameter!r}: expected {allowed}.")


class ConnectionConfigError(BrowserSessionsError, AirflowFailException, ValueError):
    """The Airflow connection lacks something the platform needs (e.g. an account id); no retries."""


class NotSupportedError(BrowserSessionsError, AirflowFailException):
    """The connection's platform has no API for what was asked (e.g. closing a Bright Data session); no request sent."""


class XComTooLargeError(BrowserSessionsError, AirflowFailException):
    """A listing's return value passed the operator's ``max_xcom_bytes``; nothing was pushed, no retries."""


class ApiError(BrowserSessionsError):
    """
    The platform answered with an error, or with a body this provider cannot read.

    :param platform: Human name of the platform, e.g. ``"Bright Data"``.
    :param method: HTTP method of the request.
    :param path: Request path, without the query string.
    :param status: HTTP status code (None when no response arrived).
    :param message: The API's own error text, or what went wrong.
    :param retry_after: Seconds the server asked us to wait, when it said.
    :param retryable: Whether a retry of the same request may succeed, when this error says so itself (a cut body);
        None leaves it to the class.
    :param context: The connection's context (id, host, what to fix), when the caller has one.
    """

    #: Whether a retry of the same request may succeed (429, 5xx, transport failures, cut bodies).
    retryable: bool = False

    def __init__(
        self,
        *,
        platform: str,
        method: str,
        path: str,
        status: int | None,
        message: str,
        retry_after: float | None = None,
        retryable: bool | None = None,
        context: ErrorContext | None = None,
    ) -> None:
        if retryable is not None:  # otherwise the class decides (a 429 or a 5xx is, a 400 is not)
            self.retryable = retryable
        self.platform = platform
        self.method = method
        self.path = path
        self.status = status
        self.api_message = cut_text(message, MAX_ERROR_MESSAGE_CHARS)
        self.retry_after = retry_after
        #: How many attempts the request had, once the retries gave up on it (see :meth:`after_attempts`).
        self.attempts: int | None = None
        self.conn_id = context.conn_id if context is not None else None
        self.host = context.host if context is not None else None  # the API host: never userinfo, path or query
        # The fix depends on the error's class and text (a Cloudflare 404 naming the account): asked last.
        self.hint = context.fix(self) if context is not None else None
        super().__init__(self._message())

    def _headline(self) -> str:
        """What failed and how: the platform, the endpoint, the status and the API's text."""
        what = f"HTTP {self.status}" if self.status is not None else "no response"
        return f"{self._where()} failed: {what}: {self.api_message}"

    def _where(self) -> str:
        return f"{self.platform} API {self.method} {cut_text(self.path, _MAX_PATH_CHARS)}"

    def _message(self) -> str:
        # The one place the message is composed: the request's facts, the retries', then the connection's.
        text = self._headline()
        if self.attempts is not None:
            text += f" (gave up after {self.attempts} attempt(s))"
        if self.conn_id is not None:
            text += f". Connection {self.conn_id!r}, host {self.host}" + (f": {self.hint}" if self.hint else ".")
        return text

    def after_attempts(self, attempts: int) -> Self:
        """
        This error as the last of ``attempts`` tries of its request: a new error of the same class and facts.

        The retry policy only knows an error was the last once it decides not to retry it, after the
        error was built; it raises this one instead, so no message is rewritten in place.

        :param attempts: The attempts made, the first included.
        """
        final = type(self).__new__(type(self))
        final.__dict__.update(self.__dict__)
        final.attempts = attempts
        BrowserSessionsError.__init__(final, final._message())
        return final


class AuthenticationError(ApiError, AirflowFailException):
    """
    401/403: the token, key or account is not accepted.

    It fails the task without retries, in operators and sensors alike: the same credentials would be
    refused again, and each retry would only wait its ``retry_delay`` to be told so.
    """


class NotFoundError(ApiError):
    """404: the session, account or path does not exist."""


class BadRequestError(ApiError):
    """400/422: the platform rejected a parameter."""


class RateLimitedError(ApiError):
    """429: the platform asks us to slow down (retried, honouring Retry-After)."""

    retryable = True


class ServerError(ApiError):
    """5xx: the platform failed (retried)."""

    retryable = True


class TransportError(ApiError):
    """No usable response: connection refused or reset, timeout, a body cut short (retried)."""

    retryable = True


class MalformedResponseError(ApiError):
    """The body is not what the API documents: not JSON, or the wrong shape (JSON syntax errors retried)."""


class RequestDeadlineError(TransportError):
    """One attempt did not get its whole answer within the connection's ``request_deadline`` (retried)."""


class ResponseTooLargeError(ApiError):
    """The (decompressed) body is larger than the connection's ``max_response_bytes``; never retried."""


class RedirectRefusedError(ApiError):
    """A 3xx answer: redirects are refused on purpose, so the credentials never travel to another host."""


class WalkLimitError(ApiError):
    """
    A listing did not end within the walk's page bound (the connection extra ``max_pages``).

    Every page answered; the walk stopped on purpose, so no result is silently truncated.
    """

    def __init__(
        self, *, platform: str, method: str, path: str, message: str, context: ErrorContext | None = None
    ) -> None:
        super().__init__(platform=platform, method=method, path=path, status=None, message=message, context=context)

    def _headline(self) -> str:
        # Not "failed: no response": every page came back, the bound ended the walk.
        return f"{self._where()}: {self.api_message}"


class SessionsNotClosedError(BrowserSessionsError):
    """
    A close batch ended with sessions not closed: refused by the API, unanswered, or not attempted.

    Every id was tried (unless the batch stopped because the API refused the connection itself or stopped
    answering); the per-id outcomes are the XCom ``outcomes``. Raised as is when a retry of the task may
    close more (an id got no usable answer); see ``SessionsRefusedError`` otherwise.
    """


class SessionsRefusedError(SessionsNotClosedError, AirflowFailException):
    """Every session not closed was refused by the API itself (a 4xx for that id): a retry would be refused too."""


class HostUnreachableError(BrowserSessionsError):
    """
    A wait got no answer at all from the API host (DNS failure, refused connection, a silent server) for
    longer than its ``unreachable_timeout``. The message names the host and the last error.

    Unlike a rejected key it keeps the task's retries: the host may come back.
    """


def is_retryable(error: BaseException) -> bool:
    """
    Whether another attempt may succeed: 429, 5xx, a transport failure, a cut or garbled body.

    The one place that decides it: a request's retries (``transport.RetryPolicy.should_retry``) and a
    wait's "skip this poll" (``waiting.skip_failed_poll``) both ask here. It lives beside the error classes
    (not in ``transport``) so DAG-parse-time imports of the waiting logic stay free of HTTP libraries.
    """
    return isinstance(error, ApiError) and error.retryable


def may_have_taken_effect(error: BaseException) -> bool:
    """
    Whether a failed attempt may have reached the API and acted, only its answer lost: a timeout, a reset or
    cut connection, a 5xx or a garbled body. Not a 429: the API refuses those before acting.

    A close retried after such an attempt and answered "unknown session" was closed by that attempt.
    """
    return is_retryable(error) and not isinstance(error, RateLimitedError)
