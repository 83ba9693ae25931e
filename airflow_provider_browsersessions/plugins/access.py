"""
Who may see what: Airflow's own auth manager decides, as for the REST API's connection and DAG routes.

Each route declares its gate as a FastAPI dependency, as Airflow's own routes do, so the auth manager is
asked once per request about what the route shows, before the route reads anything from a platform:

- the sessions page asks once about the chooser's connections and the chosen one together
  (:func:`connection_choice`);
- the sessions JSON asks once about its connection (:func:`readable_conn_id`);
- the task pages use Airflow's own ``requires_access_dag`` for the DAG's XCom (:data:`requires_xcom_read`).

Airflow's ``requires_access_connection`` reads the connection id from the path (ours is in the query), and
its readable-connections filter reads every connection of every type: hence the two dependencies here.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import TYPE_CHECKING, Annotated

# FastAPI reads the dependencies' annotations at runtime: the user dependency must be importable here.
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, HTTPException, Query, status

from airflow_provider_browsersessions import CONNECTION_TYPES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

#: The connection types the view can show.
OUR_CONN_TYPES = tuple(str(entry["connection-type"]) for entry in CONNECTION_TYPES)
#: Connections offered in the chooser (a bound on one DB read and on the page).
MAX_CONNECTIONS = 100

#: The task pages' gate: read access to the DAG's XCom (``dag_id`` from the query), Airflow's own dependency.
requires_xcom_read = requires_access_dag("GET", DagAccessEntity.XCOM)


def _forbidden() -> HTTPException:
    # Airflow's own answer to a refused request (``_requires_access`` in its security module).
    return HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")


def _multi_team() -> bool:
    from airflow.configuration import conf

    return conf.getboolean("core", "multi_team", fallback=False)


def _team_of(conn_id: str) -> str | None:
    # Multi-team deployments scope a connection to a team; Airflow's requires_access_connection asks the same.
    if not _multi_team():
        return None
    from airflow.models import Connection

    return Connection.get_team_name(conn_id)


def can_read_connection(user: BaseUser, conn_id: str) -> bool:
    """Whether the auth manager lets ``user`` read connection ``conn_id`` (``GET``, as the REST API asks)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    return get_auth_manager().is_authorized_connection(
        method="GET", details=ConnectionDetails(conn_id=conn_id, team_name=_team_of(conn_id)), user=user
    )


def readable_among(user: BaseUser, conn_ids: Iterable[str]) -> set[str]:
    """
    The connections among ``conn_ids`` that ``user`` may read: one question to the auth manager (its
    ``filter_authorized_connections``, which an auth manager may answer in one batch), one per team when
    Airflow runs with multiple teams; none for no ids.
    """
    from airflow.api_fastapi.app import get_auth_manager

    by_team: dict[str | None, set[str]] = defaultdict(set)
    for conn_id in conn_ids:
        by_team[_team_of(conn_id)].add(conn_id)
    manager = get_auth_manager()
    readable: set[str] = set()
    for team_name, ids in by_team.items():
        readable |= manager.filter_authorized_connections(conn_ids=ids, user=user, method="GET", team_name=team_name)
    return readable


def stored_connections() -> list[tuple[str, str]]:
    """``(conn_id, conn_type)`` of the stored connections of our types, by id, at most ``MAX_CONNECTIONS``."""
    from airflow.models import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(Connection.conn_id, Connection.conn_type)
            .where(Connection.conn_type.in_(OUR_CONN_TYPES))
            .order_by(Connection.conn_id)
            .limit(MAX_CONNECTIONS)
        ).all()
    return [(str(conn_id), str(conn_type)) for conn_id, conn_type in rows]


def readable_conn_id(user: GetUserDep, conn_id: str = Query(min_length=1)) -> str:
    """
    Dependency: the query's ``conn_id``, once the auth manager lets the user read that connection.

    :param user: The user from the UI's token (Airflow's own dependency).
    :param conn_id: The connection asked for.
    :raises HTTPException: 403 with Airflow's own "Forbidden" detail, before anything is read from it.
    """
    if not can_read_connection(user, conn_id):
        raise _forbidden()
    return conn_id


ReadableConnIdDep = Annotated[str, Depends(readable_conn_id)]


@dataclasses.dataclass(frozen=True)
class ConnectionChoice:
    """
    What the sessions page may show.

    :param connections: ``(conn_id, conn_type)`` offered in the chooser: the stored ones of our types that
        the user may read, by id.
    :param conn_id: The connection to show: the one asked for, else the first offered; None when there is
        none at all.
    """

    connections: list[tuple[str, str]]
    conn_id: str | None


def connection_choice(user: GetUserDep, conn_id: str | None = None) -> ConnectionChoice:
    """
    Dependency: the chooser's connections and the one to show, from one question to the auth manager
    about both (the one asked for may be defined outside the database, in the environment or a secrets
    backend, so it is asked about with the stored ones).

    :param user: The user from the UI's token (Airflow's own dependency).
    :param conn_id: The connection asked for, if any.
    :raises HTTPException: 403 when the user may not read the connection asked for, or, when none is asked
        for, may read none of the stored ones (an empty page is for a deployment that has none).
    """
    stored = stored_connections()
    asked = {stored_id for stored_id, _ in stored}
    if conn_id is not None:
        asked.add(conn_id)
    readable = readable_among(user, asked)
    offered = [(stored_id, conn_type) for stored_id, conn_type in stored if stored_id in readable]
    if conn_id is None:
        if stored and not offered:
            raise _forbidden()
        return ConnectionChoice(connections=offered, conn_id=offered[0][0] if offered else None)
    if conn_id not in readable:
        raise _forbidden()
    return ConnectionChoice(connections=offered, conn_id=conn_id)


ConnectionChoiceDep = Annotated[ConnectionChoice, Depends(connection_choice)]


def readable_dag_ids(user: BaseUser, dag_ids: set[str]) -> set[str]:
    """The DAGs among ``dag_ids`` whose runs and XCom ``user`` may read (the run links' filter)."""
    if not dag_ids:
        return set()
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.models.dag import DagModel

    manager = get_auth_manager()
    multi_team = _multi_team()
    return {
        dag_id
        for dag_id in dag_ids
        if manager.is_authorized_dag(
            method="GET",
            access_entity=DagAccessEntity.XCOM,
            details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id) if multi_team else None),
            user=user,
        )
    }
