"""The FastAPI app the API server mounts at ``/browser-sessions``: the page, the task-instance page and their JSON."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import urlencode

import pendulum

# FastAPI reads the routes' annotations at runtime: the user dependency must be importable here.
from airflow.api_fastapi.core_api.security import GetUserDep  # noqa: TC002
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import MutableHeaders

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.plugins import access, charts, render, runs, snapshot
from airflow_provider_browsersessions.plugins.browser_sessions_plugin import ui_base_path
from airflow_provider_browsersessions.plugins.cache import DeadlineExceeded, TtlCache
from airflow_provider_browsersessions.plugins.health import HealthBook
from airflow_provider_browsersessions.transport import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook
    from airflow_provider_browsersessions.plugins.health import ConnectionHealth
    from airflow_provider_browsersessions.sessions import BrowserSession

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Sessions of one task instance whose current state is looked up (the rest show their XCom state).
MAX_TASK_SESSIONS = 200
#: Reads of single sessions per task page, for sessions no longer in the connection's list.
MAX_SESSION_READS = 20
#: A person is waiting on the page: two quick retries, never the minutes of backoff a task may afford.
VIEW_RETRY = RetryPolicy(max_retries=2, max_wait=10.0)
#: Seconds a page view waits at most for the platform (all its requests, retries and pacing together); past
#: it the page says so, and the platform's answer, if it comes later, serves the next view.
VIEW_DEADLINE_SECONDS = 10.0
#: A connection id echoed in an error only when it is this plain (Airflow's own characters, a sane length).
_PLAIN_CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")


@dataclasses.dataclass
class ViewState:
    """
    What the app keeps between requests: the caches that make many open browsers cost one poll.

    :param snapshots: Sessions snapshots by connection id.
    :param reads: Single-session reads by ``(conn_id, session_id)``.
    :param runs_index: Which task instances named which sessions.
    :param health: What the view's own requests met, per connection.
    :param deadline: Seconds a page view waits for the platform (``VIEW_DEADLINE_SECONDS``; tests lower it).
    """

    snapshots: TtlCache[str, snapshot.SessionsSnapshot] = dataclasses.field(
        default_factory=lambda: TtlCache(ttl=snapshot.CACHE_TTL_SECONDS)
    )
    reads: TtlCache[tuple[str, str], BrowserSession | None] = dataclasses.field(
        default_factory=lambda: TtlCache(ttl=snapshot.CACHE_TTL_SECONDS, max_keys=2000)
    )
    runs_index: runs.RunsIndex = dataclasses.field(default_factory=runs.RunsIndex)
    health: HealthBook = dataclasses.field(default_factory=HealthBook)
    deadline: float = VIEW_DEADLINE_SECONDS


def view_state(request: Request) -> ViewState:
    """Dependency: the caches of the app serving the request (``create_app`` keeps them in its state)."""
    state: ViewState = request.app.state.view
    return state


StateDep = Annotated[ViewState, Depends(view_state)]


def parse_map_index(value: str) -> int:
    """A task instance's map index from the query; the UI leaves ``{MAP_INDEX}`` as is for an unmapped task."""
    try:
        return int(value)
    except ValueError:
        return -1


def _own_path(request: Request) -> str:
    # The mount prefix (and the API server's root path) as the browser sees it.
    return str(request.scope.get("root_path", "")).rstrip("/")


def _html(body: str, *, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=render.SECURITY_HEADERS)


def _json(data: Any, *, status_code: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status_code, headers=render.SECURITY_HEADERS)


def _error_text(error: Exception) -> str:
    # Our errors name the platform, the status and the API's own message, never a credential (and the
    # hooks redact echoed ones); anything else is named by its type only.
    from airflow_provider_browsersessions.exceptions import BrowserSessionsError

    if isinstance(error, BrowserSessionsError):
        return str(error)
    return f"{type(error).__name__} while reading the connection's sessions (see the API server's log)."


def server_hook(conn_id: str) -> BrowserSessionsHook:
    """
    The connection's hook in the API server: the connection read with Airflow's core model (environment,
    secrets backends, then the metadata DB), as the REST API reads it; the Task SDK's reader serves tasks.
    """
    from airflow.models import Connection

    from airflow_provider_browsersessions.hooks.base import hook_for_connection

    connection = Connection.get_connection_from_secrets(conn_id)
    return hook_for_connection(conn_id, connection, retry=VIEW_RETRY)  # type: ignore[arg-type]


def _named(conn_id: str) -> str:
    """The connection id for an error text: quoted when plain, else left out (never echoed as sent)."""
    return repr(conn_id) if _PLAIN_CONN_ID.fullmatch(conn_id) else "of that id"


def _asking(state: ViewState, conn_id: str, ask: Callable[[], T]) -> T:
    """
    Run one ask of the platform (a poll or a read) and note in the health book what it cost and met.

    The requests are counted where the metrics count them (``metrics.tallied``): no request of its own.
    """
    asked_at = pendulum.now("UTC")
    started = time.monotonic()
    failed = True
    with metrics.tallied() as tally:
        try:
            result = ask()
            failed = False
            return result
        finally:
            state.health.record(conn_id, tally, asked_at=asked_at, seconds=time.monotonic() - started, failed=failed)


def _load_snapshot(state: ViewState, conn_id: str, *, ends_at: float) -> snapshot.SessionsSnapshot:
    """
    The connection's snapshot through the cache, by ``ends_at`` (``time.monotonic()``); HTTP errors a person
    can act on. A failure is cached briefly too, so viewers of a failing platform share one attempt.
    """
    from airflow.exceptions import AirflowNotFoundException

    from airflow_provider_browsersessions.exceptions import BrowserSessionsError, InvalidQueryError

    def load() -> snapshot.SessionsSnapshot:
        hook = server_hook(conn_id)
        # The load's own bound, from when it starts: no retry or pacing sleep and no new page past it.
        with hook.calls_within(state.deadline):
            pages_end = time.monotonic() + state.deadline
            return _asking(state, conn_id, lambda: snapshot.take_snapshot(hook, ends_at=pages_end))

    try:
        return state.snapshots.get(conn_id, load, timeout=max(0.0, ends_at - time.monotonic()))
    except AirflowNotFoundException:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No connection {_named(conn_id)}.") from None
    except InvalidQueryError as err:  # a connection of another type
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(err)) from None
    except DeadlineExceeded:
        log.warning("Browser sessions view: connection %r: no answer within %g s", conn_id, state.deadline)
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT,
            f"The platform did not answer within {state.deadline:g} s; the page asks again when it reloads.",
        ) from None
    except BrowserSessionsError as err:
        log.warning("Browser sessions view: connection %r: %s", conn_id, err)
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, _error_text(err)) from None


def _runs_for(state: ViewState, user: BaseUser, shot: snapshot.SessionsSnapshot) -> dict[str, list[runs.TaskRef]]:
    ids = [s.session_id for s in (*shot.running, *shot.ended)]
    return state.runs_index.tasks_naming(ids, dag_ids=lambda found: access.readable_dag_ids(user, found))


def _charts(shot: snapshot.SessionsSnapshot) -> dict[str, charts.Chart]:
    buckets = shot.hourly()
    return {
        "per_hour": charts.sessions_per_hour(buckets),
        "durations": charts.duration_percentiles(shot.durations()),
        "bandwidth": charts.bandwidth_per_hour(buckets),
    }


def _task_rows(
    state: ViewState, user: BaseUser, conn_id: str | None, records: list[dict[str, Any]], *, ends_at: float
) -> tuple[list[dict[str, Any]], str | None]:
    """Each XCom record with the session's state now, when the user may read its connection."""

    current: dict[str, BrowserSession] = {}
    note: str | None = None
    if conn_id is None:
        note = "The task's connection is unknown (no rendered fields): states are those in its XCom."
    elif not access.can_read_connection(user, conn_id):
        note = f"You may not read connection {_named(conn_id)}: states are those in the task's XCom."
    else:
        try:
            shot = _load_snapshot(state, conn_id, ends_at=ends_at)
            current = {s.session_id: s for s in (*shot.running, *shot.ended)}
            found, note = _read_missing(state, conn_id, records, current, ends_at=ends_at)
            current.update(found)
        except HTTPException as err:
            note = f"The connection could not be read ({err.detail}): states are those in the task's XCom."
    rows = []
    for record in records:
        now = current.get(record["session_id"])
        status_now = now.status.value if now is not None else (record.get("status") or "unknown")
        ended_at = now.to_dict()["ended_at"] if now is not None else record.get("ended_at")
        source = now.to_dict() if now is not None else record
        error = " ".join(str(part) for part in (source.get("error_code"), source.get("error_message")) if part)
        rows.append(
            {
                "session_id": record["session_id"],
                "recorded": str(record.get("status") or ""),
                "now": str(status_now),
                "ended_at": ended_at,
                "error": error or str(source.get("close_reason") or ""),
                "target_url": str(source.get("target_url") or ""),
                "linkable": now is not None,
            }
        )
    return rows, note


def _read_missing(
    state: ViewState,
    conn_id: str,
    records: list[dict[str, Any]],
    known: dict[str, BrowserSession],
    *,
    ends_at: float,
) -> tuple[dict[str, BrowserSession], str | None]:
    """
    Read, one by one and bounded, sessions the XCom saw running that the connection's list no longer shows.

    The reads stop at the first failure or at the page's deadline: the rest show their XCom state, and the
    note says why.
    """
    from airflow_provider_browsersessions.exceptions import BrowserSessionsError

    missing = [r["session_id"] for r in records if r["session_id"] not in known and r.get("status") == "running"]
    found: dict[str, BrowserSession] = {}
    for session_id in missing[:MAX_SESSION_READS]:

        def read(session_id: str = session_id) -> BrowserSession | None:
            hook = server_hook(conn_id)
            try:
                with hook.calls_within(state.deadline):
                    return _asking(state, conn_id, lambda: hook.get_session(session_id))
            finally:
                hook.close()

        try:
            session = state.reads.get((conn_id, session_id), read, timeout=max(0.0, ends_at - time.monotonic()))
        except DeadlineExceeded:
            return (
                found,
                f"Reading sessions one by one took more than {state.deadline:g} s: the rest show their XCom state.",
            )
        except BrowserSessionsError as err:
            return found, f"A session could not be read ({_error_text(err)}): the rest show their XCom state."
        if session is not None:
            found[session_id] = session
    return found, None


class _SecurityHeaders:
    """Every answer of the app carries the security headers, errors included (a route may set its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in render.SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


router = APIRouter()


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    """The answer to an unexpected error, logged with its traceback, never shown."""
    # Starlette answers an unexpected error outside every middleware: this answer carries the headers itself.
    log.exception("Browser sessions view: %s %s failed", request.method, request.url.path)
    return _json({"detail": "Internal error (see the API server's log)."}, status_code=500)


@router.get("/static/style.css", include_in_schema=False)
def style() -> Response:
    """The page's stylesheet."""
    # Served by us, so the policy needs no inline style; cacheable (no data in it), never sniffed.
    return Response(
        render.stylesheet(),
        media_type="text/css",
        headers={**render.SECURITY_HEADERS, "Cache-Control": "max-age=300"},
    )


@router.get("/", response_class=HTMLResponse)
def sessions_page(
    request: Request, user: GetUserDep, state: StateDep, choice: access.ConnectionChoiceDep
) -> HTMLResponse:
    """
    The sessions page of the chosen connection (``conn_id``, else the first the user may read).

    :param request: The request (for the paths the browser sees).
    :param user: The user from the UI's token.
    :param state: The app's caches.
    :param choice: The chooser's connections and the one to show (the access gate).
    """
    if choice.conn_id is None:
        return _page(request, connections=choice.connections)
    try:
        shot = _load_snapshot(state, choice.conn_id, ends_at=time.monotonic() + state.deadline)
    except HTTPException as err:
        # The health matters most when the platform fails: the page shows it with the error.
        return _page(
            request,
            connections=choice.connections,
            health=state.health.of(choice.conn_id),
            error=str(err.detail),
            status_code=err.status_code,
        )
    return _page(
        request,
        connections=choice.connections,
        shot=shot,
        health=state.health.of(choice.conn_id),
        task_runs=_runs_for(state, user, shot),
    )


def _page(
    request: Request,
    *,
    connections: list[tuple[str, str]],
    shot: snapshot.SessionsSnapshot | None = None,
    health: ConnectionHealth | None = None,
    task_runs: dict[str, list[runs.TaskRef]] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    own = _own_path(request)
    body = render.render(
        "sessions.html",
        snapshot=shot,
        health=health,
        connections=connections,
        runs=task_runs or {},
        charts=_charts(shot) if shot is not None else {},
        error=error,
        history_hours=snapshot.HISTORY_HOURS,
        max_rows=snapshot.MAX_ENDED_ROWS,
        refresh_seconds=render.REFRESH_SECONDS,
        page_path=f"{own}/",
        static_path=f"{own}/static",
        api_path=f"{own}/api/sessions?{urlencode({'conn_id': shot.conn_id})}" if shot else "",
        base_path=ui_base_path(),
    )
    return _html(body, status_code=status_code)


@router.get("/api/sessions")
def sessions_json(user: GetUserDep, state: StateDep, conn_id: access.ReadableConnIdDep) -> JSONResponse:
    """
    The sessions page's data, with ``runs``: the task instances naming each session, and their UI links.

    :param user: The user from the UI's token.
    :param state: The app's caches.
    :param conn_id: The connection, once the user may read it (the access gate).
    """
    shot = _load_snapshot(state, conn_id, ends_at=time.monotonic() + state.deadline)
    task_runs = _runs_for(state, user, shot)
    base = ui_base_path()
    health = state.health.of(conn_id)
    return _json(
        {
            **shot.to_dict(),
            "runs": {sid: [ref.to_dict(base_path=base) for ref in refs] for sid, refs in task_runs.items()},
            "health": health.to_dict() if health is not None else None,
        }
    )


def _task_data(
    state: ViewState, user: BaseUser, *, dag_id: str, run_id: str, task_id: str, map_index: int
) -> tuple[runs.TaskRef | None, list[dict[str, Any]], str | None, str | None, int | None]:
    # The route's dependency has checked the DAG's XCom. The total is None when the XCom was too large to read.
    ends_at = time.monotonic() + state.deadline
    ref, records, conn_id, oversized = runs.task_instance_sessions(
        dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index
    )
    if oversized is not None:
        # Parsing it would cost hundreds of MB per view, every refresh: say so instead.
        too_large = (
            f"The task's XCom holds {oversized:,} characters, more than the {runs.MAX_XCOM_CHARS:,} this tab "
            "reads: its sessions are not shown here."
        )
        return ref, [], conn_id, too_large, None
    rows, note = _task_rows(state, user, conn_id, records[:MAX_TASK_SESSIONS], ends_at=ends_at)
    return ref, rows, conn_id, note, len(records)


#: The task pages' gate, answered before the handler runs: Airflow's own DAG dependency.
_XCOM_READ = [Depends(access.requires_xcom_read)]


@router.get("/task", response_class=HTMLResponse, dependencies=_XCOM_READ)
def task_page(
    request: Request,
    user: GetUserDep,
    state: StateDep,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: str = "-1",
) -> HTMLResponse:
    """
    A task instance's tab: the sessions its XCom names, their state then and now.

    :param request: The request (for the paths the browser sees).
    :param user: The user from the UI's token.
    :param state: The app's caches.
    :param dag_id: The task instance's DAG (the gate checks its XCom may be read).
    :param run_id: Its run.
    :param task_id: Its task.
    :param map_index: Its map index, as the UI sends it (``{MAP_INDEX}`` for an unmapped task).
    """
    ref, rows, conn_id, note, total = _task_data(
        state, user, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=parse_map_index(map_index)
    )
    own = _own_path(request)
    body = render.render(
        "task.html",
        task=ref,
        task_id=task_id,
        rows=rows,
        conn_id=conn_id,
        note=note,
        total=total,
        truncated=total is not None and total > len(rows),
        refresh_seconds=render.REFRESH_SECONDS,
        static_path=f"{own}/static",
        sessions_path=f"{own}/?{urlencode({'conn_id': conn_id or ''})}",
    )
    return _html(body)


@router.get("/api/task", dependencies=_XCOM_READ)
def task_json(
    user: GetUserDep, state: StateDep, dag_id: str, run_id: str, task_id: str, map_index: str = "-1"
) -> JSONResponse:
    """
    A task instance's tab as JSON; 404 for a task instance of another operator.

    :param user: The user from the UI's token.
    :param state: The app's caches.
    :param dag_id: The task instance's DAG (the gate checks its XCom may be read).
    :param run_id: Its run.
    :param task_id: Its task.
    :param map_index: Its map index, as the UI sends it.
    """
    ref, rows, conn_id, note, total = _task_data(
        state, user, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=parse_map_index(map_index)
    )
    if ref is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No task instance of our operator or sensor there.")
    return _json(
        {
            "task": ref.to_dict(base_path=ui_base_path()),
            "conn_id": conn_id,
            "note": note,
            "total": total,
            "sessions": [{k: v for k, v in row.items() if k != "linkable"} for row in rows],
        }
    )


def create_app(*, state: ViewState | None = None) -> FastAPI:
    """
    The app: ``/`` (the page), ``/api/sessions`` (its JSON), ``/task`` and ``/api/task`` (one task instance),
    the routes of :data:`router` with their caches.

    Every route asks Airflow's auth manager through its dependencies: the user from the UI's token (cookie
    or bearer header), then, once, read access to the connection (or to the DAG's XCom for the task pages).

    :param state: The caches (tests pass their own).
    """
    app = FastAPI(
        title="Browser sessions",
        description="Sessions of the browser platforms' connections.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.view = state or ViewState()
    app.add_middleware(_SecurityHeaders)
    app.add_exception_handler(Exception, internal_error)
    app.include_router(router)
    return app
