"""A user's own test file: nothing but the package's pytest fixtures, as docs/emulator.md shows it.

Not collected by this project's suite (the name does not match ``test_*.py``): ``test_pytest_plugin.py`` runs it
in a separate pytest process, the way a user's project would, and expects every test in it to pass.
"""

# [START user_test]
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator


def test_failed_sessions_of_a_zone(browsersessions_connections):
    emulator = browsersessions_connections.emulator
    an_hour_ago = emulator.now() - 3600
    emulator.add_session("brightdata", api_name="shop", outcome="failed", duration=60, started_at=an_hour_ago)
    emulator.add_session("brightdata", api_name="shop", outcome="finished", duration=60, started_at=an_hour_ago)
    emulator.add_session("brightdata", api_name="blog", outcome="failed", duration=60, started_at=an_hour_ago)

    failed = BrightDataBrowserHook().list_sessions(api_name="shop", status="failed")

    assert [(s.api_name, s.status) for s in failed] == [("shop", "failed")]


def test_my_operator_pushes_its_filters_to_the_api(browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)  # freeze the clock: no session ends between the expectation and the listing
    emulator.seed_sessions(platform="brightdata", count=120, seed=7)
    expected = {r["session_id"] for r in emulator.sessions("brightdata") if r["status"] == "failed"}

    task = ListBrowserSessionsOperator(task_id="t", conn_id="brightdata_default", status="failed")
    listed = task.hook.list_sessions(task.build_query())

    assert {s.session_id for s in listed} == expected
    # One request, and the status filter went to the API instead of being applied after a full listing.
    (request,) = emulator.request_log(platform="brightdata")
    assert request["query"]["status"] == ["failed"]


def test_my_code_survives_a_rate_limit(browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.add_session("cloudflare", duration=600)
    emulator.script_faults([{"kind": "429", "retry_after": 0}], platform="cloudflare")

    sessions = CloudflareBrowserRenderingHook().list_sessions()

    assert len(sessions) == 1
    assert emulator.request_count(platform="cloudflare") == 2  # the 429, then the retry


# [END user_test]
