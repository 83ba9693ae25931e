"""Operators: list sessions of either platform and return them as XCom, or close sessions."""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_browsersessions.exceptions import InvalidQueryError, NotFoundError, XComTooLargeError
from airflow_provider_browsersessions.sessions import (
    FILTER_NAMES,
    RECORD_FIELDS,
    RUNNING_FILTERS,
    BrowserSession,
    SessionQuery,
    check_literal_filters,
    is_literal,
)
from airflow_provider_browsersessions.summary import SessionSummary
from airflow_provider_browsersessions.waiting import normalize_session_ids

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook

__all__ = [
    "CLOSE_FILTERS",
    "XCOM_WARN_BYTES",
    "CloseBrowserSessionsOperator",
    "ListBrowserSessionsOperator",
]

#: Above this many bytes of JSON the return value gets a warning: XCom lives in the metadata database.
XCOM_WARN_BYTES = 1_000_000

_XCOM_ADVICE = (
    "keep it small with fields=[...] (only the keys you read), max_results=N or narrower filters, "
    "or return nothing with do_xcom_push=False and read the 'summary' XCom"
)


def _parse_fields(fields: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """
    The projection a ``fields`` argument asks for: None (whole records) or known record keys.

    :param fields: A list of keys, or a rendered template's comma-separated text.
    :raises InvalidQueryError: for an empty list or a key a record does not have.
    """
    if fields is None or fields == "":
        return None
    if isinstance(fields, str):
        fields = [part.strip() for part in fields.split(",") if part.strip()]
    unknown = [name for name in fields if name not in RECORD_FIELDS]
    if unknown or not fields:
        allowed = ", ".join(RECORD_FIELDS)
        raise InvalidQueryError("fields", f"a non-empty list drawn from {allowed}; got {list(fields)!r}")
    return tuple(fields)


def _parse_positive_int(name: str, value: int | str | None) -> int | None:
    """
    A positive integer argument, or None; a rendered template's digits are accepted.

    :param name: The parameter named in the error.
    :param value: The value given.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():  # a rendered template
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidQueryError(name, f"a positive integer or None, not {value!r}")
    return value


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1_000_000:.1f} MB" if num_bytes >= 100_000 else f"{num_bytes} bytes"


class ListBrowserSessionsOperator(BaseOperator):
    """
    List browser sessions of a Cloudflare Browser Rendering or Bright Data connection.

    The hook is chosen by the connection's type, so the same operator serves both platforms. Filters
    the platform's API can apply are pushed down to it; the rest are applied to the normalized
    sessions. The return value (XCom ``return_value``) is a JSON-safe list of session dicts; XCom
    ``summary`` holds counts by status, total bandwidth, duration min/p50/p95/max, captcha outcomes
    and error codes of the sessions returned.

    .. seealso::
        The how-to guide ``docs/howto/listing.md``.

    :param conn_id: A ``brightdata`` or ``cloudflare_browser_rendering`` connection. (templated)
    :param status: One status or several (``running``, ``finished``, ``failed``). (templated)
    :param api_name: Bright Data zone name. (templated)
    :param started_after: Only sessions started at or after this datetime / ISO-8601 string,
        e.g. ``"{{ data_interval_start }}"``. (templated)
    :param started_before: Only sessions started at or before this. (templated)
    :param target_url: Bright Data target URL filter (matched by the API). (templated)
    :param end_url: Bright Data end URL filter (matched by the API). (templated)
    :param has_error: True: only sessions with an error; False: only those without. (templated)
    :param captcha: One or several captcha outcomes (``solved``, ``none``, ``failed``,
        ``detected``). (templated)
    :param min_duration: Minimum duration in seconds. (templated)
    :param max_duration: Maximum duration in seconds. (templated)
    :param min_bandwidth: Minimum billable bytes. (templated)
    :param sort: ``timestamp``, ``duration`` or ``bandwidth``. (templated)
    :param order: ``asc`` or ``desc``. (templated)
    :param where: Any further predicate ``Callable[[BrowserSession], bool]``, applied locally.
    :param fields: Keep only these keys of each record, to keep XCom small. (templated)
    :param max_results: Stop paging once this many sessions matched; the log says when more
        were left behind, and ``summary`` says ``truncated: true``. (templated)
    :param max_xcom_bytes: Fail the task, before anything is pushed, once the returned records exceed
        this many bytes of JSON. Without it, a return value above 1 MB (``XCOM_WARN_BYTES``) only logs
        a warning. (templated)
    :param page_size: Page size (default: the API's maximum).

    Literal (non-templated) filter values, ``fields``, ``max_results`` and ``max_xcom_bytes`` are
    validated when the operator is built, so a typo fails the DAG file's import; templated values are
    validated when the task runs, before the first request.
    """

    template_fields: Sequence[str] = (
        "conn_id",
        *FILTER_NAMES,
        "fields",
        "max_results",
        "max_xcom_bytes",
    )
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        conn_id: str,
        status: str | Sequence[str] | None = None,
        api_name: str | None = None,
        started_after: datetime | str | None = None,
        started_before: datetime | str | None = None,
        target_url: str | None = None,
        end_url: str | None = None,
        has_error: bool | None = None,
        captcha: str | Sequence[str] | None = None,
        min_duration: float | None = None,
        max_duration: float | None = None,
        min_bandwidth: int | None = None,
        sort: str | None = None,
        order: str | None = None,
        where: Callable[[BrowserSession], bool] | None = None,
        fields: Sequence[str] | None = None,
        max_results: int | None = None,
        max_xcom_bytes: int | None = None,
        page_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.status = status
        self.api_name = api_name
        self.started_after = started_after
        self.started_before = started_before
        self.target_url = target_url
        self.end_url = end_url
        self.has_error = has_error
        self.captcha = captcha
        self.min_duration = min_duration
        self.max_duration = max_duration
        self.min_bandwidth = min_bandwidth
        self.sort = sort
        self.order = order
        self.where = where
        self.fields = fields
        self.max_results = max_results
        self.max_xcom_bytes = max_xcom_bytes
        self.page_size = page_size
        # Literal values fail the DAG file's import, not a run; templated ones are checked when rendered.
        check_literal_filters({name: getattr(self, name) for name in FILTER_NAMES})
        if is_literal(fields):
            _parse_fields(fields)
        for name in ("max_results", "max_xcom_bytes"):
            if is_literal(getattr(self, name)):
                _parse_positive_int(name, getattr(self, name))

    @cached_property
    def hook(self) -> BrowserSessionsHook:
        """The platform's hook, chosen by the connection's type."""
        # Imported when a task runs: a DAG file's parse never loads the hooks, transports or HTTP clients.
        from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook

        return get_browser_sessions_hook(self.conn_id, page_size=self.page_size)

    def build_query(self) -> SessionQuery:
        """The validated query from the (rendered) filter arguments."""
        return SessionQuery.build(**{name: getattr(self, name) for name in FILTER_NAMES}, where=self.where)

    def execute(self, context: Context) -> list[dict[str, Any]] | None:
        """List, filter, project; push the summary; return the records (unless ``do_xcom_push=False``)."""
        # Everything is validated before the first request: a bad value fails fast, without retries.
        query = self.build_query()
        projection = _parse_fields(self.fields)
        max_results = _parse_positive_int("max_results", self.max_results)
        max_xcom_bytes = _parse_positive_int("max_xcom_bytes", self.max_xcom_bytes)
        sessions = self.hook.iter_sessions(query, max_results=max_results, read_ahead=True)
        summary = SessionSummary()
        records: list[dict[str, Any]] = []
        xcom_bytes = 2  # "[]"
        try:
            for session in sessions:
                summary.add(session)
                if not self.do_xcom_push:
                    continue  # only the summary is kept: no rows held in memory
                record = session.to_dict()
                if projection is not None:
                    record = {key: record[key] for key in projection}
                # The size the XCom backend will store: the list's JSON, counted record by record.
                xcom_bytes += len(json.dumps(record).encode()) + (2 if records else 0)
                if max_xcom_bytes is not None and xcom_bytes > max_xcom_bytes:
                    raise XComTooLargeError(
                        f"The listing's return value passed max_xcom_bytes={max_xcom_bytes} after "
                        f"{len(records) + 1} session(s) ({xcom_bytes} bytes of JSON so far); nothing was "
                        f"pushed. Raise max_xcom_bytes, or {_XCOM_ADVICE}."
                    )
                records.append(record)
        finally:
            self.hook.close()
        self.log.info("%s", sessions.walk.describe())
        stats = sessions.walk.stats
        summary.note_walk(truncated=stats.truncated, server_total=stats.server_total)
        if stats.truncated:
            self.log.warning(
                "The result was cut at max_results=%s: more sessions matched and were not returned. "
                "Raise max_results or narrow the filters to see them all.",
                self.max_results,
            )
        if self.do_xcom_push and xcom_bytes > XCOM_WARN_BYTES:
            self.log.warning(
                "The return value is %s of JSON (%d session(s)), above %s: XCom is stored in the "
                "metadata database. Please %s; max_xcom_bytes=N makes the task fail instead.",
                _size(xcom_bytes),
                len(records),
                _size(XCOM_WARN_BYTES),
                _XCOM_ADVICE,
            )
        context["ti"].xcom_push(key="summary", value=summary.to_dict())
        return records if self.do_xcom_push else None


#: The filters that choose running sessions to close: those that describe a running session
#: (``RUNNING_FILTERS``), and ``min_duration``, read as "running for at least this long".
CLOSE_FILTERS = (*RUNNING_FILTERS, "min_duration")


class CloseBrowserSessionsOperator(BaseOperator):
    """
    Close browser sessions: the given ones, or the running sessions matching filters.

    Give ``session_ids`` (ids, or the session dicts an upstream ``ListBrowserSessionsOperator`` returned),
    or filters that choose among the *running* sessions, e.g. ``min_duration=600`` for sessions running
    for ten minutes or more. A session the platform no longer knows (it ended and was forgotten) is not
    an error: it is reported with ``outcome: "not_found"``. The return value (XCom) is a JSON-safe list,
    one dict per session: ``session_id``, ``outcome`` (``closed``, ``not_found`` or ``dry_run``) and
    ``answer`` (the API's own answer, e.g. ``"closing"`` or ``"closed"``; None when nothing was sent).

    Only platforms whose API can close a session support it (Cloudflare Browser Rendering); on a Bright
    Data connection the task fails before any request with "not supported by this platform".

    .. seealso::
        The how-to guide ``docs/howto/cloudflare-cleanup.md``.

    :param conn_id: A ``cloudflare_browser_rendering`` connection. (templated)
    :param session_ids: The sessions to close: a list of ids or of session dicts (e.g. an upstream list
        task's ``.output``), or its rendered text. Leave it None to choose by filters. (templated)
    :param api_name: Only running sessions of this zone (a Bright Data field). (templated)
    :param started_after: Only running sessions started at or after this datetime / ISO-8601 string. (templated)
    :param started_before: Only running sessions started at or before this. (templated)
    :param min_duration: Only sessions running for at least this many seconds. (templated)
    :param dry_run: List what would be closed, log it and return it; send no close request.
    """

    template_fields: Sequence[str] = ("conn_id", "session_ids", *CLOSE_FILTERS)
    ui_color = "#fde8e8"

    def __init__(
        self,
        *,
        conn_id: str,
        session_ids: Any = None,
        api_name: str | None = None,
        started_after: datetime | str | None = None,
        started_before: datetime | str | None = None,
        min_duration: float | str | None = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.session_ids = session_ids
        self.api_name = api_name
        self.started_after = started_after
        self.started_before = started_before
        self.min_duration = min_duration
        # Not ``self.dry_run``: that name is BaseOperator's own method (``airflow tasks test --dry-run``).
        self.is_dry_run = dry_run
        # Literal values fail the DAG file's import, not a run; templated ones are checked when rendered.
        check_literal_filters(self._filters())
        if is_literal(session_ids) and all(is_literal(value) for value in self._filters().values()):
            self._check_choice(normalize_session_ids(session_ids))

    def _filters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CLOSE_FILTERS}

    def _check_choice(self, ids: tuple[str, ...] | None) -> None:
        given = sorted(name for name, value in self._filters().items() if value not in (None, ""))
        if ids is not None and given:
            raise InvalidQueryError("session_ids", f"either session_ids or filters ({', '.join(given)}), not both")
        if ids is None and not given:
            # Never "close everything" by omission: an empty choice is a mistake more often than a wish.
            raise InvalidQueryError(
                "session_ids",
                f"a list of sessions, or at least one of the filters {', '.join(CLOSE_FILTERS)} "
                "(e.g. min_duration=600 for sessions running ten minutes or more)",
            )

    @cached_property
    def hook(self) -> BrowserSessionsHook:
        """The platform's hook, chosen by the connection's type (imported here: DAG parsing needs no hooks)."""
        from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook

        return get_browser_sessions_hook(self.conn_id)

    def build_query(self, *, now: datetime | None = None) -> SessionQuery:
        """
        The running sessions to close: ``min_duration`` becomes a start bound, since a running
        session's duration is not known until it ends.

        :param now: The time ``min_duration`` counts back from (default: now).
        """
        filters = self._filters()
        min_duration = SessionQuery.build(min_duration=filters.pop("min_duration")).min_duration
        query = SessionQuery.build(status="running", **filters)
        if min_duration is not None:
            latest_start = pendulum.instance(now or pendulum.now("UTC")).subtract(seconds=min_duration)
            if query.started_before is None or latest_start < query.started_before:
                query = SessionQuery.build(**{**filters, "started_before": latest_start}, status="running")
        return query

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Choose the sessions, then close them one by one (or only log them, in a dry run)."""
        ids = normalize_session_ids(self.session_ids)
        self._check_choice(ids)
        query = None if ids is not None else self.build_query()
        hook = self.hook
        hook.platform.check_can_close()  # before any request
        try:
            if ids is None:
                assert query is not None
                ids = tuple(session.session_id for session in hook.iter_sessions(query))
            if self.is_dry_run:
                for session_id in ids:
                    self.log.info("Dry run: would close session %s", session_id)
                self.log.info("Dry run: %d session(s) would be closed; nothing was sent", len(ids))
                return [{"session_id": sid, "outcome": "dry_run", "answer": None} for sid in ids]
            return [self._close(hook, session_id) for session_id in ids]
        finally:
            hook.close()

    def _close(self, hook: BrowserSessionsHook, session_id: str) -> dict[str, Any]:
        try:
            answer = hook.close_session(session_id)
        except NotFoundError as err:
            if not hook.is_unknown_session(err):
                raise
            self.log.info("Session %s is unknown to %s (already gone): nothing to close", session_id, hook.hook_name)
            return {"session_id": session_id, "outcome": "not_found", "answer": None}
        self.log.info("Closed session %s: %s", session_id, answer)
        return {"session_id": session_id, "outcome": "closed", "answer": answer}
