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

# Event triggers (asset watchers) exist from Airflow 3.0; on 2.11 the event trigger's module must still
# import, so it gets the plain base class and refuses to be built (see triggers/events.py).
if AIRFLOW_V_3_0_PLUS:
    from airflow.triggers.base import BaseEventTrigger as BaseEventTrigger
else:  # Airflow 2.11
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]  # noqa: F401


# The UI plugin is served by Airflow 3's API server (FastAPI apps, external views); 2.11 has none, so there
# the plugin module offers no plugin at all.
HAS_API_SERVER = AIRFLOW_V_3_0_PLUS


def require_event_triggers() -> None:
    """Refuse to build an event trigger on Airflow 2.11, which has no asset watchers."""
    if not AIRFLOW_V_3_0_PLUS:
        from airflow_provider_browsersessions.exceptions import ConnectionConfigError

        raise ConnectionConfigError(
            "BrowserSessionEventTrigger needs Airflow 3.0 or newer (asset watchers); "
            f"this is Airflow {AIRFLOW_VERSION}. Use BrowserSessionsSensor instead."
        )


async def aget_connection(conn_id: str) -> Connection:
    """Read a connection from inside the triggerer's event loop without blocking it."""
    getter: Any = getattr(BaseHook, "aget_connection", None)
    if getter is not None:  # Airflow 3: the Task SDK reads it asynchronously.
        return await getter(conn_id)
    from asgiref.sync import sync_to_async  # Airflow 2.11: the metadata DB read runs in a thread.

    return await sync_to_async(BaseHook.get_connection)(conn_id)


def is_first_reschedule_poke(context: Any) -> bool:
    """True when a reschedule-mode sensor has not been rescheduled yet in this try (its first poke)."""
    if "task_reschedule_count" in context:  # Airflow 3 puts the count in the context
        return bool(context["task_reschedule_count"] == 0)
    ti = context.get("ti")
    if ti is None:
        return True
    from airflow.sensors.base import _orig_start_date  # Airflow 2.11: what BaseSensorOperator.execute reads

    first_try_number = (ti.max_tries or 0) - (ti.task.retries or 0) + 1
    started = _orig_start_date(
        dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index, try_number=first_try_number
    )
    return started is None
