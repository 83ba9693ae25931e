"""
``BrowserSessionsPlugin``: the "Browser sessions" entry of the Airflow 3 UI and its task-instance tab.

Airflow imports this module in every process that loads plugins (scheduler, DAG processor, triggerer,
task runners), so it imports nothing beyond Airflow's plugin base class: the FastAPI app is built on
the API server's first request to it. On Airflow 2.11 there is no plugin (``BrowserSessionsPlugin`` is
None, which Airflow's plugin loader skips without a word).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.compat import HAS_API_SERVER

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PLUGIN_NAME = "browser_sessions"
#: Where the API server mounts the view, below the UI's base path.
URL_PREFIX = "/browser-sessions"
#: The route of the task-instance tab, below a task instance's UI page (``.../plugin/<route>``).
TASK_TAB_ROUTE = "browser_sessions_task"


class LazyApp:
    """An ASGI app that builds the view's FastAPI app on its first request (FastAPI costs ~0.4 s to import)."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from airflow_provider_browsersessions.plugins.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


def ui_base_path() -> str:
    """
    The Airflow UI's path prefix (``[api] base_url``'s path, as Airflow's API server reads it), without the
    trailing slash: ``""`` when Airflow is served at the root. The UI's links and the view's run links use it.
    """
    from urllib.parse import urlsplit

    from airflow.providers.common.compat.sdk import conf

    base = conf.get("api", "base_url", fallback="") or "/"
    return urlsplit(base).path.rstrip("/")


def task_instance_path(*, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """
    A task instance's page in the Airflow 3 UI, relative to the UI's base path (``ui_base_path``).

    :param dag_id: Its DAG.
    :param run_id: Its DAG run.
    :param task_id: The task.
    :param map_index: Its map index; -1 for a task that is not mapped.
    """
    from urllib.parse import quote

    dag, run, task = (quote(part, safe="") for part in (dag_id, run_id, task_id))
    path = f"/dags/{dag}/runs/{run}/tasks/{task}"
    return path if map_index < 0 else f"{path}/mapped/{map_index}"


if HAS_API_SERVER:
    from airflow.providers.common.compat.sdk import AirflowPlugin

    class BrowserSessionsPlugin(AirflowPlugin):
        """
        The view: mounted by the API server at ``/browser-sessions``, in the UI's navigation and task-instance tabs.

        External views need Airflow 3.1 or newer; on 3.0 the app is still served at its URL.
        """

        name = PLUGIN_NAME
        fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "Browser sessions"}]
        external_views = [
            {
                "name": "Browser sessions",
                "href": f"{ui_base_path()}{URL_PREFIX}/",
                "destination": "nav",
                "url_route": "browser_sessions",
            },
            {
                "name": "Browser sessions",
                "href": f"{ui_base_path()}{URL_PREFIX}/task?"
                "dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}",
                "destination": "task_instance",
                "url_route": TASK_TAB_ROUTE,
            },
        ]
else:  # Airflow 2.11: no API server to mount an app in, no external views.
    BrowserSessionsPlugin = None  # type: ignore[assignment,misc]
