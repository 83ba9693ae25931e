"""Operator extra links: the URLs they build, and that Airflow finds them when it reads a serialized DAG."""

from __future__ import annotations

import pendulum
import pytest

from airflow_provider_browsersessions import get_provider_info
from airflow_provider_browsersessions.compat import HAS_API_SERVER
from airflow_provider_browsersessions.links import BrowserSessionsViewLink, PlatformConsoleLink, task_tab_path
from airflow_provider_browsersessions.operators.sessions import (
    CloseBrowserSessionsOperator,
    ListBrowserSessionsOperator,
)
from airflow_provider_browsersessions.platforms.brightdata import BrightDataPlatform
from airflow_provider_browsersessions.platforms.browserbase import BrowserbasePlatform
from airflow_provider_browsersessions.platforms.cloudflare import CloudflarePlatform
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

CF, BD = "cloudflare_browser_rendering_default", "brightdata_default"


def ti_key(map_index: int = -1):
    from airflow.models.taskinstancekey import TaskInstanceKey

    return TaskInstanceKey(
        dag_id="nightly", task_id="list", run_id="manual__2026-01-01T00:00:00+00:00", try_number=1, map_index=map_index
    )


def test_the_tab_path_names_the_task_instance_and_its_map_index(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team-a/")
    run = "manual__2026-01-01T00:00:00+00:00"
    assert task_tab_path(dag_id="nightly", run_id=run, task_id="g.list") == (
        "/team-a/dags/nightly/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00/tasks/g.list/plugin/browser_sessions_task"
    )
    assert task_tab_path(dag_id="nightly", run_id="r", task_id="list", map_index=3) == (
        "/team-a/dags/nightly/runs/r/tasks/list/mapped/3/plugin/browser_sessions_task"
    )


def test_the_view_link_points_at_the_tab_where_there_is_a_view():
    link = BrowserSessionsViewLink().get_link(ListBrowserSessionsOperator(task_id="list", conn_id=CF), ti_key=ti_key(2))
    if HAS_API_SERVER:
        assert link.endswith(
            "/dags/nightly/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00/tasks/list/mapped/2/plugin/browser_sessions_task"
        )
    else:
        assert link == ""  # Airflow 2.11 has no view to link to


def test_each_platform_names_its_console():
    assert CloudflarePlatform(account_id="acc/1").console_url() == (
        "https://dash.cloudflare.com/acc%2F1/workers/browser-rendering"
    )
    assert BrightDataPlatform().console_url() == "https://brightdata.com/cp/zones"
    assert BrightDataPlatform().console_url(session_id="s1") == "https://brightdata.com/cp/zones"  # no page per session
    assert BrowserbasePlatform().console_url() == "https://www.browserbase.com/sessions"
    assert BrowserbasePlatform().console_url(session_id="a/b") == "https://www.browserbase.com/sessions/a%2Fb"


@pytest.mark.parametrize(
    ("session_ids", "link"),
    [
        (["sess-1"], "https://www.browserbase.com/sessions/sess-1"),  # the one session: its Session Inspector
        ("sess-1", "https://www.browserbase.com/sessions/sess-1"),
        (["sess-1", "sess-2"], "https://www.browserbase.com/sessions"),  # several: the sessions list
        ("{{ ti.xcom_pull('list') }}", "https://www.browserbase.com/sessions"),  # unrendered: not guessed
        ([""], "https://www.browserbase.com/sessions"),  # refused by the task itself: the general page
        (None, "https://www.browserbase.com/sessions"),
    ],
)
def test_a_browserbase_task_about_one_session_links_to_its_inspector(browsersessions_connections, session_ids, link):
    sensor = BrowserSessionsSensor(task_id="wait", conn_id="browserbase_default", session_ids=session_ids)
    assert PlatformConsoleLink().get_link(sensor, ti_key=ti_key()) == link


def test_the_console_link_reads_the_tasks_connection(browsersessions_connections):
    # The fixture put both connections in the environment, as Airflow reads them.
    close = CloseBrowserSessionsOperator(task_id="close", conn_id=CF, session_ids=["a"])
    cf = PlatformConsoleLink().get_link(close, ti_key=ti_key())
    bd = PlatformConsoleLink().get_link(BrowserSessionsSensor(task_id="wait", conn_id=BD), ti_key=ti_key())
    assert cf.startswith("https://dash.cloudflare.com/")
    assert cf.endswith("/workers/browser-rendering")
    assert bd == "https://brightdata.com/cp/zones"


def test_the_console_link_is_empty_for_a_connection_it_cannot_read():
    operator = ListBrowserSessionsOperator(task_id="list", conn_id="no_such_connection")
    assert PlatformConsoleLink().get_link(operator, ti_key=ti_key()) == ""
    templated = ListBrowserSessionsOperator(task_id="list2", conn_id="{{ params.conn_id }}")
    assert PlatformConsoleLink().get_link(templated, ti_key=ti_key()) == ""


@pytest.mark.parametrize(
    "operator_class", [ListBrowserSessionsOperator, BrowserSessionsSensor, CloseBrowserSessionsOperator]
)
def test_the_list_sensor_and_close_tasks_carry_both_links(operator_class):
    names = [link.name for link in operator_class.operator_extra_links]
    assert names == ["Browser sessions", "Platform console"]


def test_airflow_finds_the_links_in_a_serialized_dag():
    from airflow.providers.common.compat.sdk import DAG

    try:  # Airflow 3.2+
        from airflow.serialization.serialized_objects import DagSerialization as Serializer
    except ImportError:  # Airflow 2.11 to 3.1
        from airflow.serialization.serialized_objects import SerializedDAG as Serializer

    declared = get_provider_info()["extra-links"]
    assert declared == [
        "airflow_provider_browsersessions.links.BrowserSessionsViewLink",
        "airflow_provider_browsersessions.links.PlatformConsoleLink",
    ]
    with DAG(dag_id="links", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")) as dag:
        ListBrowserSessionsOperator(task_id="list", conn_id=CF)
    restored = Serializer.from_dict(Serializer.to_dict(dag))
    task = restored.get_task("list")
    found = getattr(task, "operator_extra_link_dict", None) or {link.name: link for link in task.operator_extra_links}
    assert set(found) >= {"Browser sessions", "Platform console"}
