"""What a user sees in DAG runs against the emulator: errors that say what to fix, bounded XCom, honest summaries."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest
from airflow_harness import run_dag

pytestmark = pytest.mark.system

DAGS = Path(__file__).parent / "dags" / "user_messages_dags.py"


def task_logs(caplog, capfd) -> str:
    out, err = capfd.readouterr()
    return caplog.text + out + err  # Airflow 3 task logs reach stdout, Airflow 2 logs reach caplog


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.timeout(120)
def test_a_rejected_key_names_the_connection_its_host_and_the_password_field(
    airflow_db, browsersessions_connections, caplog, capfd
):
    emulator = browsersessions_connections.emulator
    wrong = {"conn_type": "brightdata", "host": emulator.brightdata_base_url, "password": "not-the-key"}
    env = {"AIRFLOW_CONN_BRIGHTDATA_WRONG_KEY": json.dumps(wrong)}

    result = run_dag(DAGS, "errors_wrong_key", env=env)

    assert result.task_states == {"list": "failed", "wait": "failed"}
    logs = task_logs(caplog, capfd)
    context = (
        "HTTP 401: Invalid credentials. "
        f"Connection 'brightdata_wrong_key', host 127.0.0.1:{emulator.port}: Check the Password field"
    )
    assert f"Bright Data API GET /browser_sessions failed: {context}" in logs  # the operator's listing
    assert f"Bright Data API GET /browser_sessions/a failed: {context}" in logs  # the sensor's read
    assert "not-the-key" not in logs


@pytest.mark.timeout(120)
def test_an_unreachable_host_names_the_connection_and_the_host(airflow_db, caplog, capfd):
    port = free_port()  # nothing listens there
    unreachable = {
        "conn_type": "brightdata",
        # No user info: a Host with one is refused before any request (tests/reliability/test_network_bounds.py).
        "host": f"http://127.0.0.1:{port}/api?token=token-in-query",
        "password": "the-api-key",
        "extra": {"max_retries": 0},
    }
    env = {"AIRFLOW_CONN_BRIGHTDATA_UNREACHABLE": json.dumps(unreachable)}

    result = run_dag(DAGS, "errors_unreachable", env=env)

    assert result.task_states == {"list": "failed"}
    logs = task_logs(caplog, capfd)
    assert f"Connection 'brightdata_unreachable', host 127.0.0.1:{port}: Check the Base URL (Host field)" in logs
    assert all(secret not in logs for secret in ("token-in-query", "the-api-key"))


@pytest.mark.timeout(300)
def test_a_large_return_value_warns_and_a_cap_fails_clearly(airflow_db, browsersessions_connections, caplog, capfd):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)
    emulator.seed_sessions(platform="brightdata", count=3000, seed=5)

    result = run_dag(DAGS, "xcom_size")

    logs = task_logs(caplog, capfd)
    assert result.task_states["everything"] == "success"
    everything = result.xcom("everything")
    assert len(everything) == 3000
    size = len(json.dumps(everything).encode())
    assert size > 1_000_000
    assert f"The return value is {size / 1_000_000:.1f} MB of JSON (3000 session(s)), above 1.0 MB" in logs
    assert "fields=[...]" in logs
    assert "max_results=N" in logs
    assert "do_xcom_push=False" in logs

    assert result.task_states["capped_bytes"] == "failed"
    assert "The listing's return value passed max_xcom_bytes=50000 after" in logs
    assert ("capped_bytes", -1, "return_value") not in result.xcoms  # nothing was pushed

    # Only the summary: no return value, the figures all there.
    assert ("summary_only", -1, "return_value") not in result.xcoms
    assert result.xcom("summary_only", key="summary")["count"] == 3000


@pytest.mark.timeout(300)
def test_the_summary_says_when_max_results_cut_the_listing(airflow_db, browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)
    emulator.seed_sessions(platform="brightdata", count=300, seed=5)

    result = run_dag(DAGS, "xcom_size")

    cut = result.xcom("cut", key="summary")
    assert cut["count"] == 50
    assert cut["truncated"] is True
    assert cut["server_total"] == 300
    assert result.xcom("everything", key="summary")["truncated"] is False


BAD_DAG = textwrap.dedent(
    """
    import pendulum
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator
    from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor

    with DAG(dag_id="typo", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
        {task}
    """
)


@pytest.mark.parametrize(
    ("task", "named", "allowed"),
    [
        (
            'ListBrowserSessionsOperator(task_id="t", conn_id="c", status="faild")',
            "'status'",
            "running, finished, failed",
        ),
        ('BrowserSessionsSensor(task_id="t", conn_id="c", started_after="yesterday")', "'started_after'", "ISO-8601"),
        ('BrowserSessionsSensor(task_id="t", conn_id="c", missing="ignore")', "'missing'", "finished, failed, wait"),
        ('ListBrowserSessionsOperator(task_id="t", conn_id="c", fields=["sesion_id"])', "'fields'", "session_id"),
    ],
    ids=["operator-status", "sensor-date", "sensor-missing", "operator-fields"],
)
def test_a_literal_typo_is_an_import_error_of_the_dag_file(tmp_path, task, named, allowed):
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11
        from airflow.models.dagbag import DagBag

    dag_file = tmp_path / "typo_dag.py"
    dag_file.write_text(BAD_DAG.format(task=task))
    bag = DagBag(dag_folder=str(dag_file))
    (error,) = bag.import_errors.values()
    assert f"Invalid value for {named}: expected" in error
    assert allowed in error
    assert "ParserError" not in error  # our message, without pendulum's chained traceback


def test_templated_values_are_left_for_the_run(tmp_path):
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11
        from airflow.models.dagbag import DagBag

    dag_file = tmp_path / "templated_dag.py"
    templated = (
        'BrowserSessionsSensor(task_id="t", conn_id="c", started_after="{{ data_interval_start }}", '
        'missing="{{ params.missing }}")'
    )
    dag_file.write_text(BAD_DAG.format(task=templated))
    bag = DagBag(dag_folder=str(dag_file))
    assert bag.import_errors == {}
    assert "typo" in bag.dag_ids
