"""Sessions and DAG runs, both ways: which task instances of our operator and sensor named a session in XCom."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.plugins.browser_sessions_plugin import task_instance_path

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

#: ``TaskInstance.operator`` of the tasks whose XCom lists sessions.
OPERATOR_NAMES = ("ListBrowserSessionsOperator", "BrowserSessionsSensor")
#: Only task instances started this recently are searched ...
RECENT_DAYS = 7
#: ... and at most this many of them, newest first: a bound on one DB read, whatever the history holds.
MAX_TASK_INSTANCES = 200
#: Seconds the index is reused, like the sessions snapshot.
INDEX_TTL_SECONDS = 15.0
#: Characters of JSON text an XCom value may have to be searched (about 2,000 session records); a larger one
#: is not even read from the database, so one huge result cannot cost the API server hundreds of MB.
MAX_XCOM_CHARS = 2_000_000
#: Rows the index read asks the database for at a time: values are parsed one by one, never all at once.
_ROWS_PER_FETCH = 10


@dataclasses.dataclass(frozen=True)
class TaskRef:
    """
    One task instance of our operator or sensor.

    :param dag_id: Its DAG.
    :param run_id: Its DAG run.
    :param task_id: The task.
    :param map_index: Its map index (-1 when not mapped).
    :param operator: ``ListBrowserSessionsOperator`` or ``BrowserSessionsSensor``.
    :param state: The task instance's state.
    :param start_date: When it started.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    operator: str
    state: str | None
    start_date: datetime | None

    def ui_path(self) -> str:
        """The task instance's page in the Airflow 3 UI, below the UI's base path."""
        return task_instance_path(
            dag_id=self.dag_id, run_id=self.run_id, task_id=self.task_id, map_index=self.map_index
        )

    def to_dict(self, *, base_path: str = "") -> dict[str, Any]:
        """JSON-safe, with the UI link."""
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "operator": self.operator,
            "state": self.state,
            "start_date": None if self.start_date is None else self.start_date.isoformat(),
            "url": base_path + self.ui_path(),
        }


def _records_with_ids(value: Any) -> list[Mapping[str, Any]]:
    """The items of an XCom value (JSON text or parsed) that are records carrying a string ``session_id``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping) and isinstance(item.get("session_id"), str)]


def session_records(value: Any) -> list[dict[str, Any]]:
    """
    The session records in one XCom ``return_value`` of our operator or sensor (a list of session dicts).

    XCom rows are JSON; a value that is not a list of records carrying a ``session_id`` gives nothing,
    whatever wrote it.
    """
    return [dict(item) for item in _records_with_ids(value)]


def session_ids(value: Any) -> list[str]:
    """The session ids an XCom value names (``session_records`` without copying the records)."""
    return [item["session_id"] for item in _records_with_ids(value)]


def _value_within(max_chars: int) -> tuple[Any, Any]:
    """
    Columns ``(XCom value if its JSON text has at most max_chars characters else NULL, that length)``.

    The length is the database's: a large value never travels to the API server, let alone gets parsed.
    """
    from airflow.models.xcom import XComModel
    from sqlalchemy import Text, case, cast, func, type_coerce

    length = func.length(cast(XComModel.value, Text))
    return type_coerce(case((length <= max_chars, XComModel.value), else_=None), XComModel.value.type), length


def _recent_rows(
    *, limit: int = MAX_TASK_INSTANCES, days: int = RECENT_DAYS, max_chars: int | None = None
) -> Iterator[tuple[TaskRef, Any]]:
    """
    ``(task instance, XCom value)`` of the newest task instances of our operators that pushed one, fetched a
    few rows at a time; a value longer than ``max_chars`` (as JSON text, default ``MAX_XCOM_CHARS``) comes as
    None, unread.
    """
    max_chars = MAX_XCOM_CHARS if max_chars is None else max_chars
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import and_, select

    since = datetime.now(UTC) - timedelta(days=days)
    small_value, _ = _value_within(max_chars)
    statement = (
        select(
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.operator,
            TaskInstance.state,
            TaskInstance.start_date,
            small_value,
        )
        .join(
            XComModel,
            and_(
                XComModel.dag_id == TaskInstance.dag_id,
                XComModel.run_id == TaskInstance.run_id,
                XComModel.task_id == TaskInstance.task_id,
                XComModel.map_index == TaskInstance.map_index,
            ),
        )
        .where(
            TaskInstance.operator.in_(OPERATOR_NAMES),
            TaskInstance.start_date >= since,
            XComModel.key == "return_value",
        )
        .order_by(TaskInstance.start_date.desc())
        .limit(limit)
        .execution_options(yield_per=_ROWS_PER_FETCH)
    )
    with create_session() as session:
        for row in session.execute(statement):
            ref = TaskRef(
                dag_id=row[0],
                run_id=row[1],
                task_id=row[2],
                map_index=int(row[3]),
                operator=str(row[4]),
                state=None if row[5] is None else str(getattr(row[5], "value", row[5])),
                start_date=row[6],
            )
            yield ref, row[7]


class RunsIndex:
    """
    ``session_id -> task instances`` over the recent XCom of our operator and sensor, rebuilt every ``ttl`` s.

    One bounded DB read serves every page view within the TTL; callers filter by the DAGs the user may read.
    The index keeps ids and task references only: each XCom value is parsed, searched and dropped in turn,
    and one above ``MAX_XCOM_CHARS`` is skipped unread (its task's own tab still lists its sessions).

    :param ttl: Seconds an index is reused.
    :param read_rows: Gives ``(task instance, XCom value or None)`` rows (tests may pass their own).
    :param clock: Monotonic seconds.
    """

    def __init__(
        self,
        *,
        ttl: float = INDEX_TTL_SECONDS,
        read_rows: Callable[[], Iterable[tuple[TaskRef, Any]]] = _recent_rows,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._read_rows = read_rows
        self._clock = clock
        self._lock = threading.Lock()
        self._built_at: float | None = None
        self._index: dict[str, list[TaskRef]] = {}
        #: Task instances the last build skipped (an XCom value above the bound), for the log and tests.
        self.skipped = 0

    def clear(self) -> None:
        """Forget the index: the next read rebuilds it from the database."""
        with self._lock:
            self._built_at, self._index = None, {}

    def _current(self) -> dict[str, list[TaskRef]]:
        with self._lock:
            if self._built_at is None or self._clock() - self._built_at >= self.ttl:
                index: dict[str, list[TaskRef]] = {}
                skipped = 0
                for ref, value in self._read_rows():
                    if value is None:
                        skipped += 1
                        continue
                    for session_id in session_ids(value):
                        refs = index.setdefault(session_id, [])
                        if ref not in refs:  # a record named twice in one XCom links once
                            refs.append(ref)
                if skipped:
                    log.info(
                        "Browser sessions view: %d task instance(s) not linked: XCom above %d characters",
                        skipped,
                        MAX_XCOM_CHARS,
                    )
                self._index, self._built_at, self.skipped = index, self._clock(), skipped
            return self._index

    def tasks_naming(
        self, session_ids: Iterable[str], *, dag_ids: Callable[[set[str]], set[str]]
    ) -> dict[str, list[TaskRef]]:
        """
        ``{session_id: [task instances whose XCom names it]}``, only in DAGs ``dag_ids(candidates)`` allows.

        :param session_ids: The sessions shown.
        :param dag_ids: Given the DAG ids found, returns those the user may read.
        """
        index = self._current()
        found = {sid: list(index.get(sid, [])) for sid in session_ids}
        allowed = dag_ids({ref.dag_id for refs in found.values() for ref in refs})
        shown = {sid: [ref for ref in refs if ref.dag_id in allowed] for sid, refs in found.items()}
        return {sid: refs for sid, refs in shown.items() if refs}


def task_instance_sessions(
    *, dag_id: str, run_id: str, task_id: str, map_index: int
) -> tuple[TaskRef | None, list[dict[str, Any]], str | None, int | None]:
    """
    One task instance, the session records of its XCom ``return_value``, and its rendered ``conn_id``.

    :return: ``(task, records, conn_id, oversized)``: ``oversized`` is the XCom's length in characters when
        it is above ``MAX_XCOM_CHARS`` (then left unread, and ``records`` empty), else None;
        ``(None, [], None, None)`` when there is no such task instance of our operator or sensor.
    """
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    key = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    small_value, length = _value_within(MAX_XCOM_CHARS)
    with create_session() as session:
        ti = session.execute(
            select(TaskInstance.operator, TaskInstance.state, TaskInstance.start_date).filter_by(**key)
        ).first()
        if ti is None or ti[0] not in OPERATOR_NAMES:
            return None, [], None, None
        xcom = session.execute(select(small_value, length).filter_by(**key, key="return_value")).first()
        rendered = session.execute(select(RenderedTaskInstanceFields.rendered_fields).filter_by(**key)).scalar()
    ref = TaskRef(
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
        operator=str(ti[0]),
        state=None if ti[1] is None else str(getattr(ti[1], "value", ti[1])),
        start_date=ti[2],
    )
    conn_id = rendered.get("conn_id") if isinstance(rendered, Mapping) else None
    value, chars = (None, None) if xcom is None else xcom
    oversized = int(chars) if value is None and chars is not None and chars > MAX_XCOM_CHARS else None
    return ref, session_records(value), conn_id if isinstance(conn_id, str) else None, oversized
