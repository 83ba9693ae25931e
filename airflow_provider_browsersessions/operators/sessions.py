"""``ListBrowserSessionsOperator``: list sessions of either platform, filter them, return them as XCom."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_browsersessions.exceptions import InvalidQueryError
from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook, get_browser_sessions_hook
from airflow_provider_browsersessions.sessions import (
    FILTER_NAMES,
    RECORD_FIELDS,
    BrowserSession,
    SessionQuery,
)
from airflow_provider_browsersessions.summary import SessionSummary

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from airflow.providers.common.compat.sdk import Context


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
        were left behind. (templated)
    :param page_size: Page size (default: the API's maximum).
    """

    template_fields: Sequence[str] = (
        "conn_id",
        *FILTER_NAMES,
        "fields",
        "max_results",
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
        self.page_size = page_size

    @cached_property
    def hook(self) -> BrowserSessionsHook:
        """The platform's hook, chosen by the connection's type."""
        return get_browser_sessions_hook(self.conn_id, page_size=self.page_size)

    def build_query(self) -> SessionQuery:
        """The validated query from the (rendered) filter arguments."""
        return SessionQuery.build(**{name: getattr(self, name) for name in FILTER_NAMES}, where=self.where)

    def _projection(self) -> tuple[str, ...] | None:
        fields = self.fields
        if fields is None or fields == "":
            return None
        if isinstance(fields, str):
            fields = [part.strip() for part in fields.split(",") if part.strip()]
        unknown = [name for name in fields if name not in RECORD_FIELDS]
        if unknown or not fields:
            raise InvalidQueryError("fields", f"a non-empty list drawn from {', '.join(RECORD_FIELDS)}")
        return tuple(fields)

    def _max_results(self) -> int | None:
        value = self.max_results
        if isinstance(value, str) and value.strip().isdigit():  # a rendered template
            return int(value)
        return value

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """List, filter, project; push the summary; return the records."""
        # Everything is validated before the first request: a bad value fails fast, without retries.
        query = self.build_query()
        projection = self._projection()
        sessions = self.hook.iter_sessions(query, max_results=self._max_results())
        summary = SessionSummary()
        records: list[dict[str, Any]] = []
        try:
            for session in sessions:
                summary.add(session)
                record = session.to_dict()
                records.append(record if projection is None else {key: record[key] for key in projection})
        finally:
            self.hook.close()
        self.log.info("%s", sessions.walk.describe())
        if sessions.walk.stats.truncated:
            self.log.warning(
                "The result was cut at max_results=%s: more sessions matched and were not returned. "
                "Raise max_results or narrow the filters to see them all.",
                self.max_results,
            )
        context["ti"].xcom_push(key="summary", value=summary.to_dict())
        return records
