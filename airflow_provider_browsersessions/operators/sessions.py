"""Operators: list sessions of either platform and return them as XCom, or close sessions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.closing import CloseOutcome, SessionClose, not_closed_error, outcome_counts
from airflow_provider_browsersessions.exceptions import InvalidQueryError
from airflow_provider_browsersessions.links import BrowserSessionsViewLink, PlatformConsoleLink
from airflow_provider_browsersessions.sessions import (
    FILTER_NAMES,
    RUNNING_FILTERS,
    BrowserSession,
    SessionQuery,
    check_literal_filters,
    is_literal,
    parse_bool,
    parse_datetime,
)
from airflow_provider_browsersessions.summary import SessionSummary
from airflow_provider_browsersessions.waiting import normalize_session_ids
from airflow_provider_browsersessions.xcom import XComRecords, parse_fields, parse_positive_int

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from airflow.providers.common.compat.sdk import Context
    from pendulum import DateTime

    from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook

__all__ = [
    "CLOSE_FILTERS",
    "CloseBrowserSessionsOperator",
    "ListBrowserSessionsOperator",
]

# The listing has more ways to stay small than the shared advice names.
_LIST_XCOM_ADVICE = (
    "keep it small with fields=[...] (only the keys you read), max_results=N or narrower filters, "
    "or return nothing with do_xcom_push=False and read the 'summary' XCom"
)


class ListBrowserSessionsOperator(BaseOperator):
    """
    List browser sessions of a Cloudflare Browser Rendering or Bright Data connection.

    The hook is chosen by the connection's type, so the same operator serves every platform. Filters
    the platform's API can apply are pushed down to it; the rest are applied to the normalized
    sessions. The return value (XCom ``return_value``) is a JSON-safe list of session dicts; XCom
    ``summary`` holds counts by status, total bandwidth, duration min/p50/p95/max, captcha outcomes
    and error codes of the sessions returned.

    .. seealso::
        The how-to guide ``docs/howto/listing.md``.

    :param conn_id: A ``brightdata``, ``cloudflare_browser_rendering`` or ``browserbase`` connection. (templated)
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
    :param metadata: Only sessions created with this user metadata (Browserbase), e.g.
        ``{"airflow_run_id": "{{ run_id }}"}``; nested dicts for nested keys. (templated)
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

    operator_extra_links = (BrowserSessionsViewLink(), PlatformConsoleLink())
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
        metadata: dict[str, Any] | str | None = None,
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
        self.metadata = metadata
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
            parse_fields(fields)
        for name in ("max_results", "max_xcom_bytes"):
            if is_literal(getattr(self, name)):
                parse_positive_int(name, getattr(self, name))

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
        returned = XComRecords(
            fields=self.fields, max_xcom_bytes=self.max_xcom_bytes, what="The listing's", advice=_LIST_XCOM_ADVICE
        )
        max_results = parse_positive_int("max_results", self.max_results)
        sessions = self.hook.iter_sessions(query, max_results=max_results, read_ahead=True)
        summary = SessionSummary()
        try:
            for session in sessions:
                summary.add(session)
                if self.do_xcom_push:  # otherwise only the summary is kept: no rows held in memory
                    returned.add(session.to_dict())
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
        returned.warn_if_large(self.log)
        context["ti"].xcom_push(key="summary", value=summary.to_dict())
        return returned.records if self.do_xcom_push else None


#: The filters that choose running sessions to close: those that describe a running session
#: (``RUNNING_FILTERS``), and ``min_duration``, read as "running for at least this long".
CLOSE_FILTERS = (*RUNNING_FILTERS, "min_duration")


class CloseBrowserSessionsOperator(BaseOperator):
    """
    Close browser sessions: the given ones, or the running sessions matching filters.

    Give ``session_ids`` (ids, or the session dicts an upstream ``ListBrowserSessionsOperator`` returned),
    or filters that choose among the *running* sessions, e.g. ``min_duration=600`` for sessions running
    for ten minutes or more. Every session is attempted, whatever the API answers for the others. The
    return value (XCom) is a JSON-safe list, one dict per session: ``session_id``, ``outcome``,
    ``answer`` (the API's own answer, e.g. ``"closing"`` or ``"closed"``; None when none was read) and
    ``error`` (why it was not closed; None otherwise). ``outcome`` is ``closed``; ``not_found`` (the
    platform no longer knows it: it ended and was forgotten, not an error); ``refused`` (the API answered
    an error for this id: ``error`` has its status and reason); ``failed`` (no usable answer after the
    retries); ``not_attempted`` (the batch stopped before it: the API refused the connection itself, or
    stopped answering); or ``dry_run``.

    When any session was not closed, the task fails after the whole batch, naming those sessions; the
    list of outcomes is then pushed as XCom ``outcomes``. A close whose answer was lost (a timeout, a reset
    connection, a 5xx) and whose retry finds the session unknown counts as ``closed``: the lost attempt
    closed it. A retry of the task chooses again: filters list the running sessions anew; given ids are all
    sent again, and a session the first try closed answers ``closed`` (or ``not_found`` once forgotten).

    Only platforms whose API can close a session support it (Cloudflare Browser Rendering; Browserbase, by
    a release); on a Bright Data connection the task fails before any request with "not supported by this platform".

    .. seealso::
        The how-to guide ``docs/howto/cloudflare-cleanup.md``.

    :param conn_id: A ``cloudflare_browser_rendering`` or ``browserbase`` connection. (templated)
    :param session_ids: The sessions to close: a list of ids or of session dicts (e.g. an upstream list
        task's ``.output``), or its rendered text. Leave it None to choose by filters. (templated)
    :param api_name: Only running sessions of this zone (a Bright Data field). (templated)
    :param started_after: Only running sessions started at or after this datetime / ISO-8601 string. (templated)
    :param started_before: Only running sessions started at or before this. (templated)
    :param min_duration: Only sessions running for at least this many seconds. (templated)
    :param metadata: Only running sessions created with this user metadata (Browserbase). (templated)
    :param dry_run: True: list what would be closed, log each session with its age and what chose it, and
        return it; send no close request. A bool, or the text ``"true"``/``"false"`` (any case) a template
        renders; anything else fails (when the DAG is parsed, or for a template when it is rendered).
        (templated)
    """

    # ``is_dry_run`` holds the ``dry_run`` argument (``dry_run`` is BaseOperator's own method).
    operator_extra_links = (BrowserSessionsViewLink(), PlatformConsoleLink())
    template_fields: Sequence[str] = ("conn_id", "session_ids", *CLOSE_FILTERS, "is_dry_run")
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
        metadata: dict[str, Any] | str | None = None,
        dry_run: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.session_ids = session_ids
        self.api_name = api_name
        self.started_after = started_after
        self.started_before = started_before
        self.min_duration = min_duration
        self.metadata = metadata
        # Not ``self.dry_run``: that name is BaseOperator's own method (``airflow tasks test --dry-run``).
        self.is_dry_run = dry_run
        # Literal values fail the DAG file's import, not a run; templated ones are checked when rendered.
        check_literal_filters(self._filters())
        if is_literal(dry_run):
            parse_bool("dry_run", dry_run)
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
        The running sessions to close (``SessionQuery.build_running``: ``min_duration`` becomes a start bound).

        :param now: The time ``min_duration`` counts back from (default: now).
        """
        return SessionQuery.build_running(now=now, **self._filters())

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Choose the sessions, close every one (or only log them, in a dry run); fail at the end if any is left."""
        # Everything is validated before the first request: a bad value fails fast, without retries.
        dry_run = parse_bool("dry_run", self.is_dry_run)
        ids = normalize_session_ids(self.session_ids)
        self._check_choice(ids)
        query = None if ids is not None else self.build_query()
        hook = self.hook
        hook.platform.check_can_close()  # before any request
        try:
            chosen: dict[str, BrowserSession | None]
            if query is not None:
                chosen = {session.session_id: session for session in hook.iter_sessions(query)}
            else:
                chosen = dict.fromkeys(ids or ())
            if dry_run:
                return self._dry_run(chosen)
            closes = []
            for close in hook.close_each(chosen):
                self._log_close(close)
                metrics.session_closed(platform=hook.platform.name, outcome=close.outcome)
                closes.append(close)
        finally:
            hook.close()
        records = [close.to_dict() for close in closes]
        self.log.info("Close batch: %s", outcome_counts(closes))
        error = not_closed_error(closes)
        if error is not None:
            # The return value is not pushed when the task fails: the outcomes still reach XCom, for a
            # person or a downstream task (trigger_rule) to see what was closed and what was refused.
            context["ti"].xcom_push(key="outcomes", value=records)
            raise error
        return records

    def _log_close(self, close: SessionClose) -> None:
        if close.outcome is CloseOutcome.CLOSED:
            self.log.info("Closed session %s: %s", close.session_id, close.answer or "its retry found it gone")
        elif close.outcome is CloseOutcome.NOT_FOUND:
            self.log.info("Session %s is unknown to the platform (already gone): nothing to close", close.session_id)
        elif close.outcome is CloseOutcome.NOT_ATTEMPTED:
            self.log.warning("Session %s not attempted: %s", close.session_id, close.error)
        else:
            self.log.warning("Session %s not closed (%s): %s", close.session_id, close.outcome.value, close.error)

    def _dry_run(self, chosen: Mapping[str, BrowserSession | None]) -> list[dict[str, Any]]:
        """Log each session that would be closed, its age and what chose it; send nothing."""
        now = pendulum.now("UTC")
        filters = {name: value for name, value in self._filters().items() if value not in (None, "")}
        chosen_by = (
            "running, " + ", ".join(f"{name}={value}" for name, value in filters.items())
            if filters
            else "listed in session_ids"
        )
        given_starts = _start_times(self.session_ids)
        for session_id, session in chosen.items():
            started = session.started_at if session is not None else given_starts.get(session_id)
            age = (
                f"running {timedelta(seconds=int((now - started).total_seconds()))} (since {started.isoformat()})"
                if started is not None
                else "age unknown (no start time given)"
            )
            self.log.info("Dry run: would close session %s: %s; chosen by %s", session_id, age, chosen_by)
        self.log.info("Dry run: %d session(s) would be closed; nothing was sent", len(chosen))
        return [SessionClose(session_id=sid, outcome=CloseOutcome.DRY_RUN).to_dict() for sid in chosen]


def _start_times(session_ids: Any) -> dict[str, DateTime]:
    """The start times given with ``session_ids`` when they are session dicts (a list task's output), by id."""
    if isinstance(session_ids, str | Mapping) or not isinstance(session_ids, Iterable):
        return {}
    starts: dict[str, DateTime] = {}
    for item in session_ids:
        if isinstance(item, Mapping) and isinstance(item.get("session_id"), str):
            try:
                started = parse_datetime(item.get("started_at"), name="started_at")
            except InvalidQueryError:
                continue  # only the log's age is lost: the id itself was checked already
            if started is not None:
                starts[item["session_id"]] = started
    return starts
