"""
The "Browser sessions" view inside Airflow 3's own API server app (``create_app``, its test client, the
simple auth manager's tokens), against the emulator over loopback HTTP.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from pathlib import Path

import pytest
from markupsafe import escape

from airflow_provider_browsersessions.compat import AIRFLOW_V_3_0_PLUS

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="the UI plugin needs Airflow 3's API server"),
]

BRIGHTDATA = "brightdata_default"
CLOUDFLARE = "cloudflare_browser_rendering_default"
BROWSERBASE = "browserbase_default"
SCRIPT_CANARY = '<script>alert("xss-url")</script>'
IMG_CANARY = "<img src=x onerror=alert('xss-error')>"
DAGS = Path(__file__).parent / "dags" / "ui_dags.py"

# Every authorization question the view asks the auth manager, in order, as (method, subject): recorded by
# CountingAuthManager, the auth manager this module's Airflow runs with.
QUESTIONS: list[tuple[str, object]] = []
_ASKING = threading.local()  # a question asked inside another (the base class's per-id loop) is not one more
_QUESTION_METHODS = (
    "is_authorized_connection",
    "is_authorized_dag",
    "is_authorized_view",
    "is_authorized_custom_view",
    "batch_is_authorized_connection",
    "batch_is_authorized_dag",
    "filter_authorized_connections",
    "filter_authorized_dag_ids",
    "get_authorized_connections",
    "get_authorized_dag_ids",
)


def _subject(kwargs: dict) -> object:
    details = kwargs.get("details")
    if "conn_ids" in kwargs:
        return frozenset(kwargs["conn_ids"])
    if "dag_ids" in kwargs:
        return frozenset(kwargs["dag_ids"])
    if details is not None and hasattr(details, "conn_id"):
        return details.conn_id
    if details is not None and hasattr(details, "id"):
        return (details.id, kwargs.get("access_entity"))
    return None


def _recording(name: str):
    def ask(self, **kwargs):
        outer = not getattr(_ASKING, "busy", False)
        if outer:
            QUESTIONS.append((name, _subject(kwargs)))
        _ASKING.busy = True
        try:
            return getattr(super(CountingAuthManager, self), name)(**kwargs)
        finally:
            _ASKING.busy = not outer

    ask.__name__ = name
    return ask


if AIRFLOW_V_3_0_PLUS:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    class CountingAuthManager(SimpleAuthManager):
        """Airflow's simple auth manager, unchanged, recording each authorization question asked of it."""

    for _name in _QUESTION_METHODS:
        setattr(CountingAuthManager, _name, _recording(_name))


@pytest.fixture(scope="module")
def emulator(airflow_db):
    from airflow_provider_browsersessions.testing.emulator import Emulator

    with Emulator(seed=3, sessions=0, speed=1.0) as started, pytest.MonkeyPatch.context() as patch:
        for name, value in started.connection_env().items():
            patch.setenv(name, value)
        yield started


@pytest.fixture(scope="module")
def stored_connections(emulator):
    """Both connections in the metadata DB (the chooser lists stored ones), plus one of another type."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    rows = {conn_id: json.loads(value) for conn_id, value in _env_by_id(emulator).items()}
    rows["some_http"] = {"conn_type": "http", "host": "http://127.0.0.1:1"}
    rows["brightdata_wrong_key"] = {**rows[BRIGHTDATA], "password": "wrong-key-canary-1234"}
    with create_session() as session:
        for conn_id, row in rows.items():
            extra = row.get("extra")
            session.add(
                Connection(
                    conn_id=conn_id,
                    conn_type=row["conn_type"],
                    host=row["host"],
                    password=row.get("password"),
                    extra=json.dumps(extra) if extra else None,
                )
            )
    yield rows
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.in_(list(rows))).delete(synchronize_session=False)


def _env_by_id(emulator) -> dict[str, str]:
    return {name.removeprefix("AIRFLOW_CONN_").lower(): value for name, value in emulator.connection_env().items()}


@pytest.fixture(scope="module")
def app(stored_connections):
    """Airflow's API server app, its auth manager the simple one that counts the questions it is asked."""
    from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__AUTH_MANAGER", f"{__name__}.CountingAuthManager")
        app = create_app()
        assert isinstance(get_auth_manager(), CountingAuthManager)
        yield app
    purge_cached_app()  # the next module's app gets the configured auth manager


@pytest.fixture(scope="module")
def tokens(app) -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = get_auth_manager()
    return {
        role: manager.generate_jwt(SimpleAuthManagerUser(username=f"{role}-user", role=role))
        for role in ("viewer", "user", "op", "admin")
    }


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app)


def view_state():
    """The running view's caches (the API server built the app on its first request)."""
    from airflow_provider_browsersessions.plugins.browser_sessions_plugin import BrowserSessionsPlugin

    lazy = BrowserSessionsPlugin.fastapi_apps[0]["app"]
    assert lazy._app is not None, "the view has not served a request yet"
    return lazy._app.state.view


@pytest.fixture
def fresh(client, tokens):
    """Every test starts from an empty cache, so it sees the emulator as it is now."""
    client.get("/browser-sessions/static/style.css")
    client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["admin"]))
    view_state().snapshots.clear()
    view_state().reads.clear()
    view_state().runs_index.clear()  # an index built by an earlier test (within its 15 s) misses newer runs
    view_state().health.clear()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ended_session(emulator, **fields):
    record = emulator.add_session("brightdata", duration=5, started_at=emulator.now() - 600, **fields)
    return record["session_id"]


def test_the_api_server_mounts_the_view_and_lists_it_in_the_ui_navigation(client, tokens):
    plugins = client.get("/api/v2/plugins", headers=auth(tokens["admin"])).json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "browser_sessions")
    assert ours["fastapi_apps"][0]["url_prefix"] == "/browser-sessions"
    views = {view["destination"]: view for view in ours["external_views"]}
    assert views["nav"]["name"] == "Browser sessions"
    assert views["nav"]["href"] == "/browser-sessions/"
    assert "{DAG_ID}" in views["task_instance"]["href"]
    assert "{MAP_INDEX}" in views["task_instance"]["href"]


def test_the_routes_are_module_functions_that_create_app_only_assembles():
    from fastapi.routing import APIRoute

    from airflow_provider_browsersessions.plugins import app as view

    def endpoints(app) -> dict[str, object]:
        return {route.path: route.endpoint for route in app.routes if isinstance(route, APIRoute)}

    first = endpoints(view.create_app())
    assert set(first) == {"/static/style.css", "/", "/api/sessions", "/task", "/api/task"}
    for path, endpoint in first.items():
        assert endpoint.__qualname__ == endpoint.__name__, path  # not a closure (before: create_app.<locals>.…)
        assert getattr(view, endpoint.__name__) is endpoint, path
    assert endpoints(view.create_app()) == first  # a second app serves the same functions, with its own caches


@pytest.mark.parametrize(
    "path",
    [
        "/browser-sessions/",
        f"/browser-sessions/?conn_id={BRIGHTDATA}",
        f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}",
        "/browser-sessions/task?dag_id=ui_links&run_id=r&task_id=wait",
        "/browser-sessions/api/task?dag_id=ui_links&run_id=r&task_id=wait",
    ],
)
def test_an_anonymous_request_gets_401(client, path):
    answer = client.get(path)
    assert answer.status_code == 401, answer.text
    assert answer.json() == {"detail": "Not authenticated"}


def test_a_forged_token_gets_403(client):
    answer = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth("not.a.jwt"))
    assert answer.status_code == 403


@pytest.mark.parametrize("role", ["viewer", "user"])
def test_a_user_without_connection_read_gets_403_and_no_data(client, tokens, emulator, fresh, role):
    running = emulator.add_session("brightdata", duration=None)["session_id"]
    before = emulator.request_count()
    for path in (
        f"/browser-sessions/?conn_id={BRIGHTDATA}",
        f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}",
        f"/browser-sessions/api/sessions?conn_id={CLOUDFLARE}",
        "/browser-sessions/",  # no connection chosen: none they may read, so nothing to show
    ):
        answer = client.get(path, headers=auth(tokens[role]))
        assert answer.status_code == 403, (path, answer.text)
        assert running not in answer.text
    assert emulator.request_count() == before  # refused before the platform was asked


def test_the_cookie_the_ui_sets_authenticates_the_page(client, tokens, fresh):
    # The UI frames the view; the browser sends Airflow's own session cookie with the frame's request.
    client.cookies.set("_token", tokens["op"])
    answer = client.get(f"/browser-sessions/?conn_id={BRIGHTDATA}")
    assert answer.status_code == 200, answer.text
    client.cookies.set("_token", tokens["viewer"])
    assert client.get(f"/browser-sessions/?conn_id={BRIGHTDATA}").status_code == 403


def test_the_json_shows_running_and_recently_ended_sessions_as_the_platform_lists_them(client, tokens, emulator, fresh):
    running = emulator.add_session("brightdata", duration=None, api_name="zone_live")["session_id"]
    failed = ended_session(
        emulator, outcome="failed", error={"code": "proxy_error", "message": "upstream refused"}, bandwidth=2048
    )
    old = emulator.add_session("brightdata", duration=5, started_at=emulator.now() - 3 * 86400)["session_id"]

    body = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).json()

    truth = {r["session_id"]: r for r in emulator.sessions("brightdata")}
    assert {s["session_id"] for s in body["running"]} == {sid for sid, r in truth.items() if r["status"] == "running"}
    assert running in {s["session_id"] for s in body["running"]}
    ended = {s["session_id"]: s for s in body["ended"]}
    assert ended[failed]["status"] == "failed"
    assert ended[failed]["error_code"] == "proxy_error"
    assert old not in ended  # ended three days ago: outside the 24-hour window
    assert {"code": "proxy_error", "message": "upstream refused", "count": 1} in body["errors"]
    assert body["has_history"] is True
    assert body["ended_by_status"]["failed"] == sum(1 for s in body["ended"] if s["status"] == "failed")
    assert len(body["hourly"]) == 24
    assert sum(h["failed"] for h in body["hourly"]) == body["ended_by_status"]["failed"]
    assert body["bandwidth_bytes"] == sum(s["bandwidth"] or 0 for s in body["ended"])
    durations = sorted(s["duration"] for s in body["ended"] if s["duration"] is not None)
    assert body["duration_seconds"]["p95"] == durations[-1] or body["duration_seconds"]["p95"] in durations


def test_the_page_shows_the_sessions_and_draws_the_charts_in_svg(client, tokens, emulator, fresh):
    running = emulator.add_session("brightdata", duration=None, api_name="zone_page")["session_id"]
    failed = ended_session(emulator, outcome="failed", error={"code": "dns_error", "message": "no such host"})

    answer = client.get(f"/browser-sessions/?conn_id={BRIGHTDATA}", headers=auth(tokens["op"]))

    assert answer.status_code == 200
    page = answer.text
    assert f'data-session-id="{running}"' in page
    assert "zone_page" in page
    assert f'data-session-id="{failed}"' in page
    assert "dns_error" in page
    assert "no such host" in page
    assert page.count("<svg") == 3  # sessions per hour, duration p50/p95, bandwidth
    assert re.search(r'<rect class="failed" [^>]*><title>\d\d:\d\d: \d+ failed</title>', page)
    assert '<meta http-equiv="refresh" content="15">' in page
    assert "<script" not in page  # no script at all: the refresh is a meta tag


def test_hostile_fields_render_as_text_under_a_strict_content_security_policy(client, tokens, emulator, fresh):
    canary = ended_session(
        emulator, outcome="failed", target_url=SCRIPT_CANARY, error={"code": "x<b>1</b>", "message": IMG_CANARY}
    )

    answer = client.get(f"/browser-sessions/?conn_id={BRIGHTDATA}", headers=auth(tokens["op"]))

    page = answer.text
    assert f'data-session-id="{canary}"' in page
    for canary_text in (SCRIPT_CANARY, IMG_CANARY, "<b>1</b>"):
        assert canary_text not in page
        assert str(escape(canary_text)) in page
    assert "<img" not in page
    assert "<script" not in page
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    # The JSON carries the text as data, served as JSON (never sniffed as HTML).
    data = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"]))
    assert data.headers["content-type"] == "application/json"
    assert SCRIPT_CANARY in {s["target_url"] for s in data.json()["ended"]}


def test_no_credential_reaches_the_page_or_the_json(client, tokens, emulator, stored_connections, fresh):
    secrets = [row["password"] for row in stored_connections.values() if row.get("password")]
    for conn_id in (BRIGHTDATA, CLOUDFLARE, BROWSERBASE, "brightdata_wrong_key"):
        for path in (f"/browser-sessions/?conn_id={conn_id}", f"/browser-sessions/api/sessions?conn_id={conn_id}"):
            text = client.get(path, headers=auth(tokens["admin"])).text
            assert not [secret for secret in secrets if secret in text], path


def test_a_rejected_key_is_a_502_naming_the_platform_and_status(client, tokens, fresh):
    answer = client.get("/browser-sessions/api/sessions?conn_id=brightdata_wrong_key", headers=auth(tokens["op"]))
    assert answer.status_code == 502
    assert "Bright Data" in answer.json()["detail"]
    assert "401" in answer.json()["detail"]
    page = client.get("/browser-sessions/?conn_id=brightdata_wrong_key", headers=auth(tokens["op"]))
    assert page.status_code == 502
    assert 'id="error"' in page.text


def test_an_unknown_connection_is_404_and_another_type_is_400(client, tokens, fresh):
    assert client.get("/browser-sessions/api/sessions?conn_id=nope", headers=auth(tokens["op"])).status_code == 404
    other = client.get("/browser-sessions/api/sessions?conn_id=some_http", headers=auth(tokens["op"]))
    assert other.status_code == 400
    assert "brightdata or browserbase or cloudflare_browser_rendering" in other.json()["detail"]


def test_the_chooser_offers_the_readable_connections_of_our_types(client, tokens, fresh):
    page = client.get("/browser-sessions/", headers=auth(tokens["op"])).text
    offered = re.findall(r'<option value="([^"]+)"', page)
    assert offered == sorted([BRIGHTDATA, "brightdata_wrong_key", CLOUDFLARE, BROWSERBASE])  # not the http one


def test_browserbase_shows_running_and_ended_sessions_with_proxy_bytes_and_no_live_credentials(
    client, tokens, emulator, fresh
):
    from airflow_provider_browsersessions.testing.emulator.browserbase_api import live_secret

    live = emulator.add_session("browserbase", duration=None)["id"]
    failed = emulator.add_session(
        "browserbase",
        duration=5,
        started_at=emulator.now() - 600,
        outcome="failed",
        failure="TIMED_OUT",
        proxyBytes=4096,
    )["id"]
    secrets = [live_secret(emulator.store.get("browserbase", sid)) for sid in (live, failed)]

    answer = client.get(f"/browser-sessions/?conn_id={BROWSERBASE}", headers=auth(tokens["op"]))
    body = client.get(f"/browser-sessions/api/sessions?conn_id={BROWSERBASE}", headers=auth(tokens["op"])).json()

    assert answer.status_code == 200
    assert f'data-session-id="{live}"' in answer.text
    assert f'data-session-id="{failed}"' in answer.text
    assert answer.text.count("<svg") == 3
    assert live in {s["session_id"] for s in body["running"]}
    ended = {s["session_id"]: s for s in body["ended"]}
    assert (ended[failed]["status"], ended[failed]["error_code"], ended[failed]["bandwidth"]) == (
        "failed",
        "TIMED_OUT",
        4096,
    )
    assert body["has_history"] is True
    assert body["bandwidth_bytes"] >= 4096
    for text in (answer.text, json.dumps(body)):
        assert not [secret for secret in secrets if secret in text]
        assert "signingKey" not in text


def _questions(client, path: str, token: str) -> tuple[int, tuple[str, object], list[tuple[str, object]]]:
    """The answer's status, the first question the request asked the auth manager, and the others."""
    QUESTIONS.clear()
    status = client.get(path, headers=auth(token)).status_code
    assert QUESTIONS, f"{path} asked the auth manager nothing"
    first, *others = QUESTIONS
    assert len(set(QUESTIONS)) == len(QUESTIONS), QUESTIONS  # never the same question twice
    return status, first, others


def _only_run_links(others: list[tuple[str, object]]) -> bool:
    # After its gate, a sessions request may ask only which DAGs' XCom its run links may show, once each.
    return all(name == "is_authorized_dag" for name, _ in others)


def test_each_request_asks_the_auth_manager_once_about_what_it_shows(client, tokens, stored_connections, fresh):
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    from airflow_provider_browsersessions.plugins.access import OUR_CONN_TYPES

    ours = {conn_id for conn_id, row in stored_connections.items() if row["conn_type"] in OUR_CONN_TYPES}
    assert {BRIGHTDATA, "brightdata_wrong_key", CLOUDFLARE} <= ours
    chooser = ("filter_authorized_connections", frozenset(ours))
    # The page: the chooser's connections and the one shown in one question (before: each, then that one again).
    for path, token, status in (
        (f"/browser-sessions/?conn_id={CLOUDFLARE}", "op", 200),
        ("/browser-sessions/", "op", 200),
        (f"/browser-sessions/?conn_id={BRIGHTDATA}", "viewer", 403),
        ("/browser-sessions/", "user", 403),
    ):
        answered, first, others = _questions(client, path, tokens[token])
        assert (answered, first) == (status, chooser), path
        assert _only_run_links(others), (path, others)
    # A connection defined outside the database (here: none at all) is asked about with the stored ones.
    answered, first, others = _questions(client, "/browser-sessions/?conn_id=env_only", tokens["op"])
    assert (answered, first, others) == (404, ("filter_authorized_connections", frozenset({*ours, "env_only"})), [])
    # The JSON: its connection, once.
    json_path = f"/browser-sessions/api/sessions?conn_id={CLOUDFLARE}"
    for token, status in (("op", 200), ("viewer", 403)):
        answered, first, others = _questions(client, json_path, tokens[token])
        assert (answered, first) == (status, ("is_authorized_connection", CLOUDFLARE)), token
        assert _only_run_links(others), others
    # The task pages: the DAG's XCom, through Airflow's own requires_access_dag (no such run: nothing else).
    xcom = ("is_authorized_dag", ("ui_links", DagAccessEntity.XCOM))
    for path, status in (("/browser-sessions/task", 200), ("/browser-sessions/api/task", 404)):
        query = "dag_id=ui_links&run_id=no-such&task_id=wait"
        answered, first, others = _questions(client, f"{path}?{query}", tokens["op"])
        assert (answered, first, others) == (status, xcom, []), path


def test_cloudflare_says_it_lists_active_sessions_only(client, tokens, emulator, fresh):
    live = emulator.add_session("cloudflare", duration=None)["sessionId"]
    answer = client.get(f"/browser-sessions/?conn_id={CLOUDFLARE}", headers=auth(tokens["op"]))
    assert answer.status_code == 200
    assert 'id="no-history"' in answer.text
    assert "lists only active sessions" in answer.text
    assert f'data-session-id="{live}"' in answer.text
    body = client.get(f"/browser-sessions/api/sessions?conn_id={CLOUDFLARE}", headers=auth(tokens["op"])).json()
    assert body["has_history"] is False


def test_many_open_browsers_cost_one_poll_per_connection_within_the_cache_time(client, tokens, emulator, fresh):
    emulator.clear_log()
    for _ in range(10):
        assert client.get(f"/browser-sessions/?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).status_code == 200
        client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["admin"]))
    # One snapshot: one list call for the running sessions, one per ending (finished, failed) for the ended ones.
    assert emulator.request_count(platform="brightdata") == 3
    assert view_state().snapshots.loads >= 1


def test_a_session_that_fails_appears_once_the_cache_expires(client, tokens, emulator, fresh):
    session_id = emulator.add_session("brightdata", duration=None)["session_id"]
    first = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).json()
    assert session_id in {s["session_id"] for s in first["running"]}

    emulator.end_session("brightdata", session_id, status="failed", error={"code": "crash", "message": "gone"})
    cached = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).json()
    assert session_id in {s["session_id"] for s in cached["running"]}  # within the TTL: the same snapshot

    view_state().snapshots.clear()  # what the TTL's expiry does
    later = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).json()
    assert {s["session_id"]: s["status"] for s in later["ended"]}[session_id] == "failed"


@pytest.fixture(scope="module")
def linked_run(emulator, stored_connections):
    """A real DAG run: the list operator names failed sessions, the sensor waits on two ids."""
    from airflow_harness import run_dag

    failed = [
        ended_session(emulator, outcome="failed", error={"code": "linked", "message": "for the links"})
        for _ in range(2)
    ]
    finished = ended_session(emulator, outcome="finished")
    result = run_dag(DAGS, "ui_links", conf={"ids": [failed[0], finished]})
    assert result.state == "success", result.task_states
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run_id = session.query(DagRun.run_id).filter(DagRun.dag_id == "ui_links").order_by(DagRun.id.desc()).first()[0]
    return {"run_id": run_id, "failed": failed, "finished": finished}


def test_a_session_links_to_the_task_instances_whose_xcom_names_it(client, tokens, linked_run, fresh):
    body = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).json()
    run_id = linked_run["run_id"]
    first = {(ref["task_id"], ref["url"]) for ref in body["runs"][linked_run["failed"][0]]}
    assert first == {
        ("list_failed", f"/dags/ui_links/runs/{_quoted(run_id)}/tasks/list_failed"),
        ("wait", f"/dags/ui_links/runs/{_quoted(run_id)}/tasks/wait"),
    }
    assert {ref["task_id"] for ref in body["runs"][linked_run["failed"][1]]} == {"list_failed"}
    assert {ref["task_id"] for ref in body["runs"][linked_run["finished"]]} == {"wait"}
    page = client.get(f"/browser-sessions/?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).text
    assert f'<a target="_top" href="/dags/ui_links/runs/{html.escape(_quoted(run_id))}/tasks/wait">' in page


def _quoted(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


def test_a_task_instance_shows_the_sessions_it_watched_with_their_state_now(client, tokens, linked_run, fresh):
    run_id = linked_run["run_id"]
    query = f"dag_id=ui_links&run_id={_quoted(run_id)}&task_id=wait&map_index=%7BMAP_INDEX%7D"  # as the UI sends it
    page = client.get(f"/browser-sessions/task?{query}", headers=auth(tokens["op"]))
    assert page.status_code == 200
    assert f'data-session-id="{linked_run["failed"][0]}"' in page.text
    assert f'data-session-id="{linked_run["finished"]}"' in page.text
    body = client.get(f"/browser-sessions/api/task?{query}", headers=auth(tokens["op"])).json()
    assert body["conn_id"] == BRIGHTDATA
    states = {row["session_id"]: row["now"] for row in body["sessions"]}
    assert states == {linked_run["failed"][0]: "failed", linked_run["finished"]: "finished"}
    assert body["task"]["url"] == f"/dags/ui_links/runs/{_quoted(run_id)}/tasks/wait"


def test_a_viewer_sees_a_tasks_xcom_states_but_nothing_read_from_the_connection(
    client, tokens, emulator, linked_run, fresh
):
    emulator.clear_log()
    query = f"dag_id=ui_links&run_id={_quoted(linked_run['run_id'])}&task_id=list_failed"
    body = client.get(f"/browser-sessions/api/task?{query}", headers=auth(tokens["viewer"])).json()
    assert "may not read connection" in body["note"]
    assert {row["session_id"] for row in body["sessions"]} >= set(linked_run["failed"])
    assert emulator.request_count() == 0


def test_a_task_tab_asks_about_the_dag_and_then_the_connection_its_xcom_names_once_each(
    client, tokens, linked_run, fresh
):
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    query = f"dag_id=ui_links&run_id={_quoted(linked_run['run_id'])}&task_id=wait"
    for path in ("/browser-sessions/task", "/browser-sessions/api/task"):
        for token in ("op", "viewer"):
            answered, first, others = _questions(client, f"{path}?{query}", tokens[token])
            assert answered == 200, (path, token)
            assert first == ("is_authorized_dag", ("ui_links", DagAccessEntity.XCOM))
            assert others == [("is_authorized_connection", BRIGHTDATA)], (path, token)


def test_a_task_of_another_operator_has_nothing_to_show(client, tokens, linked_run, fresh):
    query = f"dag_id=ui_links&run_id={_quoted(linked_run['run_id'])}&task_id=nope"
    page = client.get(f"/browser-sessions/task?{query}", headers=auth(tokens["op"]))
    assert page.status_code == 200
    assert 'id="not-ours"' in page.text
    assert client.get(f"/browser-sessions/api/task?{query}", headers=auth(tokens["op"])).status_code == 404


def test_a_task_tab_whose_session_reads_fail_shows_the_xcom_states_and_says_why(
    client, tokens, emulator, linked_run, fresh
):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    where = (
        XComModel.dag_id == "ui_links",
        XComModel.run_id == linked_run["run_id"],
        XComModel.task_id == "wait",
        XComModel.key == "return_value",
    )
    with create_session() as session:
        saved = session.execute(select(XComModel.value).where(*where)).scalar()
        ghosts = [{"session_id": f"ghost-{n}", "status": "running"} for n in range(3)]
        session.execute(update(XComModel).where(*where).values(value=json.dumps(ghosts)))
    emulator.clear_log()
    emulator.script_faults([{"kind": "503"}] * 30, platform="brightdata", path_contains="/browser_sessions/ghost")
    try:
        query = f"dag_id=ui_links&run_id={_quoted(linked_run['run_id'])}&task_id=wait"
        answer = client.get(f"/browser-sessions/api/task?{query}", headers=auth(tokens["op"]))
    finally:
        emulator.clear_faults()
        with create_session() as session:
            session.execute(update(XComModel).where(*where).values(value=saved))
    assert answer.status_code == 200, answer.text  # before: the read's error escaped as a 500
    body = answer.json()
    assert body["note"].startswith("A session could not be read (Bright Data API GET /browser_sessions/ghost-0")
    assert {row["session_id"]: row["now"] for row in body["sessions"]} == {f"ghost-{n}": "running" for n in range(3)}
    assert emulator.request_count(platform="brightdata", path_contains="/ghost") == 3  # the first read only
    # The read is the view's last ask of the platform: the connection's health shows it, failed, three attempts.
    health = view_state().health.of(BRIGHTDATA)
    assert (health.requests, health.failed, health.throttled) == (3, True, 0)


def _concurrently(count: int, call) -> list:
    """``call()`` from ``count`` threads released together; their results in any order."""
    barrier = threading.Barrier(count)
    results: list = []

    def one() -> None:
        barrier.wait(10)
        results.append(call())

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_viewers_of_a_failing_platform_share_one_attempt_and_its_failure(client, tokens, emulator, fresh):
    emulator.clear_log()
    emulator.script_faults([{"kind": "503"}] * 50, platform="brightdata")
    try:
        answers = _concurrently(
            4,
            lambda: client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])),
        )
        again = client.get(f"/browser-sessions/?conn_id={BRIGHTDATA}", headers=auth(tokens["op"]))
    finally:
        emulator.clear_faults()
    assert [answer.status_code for answer in answers] == [502] * 4
    assert all("503" in answer.json()["detail"] for answer in answers)
    assert again.status_code == 502  # the failure is served for a few seconds, not asked for again
    # One load with its two retries for every viewer; before: each viewer queued and ran it again (12 requests).
    assert emulator.request_count(platform="brightdata") <= 4


def _health_field(page: str, name: str) -> str:
    found = re.search(rf'<dd id="health-{name}">(.*?)</dd>', page, re.S)
    assert found, name
    return re.sub(r"<[^>]+>", "", found.group(1))


def test_the_page_shows_the_connections_health_as_the_view_saw_it(client, tokens, emulator, fresh):
    emulator.set_lockout(budget=50, window=300, platform="cloudflare")  # a fresh window: its count is ours
    emulator.clear_log()
    emulator.script_faults([{"kind": "429", "retry_after": 0.05}], platform="cloudflare")
    try:
        page = client.get(f"/browser-sessions/?conn_id={CLOUDFLARE}", headers=auth(tokens["op"]))
        asked = emulator.request_count(platform="cloudflare")
        body = client.get(f"/browser-sessions/api/sessions?conn_id={CLOUDFLARE}", headers=auth(tokens["op"])).json()
    finally:
        emulator.clear_faults()
    assert page.status_code == 200, page.text
    assert asked == 2  # the 429, then its retry
    assert _health_field(page.text, "cost").startswith("2 requests in ")
    assert _health_field(page.text, "throttled") == "1"
    assert _health_field(page.text, "budget").startswith("48 of 50 (96 %), reported at ")
    assert "(failed)" not in _health_field(page.text, "asked")
    assert "Only the requests this API server process made" in page.text
    health = body["health"]
    assert (health["requests"], health["throttled_last_hour"], health["failed"]) == (2, 1, False)
    assert (health["budget_remaining"], health["budget_quota"], health["budget_remaining_percent"]) == (48, 50, 96.0)
    assert emulator.request_count(platform="cloudflare") == asked  # the JSON came from the cache: nothing asked


def test_a_failed_poll_shows_its_429s_and_cost_beside_the_error(client, tokens, emulator, fresh):
    emulator.clear_log()
    emulator.script_faults([{"kind": "429", "retry_after": 0.05}] * 3, platform="brightdata")
    try:
        page = client.get(f"/browser-sessions/?conn_id={BRIGHTDATA}", headers=auth(tokens["op"]))
    finally:
        emulator.clear_faults()
    assert page.status_code == 502
    assert 'id="error"' in page.text
    assert "(failed)" in _health_field(page.text, "asked")
    assert _health_field(page.text, "cost").startswith("3 requests in ")  # the first attempt and two retries
    assert _health_field(page.text, "throttled") == "3"
    assert _health_field(page.text, "budget") == "not reported by the platform"  # Bright Data sends no Ratelimit


def test_the_health_carries_no_secret_url_or_session_id(client, tokens, emulator, stored_connections, fresh):
    running = emulator.add_session("brightdata", duration=None)["session_id"]
    body = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).json()
    health = json.dumps(body["health"])
    assert body["health"]["requests"] >= 1
    assert running not in health
    assert "http" not in health
    assert stored_connections[BRIGHTDATA]["password"] not in health


def test_a_platform_that_does_not_answer_gets_a_504_at_the_pages_deadline(client, tokens, emulator, fresh):
    state = view_state()
    emulator.clear_log()
    emulator.script_faults([{"kind": "stall_headers", "seconds": 3}], platform="brightdata")
    state.deadline = 0.5
    try:
        answer = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"]))
        page = client.get(f"/browser-sessions/?conn_id={BRIGHTDATA}", headers=auth(tokens["op"]))
    finally:
        state.deadline = 10.0
        emulator.clear_faults()
    assert answer.status_code == 504
    assert answer.json()["detail"].startswith("The platform did not answer within 0.5 s")
    assert page.status_code == 504
    assert 'id="error"' in page.text
    assert emulator.request_count(platform="brightdata") == 1  # the page's deadline ended it, nothing retried


def test_the_ended_listing_asks_one_status_per_request_whatever_runs(client, tokens, airflow_db, monkeypatch):
    from airflow_provider_browsersessions.testing.emulator import Emulator

    with Emulator(sessions=0, speed=0) as busy:
        for _ in range(1_500):  # old code: 15 pages of running sessions walked to find the ended ones
            busy.add_session("brightdata", duration=None, started_at=busy.now() - 3600)
        ended = busy.add_session("brightdata", duration=5, outcome="failed", started_at=busy.now() - 600)
        monkeypatch.setenv("AIRFLOW_CONN_BD_BUSY", _env_by_id(busy)[BRIGHTDATA])
        answer = client.get("/browser-sessions/api/sessions?conn_id=bd_busy", headers=auth(tokens["admin"]))
        log = busy.request_log(platform="brightdata")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [s["session_id"] for s in body["ended"]] == [ended["session_id"]]
    assert len(body["running"]) == 200
    assert body["truncated"] == ["running"]
    statuses = [entry["query"]["status"] for entry in log]
    assert all(len(values) == 1 for values in statuses)  # one status per request, pushed down
    assert sorted({values[0] for values in statuses}) == ["failed", "finished", "running"]
    assert len(log) <= 20


def test_error_answers_and_the_stylesheet_carry_the_security_headers(client, tokens, fresh):
    answers = {
        "401": client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}"),
        "404": client.get("/browser-sessions/api/sessions?conn_id=nope", headers=auth(tokens["op"])),
        "422": client.get("/browser-sessions/api/sessions", headers=auth(tokens["op"])),
        "css": client.get("/browser-sessions/static/style.css"),
    }
    assert [answers[code].status_code for code in ("401", "404", "422")] == [401, 404, 422]
    for name, answer in answers.items():
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert "default-src 'none'" in answer.headers["content-security-policy"], name
    for name in ("401", "404", "422"):
        assert answers[name].headers["cache-control"] == "no-store"
    assert answers["css"].headers["cache-control"] == "max-age=300"
    assert answers["css"].headers["content-type"].startswith("text/css")


def test_a_404_names_a_plain_connection_id_and_never_echoes_another(client, tokens, fresh):
    plain = client.get("/browser-sessions/api/sessions?conn_id=nope_2", headers=auth(tokens["op"]))
    assert plain.json()["detail"] == "No connection 'nope_2'."
    hostile = '<script>alert("x")</script>'
    answer = client.get("/browser-sessions/api/sessions", params={"conn_id": hostile}, headers=auth(tokens["op"]))
    assert answer.status_code == 404
    assert answer.json()["detail"] == "No connection of that id."
    assert "script" not in answer.text


def test_a_snapshot_keeps_no_raw_record(client, tokens, emulator, fresh):
    emulator.add_session("brightdata", duration=None)
    assert client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).is_success
    shot = view_state().snapshots.get(BRIGHTDATA, lambda: pytest.fail("the snapshot should be cached"))
    assert shot.running
    assert all(session.raw == {} for session in (*shot.running, *shot.ended))


def test_the_runs_index_and_the_task_tab_leave_an_xcom_value_above_the_bound_unread(
    client, tokens, linked_run, fresh, monkeypatch
):
    from airflow_provider_browsersessions.plugins import runs

    monkeypatch.setattr(runs, "MAX_XCOM_CHARS", 10)  # every value of the linked run is larger
    body = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).json()
    assert body["runs"] == {}
    assert view_state().runs_index.skipped >= 2
    query = f"dag_id=ui_links&run_id={_quoted(linked_run['run_id'])}&task_id=wait"
    task = client.get(f"/browser-sessions/api/task?{query}", headers=auth(tokens["op"])).json()
    assert (task["sessions"], task["total"]) == ([], None)
    assert re.fullmatch(r"The task's XCom holds [\d,]+ characters, more than the 10 this tab reads: .*", task["note"])
    page = client.get(f"/browser-sessions/task?{query}", headers=auth(tokens["op"])).text
    assert "more than the 10 this tab reads" in page
    assert "names no session" not in page
    monkeypatch.setattr(runs, "MAX_XCOM_CHARS", 2_000_000)
    view_state().runs_index.clear()
    body = client.get(f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}", headers=auth(tokens["op"])).json()
    assert linked_run["failed"][0] in body["runs"]
    assert view_state().runs_index.skipped == 0


# -- Figures for docs/reliability.md ("Poison input"): long trials, printed with -s; they assert counts and
# -- memory, never times.


def _timed_views(client, token: str, count: int, path: str) -> list[tuple[int, float]]:
    def one() -> tuple[int, float]:
        started = time.monotonic()
        status = client.get(path, headers=auth(token)).status_code
        return status, time.monotonic() - started

    return sorted(_concurrently(count, one), key=lambda answer: answer[1])


@pytest.mark.slow
@pytest.mark.parametrize("fault", [{"kind": "503"}, {"kind": "stall_headers", "seconds": 120}], ids=["503", "stall"])
def test_figures_four_viewers_of_a_failing_platform(client, tokens, emulator, fresh, fault):
    emulator.clear_log()
    emulator.script_faults([fault] * 50, platform="brightdata")
    try:
        answers = _timed_views(client, tokens["op"], 4, f"/browser-sessions/api/sessions?conn_id={BRIGHTDATA}")
        requests_made = emulator.request_count(platform="brightdata")
    finally:
        emulator.clear_faults()
    times = "/".join(f"{seconds:.1f}" for _, seconds in answers)
    print(
        f"\n4 viewers, every request {fault['kind']}: answers {[s for s, _ in answers]} in {times} s, "
        f"{requests_made} platform request(s)"
    )
    assert requests_made <= 4
    assert {status for status, _ in answers} <= {502, 504}


@pytest.mark.slow
def test_figures_twenty_thousand_running_bright_data_sessions(client, tokens, airflow_db, monkeypatch):
    from airflow_provider_browsersessions.testing.emulator import Emulator

    with Emulator(sessions=0, speed=0) as busy:
        for _ in range(20_000):
            busy.add_session("brightdata", duration=None, started_at=busy.now() - 3600)
        for _ in range(30):
            busy.add_session("brightdata", duration=5, outcome="failed", started_at=busy.now() - 600)
        monkeypatch.setenv("AIRFLOW_CONN_BD_HUGE", _env_by_id(busy)[BRIGHTDATA])
        started = time.monotonic()
        answer = client.get("/browser-sessions/api/sessions?conn_id=bd_huge", headers=auth(tokens["admin"]))
        seconds = time.monotonic() - started
        made = busy.request_count(platform="brightdata")
    print(f"\n20,000 running Bright Data sessions: one view in {seconds:.1f} s, {made} platform requests")
    assert answer.status_code == 200
    assert len(answer.json()["ended"]) == 30
    assert made <= 20


def _rss_peak_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.slow
def test_figures_two_hundred_thousand_record_xcom_results_and_the_runs_index(linked_run, fresh):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    from airflow_provider_browsersessions.plugins import runs

    where = (XComModel.dag_id == "ui_links", XComModel.run_id == linked_run["run_id"], XComModel.key == "return_value")
    with create_session() as session:
        saved = session.execute(select(XComModel.task_id, XComModel.value).where(*where)).all()
    record = {
        "provider": "brightdata",
        "session_id": "",
        "status": "finished",
        "started_at": "2026-12-01T00:00:00Z",
        "ended_at": "2026-12-01T00:01:00Z",
        "duration": 60.0,
        "api_name": "zone",
        "target_url": "https://example.com/a",
        "end_url": "https://example.com/b",
        "bandwidth": 123456,
        "error_code": None,
        "error_message": None,
    }
    try:
        with create_session() as session:
            for task_id, _ in saved:
                big = [{**record, "session_id": f"{task_id}-{n:06d}"} for n in range(100_000)]
                session.execute(
                    update(XComModel).where(*where, XComModel.task_id == task_id).values(value=json.dumps(big))
                )
                del big
        figures = {}
        for label, bound in (("bounded", runs.MAX_XCOM_CHARS), ("unbounded", 10**12)):
            index = runs.RunsIndex(read_rows=lambda bound=bound: runs._recent_rows(max_chars=bound))
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # VmHWM from here on
            before = _rss_mb()
            found = index.tasks_naming(["wait-000001"], dag_ids=lambda dags: dags)
            figures[label] = (_rss_peak_mb() - before, len(found), index.skipped)
            del index, found
        print(f"\ntwo 100,000-record XCom results, one runs-index build: {figures}")
        assert figures["bounded"][0] < 150
        assert figures["bounded"][2] == 2
    finally:
        with create_session() as session:
            for task_id, value in saved:
                session.execute(update(XComModel).where(*where, XComModel.task_id == task_id).values(value=value))
