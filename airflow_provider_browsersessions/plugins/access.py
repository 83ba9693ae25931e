"""Who may see what: Airflow's own auth manager decides, as for the REST API's connection and DAG routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import HTTPException, status

from airflow_provider_browsersessions import CONNECTION_TYPES

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

#: The connection types the view can show.
OUR_CONN_TYPES = tuple(str(entry["connection-type"]) for entry in CONNECTION_TYPES)
#: Connections offered in the chooser (a bound on one DB read and on the page).
MAX_CONNECTIONS = 100


def _team_of(conn_id: str) -> str | None:
    # Multi-team deployments scope a connection to a team; Airflow's requires_access_connection asks the same.
    from airflow.configuration import conf

    if not conf.getboolean("core", "multi_team", fallback=False):
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


def require_connection_read(user: BaseUser, conn_id: str) -> None:
    """
    Refuse (HTTP 403) a user who may not read the connection, before anything is read from it.

    :raises HTTPException: 403 with Airflow's own "Forbidden" detail.
    """
    if not can_read_connection(user, conn_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")


def readable_connections(user: BaseUser) -> list[tuple[str, str]]:
    """``(conn_id, conn_type)`` of the stored connections of our types that ``user`` may read, by id."""
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
    return [(str(conn_id), str(conn_type)) for conn_id, conn_type in rows if can_read_connection(user, conn_id)]


def stored_connection_count() -> int:
    """How many connections of our types are stored (to tell "none readable" from "none at all")."""
    from airflow.models import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return int(session.scalar(select(func.count()).where(Connection.conn_type.in_(OUR_CONN_TYPES))) or 0)


def readable_dag_ids(user: BaseUser, dag_ids: set[str]) -> set[str]:
    """The DAGs among ``dag_ids`` whose runs and XCom ``user`` may read."""
    if not dag_ids:
        return set()
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.configuration import conf
    from airflow.models.dag import DagModel

    manager = get_auth_manager()
    multi_team = conf.getboolean("core", "multi_team", fallback=False)
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


def require_dag_read(user: BaseUser, dag_id: str) -> None:
    """Refuse (HTTP 403) a user who may not read the DAG's XCom."""
    if not readable_dag_ids(user, {dag_id}):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
