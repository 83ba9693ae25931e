"""The pytest plugin's fixtures, used from separate test files the way a user of the package writes them."""

from __future__ import annotations

import os
from pathlib import Path

pytest_plugins = ["pytester"]

USER_TESTS = Path(__file__).with_name("user_dag_tests.py")

# Tests that must fail: without browsersessions_connections nothing points Airflow at the emulator, so the
# passing user tests above pass because of the fixture's wiring, not by accident.
MISWIRED_TESTS = """
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook


def test_wired(browsersessions_connections):
    browsersessions_connections.emulator.add_session("brightdata", duration=60)
    assert len(BrightDataBrowserHook().list_sessions()) == 1


def test_after_a_wired_test_the_connection_is_gone():
    BrightDataBrowserHook().list_sessions()


def test_an_emulator_alone_wires_nothing(browsersessions_emulator):
    browsersessions_emulator.add_session("brightdata", duration=60)
    BrightDataBrowserHook().list_sessions()


def test_a_wrong_expectation_fails(browsersessions_connections):
    browsersessions_connections.emulator.add_session("brightdata", duration=60)
    assert len(BrightDataBrowserHook().list_sessions()) == 2
"""


def test_a_users_test_files_run_against_the_fixtures(pytester, monkeypatch):
    # The subprocess inherits os.environ, so it uses the throwaway AIRFLOW_HOME of tests/conftest.py.
    assert Path(os.environ["AIRFLOW_HOME"]).is_dir()
    assert Path(os.environ["AIRFLOW_HOME"]) != Path.home() / "airflow"
    for name in (n for n in os.environ if n.startswith("AIRFLOW_CONN_")):
        monkeypatch.delenv(name)  # only the fixtures may define connections in the child
    # Checked from inside the child too: Airflow there writes into the throwaway home, never into ~/airflow.
    home_check = f"""
import os

from airflow.configuration import AIRFLOW_HOME


def test_the_child_uses_the_throwaway_airflow_home():
    assert os.environ["AIRFLOW_HOME"] == AIRFLOW_HOME == {os.environ["AIRFLOW_HOME"]!r}
"""
    pytester.makepyfile(test_user=USER_TESTS.read_text(), test_miswired=MISWIRED_TESTS, test_home=home_check)
    # A subprocess: Airflow's configuration is global to a process, and a user's run starts fresh too.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")

    result.assert_outcomes(passed=5, failed=3)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED test_user.py::test_failed_sessions_of_a_zone",
            "PASSED test_user.py::test_my_operator_pushes_its_filters_to_the_api",
            "PASSED test_user.py::test_my_code_survives_a_rate_limit",
            "PASSED test_miswired.py::test_wired",
            "PASSED test_home.py::test_the_child_uses_the_throwaway_airflow_home",
            "FAILED test_miswired.py::test_after_a_wired_test_the_connection_is_gone*",
            "FAILED test_miswired.py::test_an_emulator_alone_wires_nothing*",
            "FAILED test_miswired.py::test_a_wrong_expectation_fails*",
        ]
    )
    # Each failed for its own reason: two found no connection, one found the emulator's real answer.
    errors = [line for line in result.outlines if line.startswith("E ")]
    assert sum("brightdata_default" in line and "isn't defined" in line for line in errors) == 2
    assert any("assert 1 == 2" in line for line in errors)
