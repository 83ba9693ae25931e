"""Operator extra links: a task's own "Browser sessions" tab in the view, and its platform's web console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperatorLink

from airflow_provider_browsersessions.compat import HAS_API_SERVER

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator

__all__ = ["BrowserSessionsViewLink", "PlatformConsoleLink", "task_tab_path"]


def task_tab_path(*, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """
    The UI path of a task instance's "Browser sessions" tab (Airflow 3 routes a plugin tab under its task).

    :param dag_id: The DAG.
    :param run_id: The DAG run.
    :param task_id: The task.
    :param map_index: The map index; -1 for a task that is not mapped.
    """
    from airflow_provider_browsersessions.plugins.browser_sessions_plugin import (
        TASK_TAB_ROUTE,
        task_instance_path,
        ui_base_path,
    )

    page = task_instance_path(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)
    return f"{ui_base_path()}{page}/plugin/{TASK_TAB_ROUTE}"


class BrowserSessionsViewLink(BaseOperatorLink):
    """The task's "Browser sessions" tab in the view (Airflow 3; on 2.11, which has no view, no link)."""

    name = "Browser sessions"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        """The tab's path, below the UI's base path."""
        if not HAS_API_SERVER:
            return ""
        map_index = getattr(ti_key, "map_index", None)
        return task_tab_path(
            dag_id=ti_key.dag_id,
            run_id=ti_key.run_id,
            task_id=ti_key.task_id,
            map_index=-1 if map_index is None else int(map_index),
        )


class PlatformConsoleLink(BaseOperatorLink):
    """The platform's web console for the task's connection (Cloudflare's dashboard page of the account, ...)."""

    name = "Platform console"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        """The console URL; empty when the connection cannot be read or its platform has no console."""
        from airflow.providers.common.compat.sdk import AirflowNotFoundException

        from airflow_provider_browsersessions.exceptions import BrowserSessionsError
        from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook

        conn_id = getattr(operator, "conn_id", None)
        if not isinstance(conn_id, str) or "{{" in conn_id:
            return ""  # an unrendered template (Airflow 2.11's web server): no connection to read
        try:
            hook = get_browser_sessions_hook(conn_id)
            return hook.platform.console_url(session_id=_the_one_session(operator)) or ""
        except (BrowserSessionsError, AirflowNotFoundException):
            # A missing or broken connection fails the task itself, with a clear message: the link just stays empty.
            return ""


def _the_one_session(operator: BaseOperator) -> str | None:
    """
    The session a task concerns when its ``session_ids`` name exactly one, as written in the DAG; else None.

    A template or an XCom reference is not resolved here (the link is worked out from the task's arguments):
    such a task gets the platform's general console page.
    """
    from airflow_provider_browsersessions.exceptions import InvalidQueryError
    from airflow_provider_browsersessions.waiting import normalize_session_ids

    value = getattr(operator, "session_ids", None)
    if isinstance(value, str) and "{{" in value:
        return None
    try:  # read as the task reads it: a list, its text, or comma-separated ids
        ids = normalize_session_ids(value) if isinstance(value, str | list | tuple) else None
    except InvalidQueryError:
        return None  # the task itself fails naming the argument; the link just stays general
    return ids[0] if ids is not None and len(ids) == 1 and "{{" not in ids[0] else None
