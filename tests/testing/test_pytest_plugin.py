"""The pytest plugin's fixtures, used from a separate test file the way a user of the package writes one."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

USER_TESTS = Path(__file__).with_name("user_dag_tests.py.txt")


def test_a_users_test_file_runs_against_the_fixtures(pytester):
    pytester.makepyfile(test_user=USER_TESTS.read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_fixtures_really_wire_the_connections(pytester):
    # Without the fixture the default connection does not exist: the wiring is what makes the test pass.
    pytester.makepyfile(
        test_unwired="""
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook


def test_without_the_fixture():
    BrightDataBrowserHook().list_sessions()
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*brightdata_default*"])
