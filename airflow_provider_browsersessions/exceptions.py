"""The provider's exceptions: one small hierarchy naming platform, request, HTTP status and API text."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "BrowserSessionsError",
    "ConnectionConfigError",
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
    ) -> None:
        self.platform = platform
        self.method = method
        self.path = path
        self.status = status
        self.api_message = message = cut_text(message, MAX_ERROR_MESSAGE_CHARS)
        self.retry_after = retry_after
        self.conn_id: str | None = None
        self.host: str | None = None  # the API host, once ``add_context`` named it
        where = f"{platform} API {method} {cut_text(path, _MAX_PATH_CHARS)}"
        what = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{where} failed: {what}: {message}")

    def add_context(self, *, conn_id: str, host: str, hint: str | None) -> None:
        """
        Name the Airflow connection, the API host and what to fix, as "Test connection" does; once only.

        The error keeps its class, so retry decisions and ``except`` clauses are unchanged.

        :param conn_id: The Airflow connection id.
        :param host: The base URL's host (and port): never userinfo, path or query.
        :param hint: What to check, in the connection form's words (None: the platform's message says it).
        """
        if self.conn_id is not None:
            return
        self.conn_id = conn_id
        self.host = host
        self.args = (f"{self.args[0]}. Connection {conn_id!r}, host {host}" + (f": {hint}" if hint else "."),)


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

    def __init__(self, *, platform: str, method: str, path: str, message: str) -> None:
        super().__init__(platform=platform, method=method, path=path, status=None, message=message)
        # Not "failed: no response": every page came back, the bound ended the walk.
        self.args = (f"{platform} API {method} {cut_text(path, _MAX_PATH_CHARS)}: {self.api_message}",)


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
