"""Differences between Airflow 2.11 and 3.x, absorbed here so no other module checks versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION
from airflow.providers.common.compat.sdk import BaseHook
from packaging.version import Version

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

AIRFLOW_V_3_0_PLUS = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.0.0")
AIRFLOW_V_3_3_PLUS = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.3.0")


async def aget_connection(conn_id: str) -> Connection:
    """Read a connection from inside the triggerer's event loop without blocking it."""
    getter: Any = getattr(BaseHook, "aget_connection", None)
    if getter is not None:  # Airflow 3: the Task SDK reads it asynchronously.
        return await getter(conn_id)
    from asgiref.sync import sync_to_async  # Airflow 2.11: the metadata DB read runs in a thread.

    return await sync_to_async(BaseHook.get_connection)(conn_id)
