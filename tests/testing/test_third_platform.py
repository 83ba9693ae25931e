"""
A third platform joins the emulator with one module of its own and one line in the routing table.

``ACME`` below is that module, written here instead of in ``testing/emulator/``: one list path
(``GET /acme/v1/sessions``), one read path (``GET /acme/v1/sessions/{id}``), its credentials, records,
seeding, 429 shape and rate budget. The test hands ``Emulator`` the routing table plus ``ACME``
(``apis=``, what the line in ``server.PLATFORM_APIS`` does for a shipped platform) and drives a real
server over HTTP: nothing in ``server.py``, ``store.py``, ``routes.py`` or ``faults.py`` knows the platform.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError

import pytest

from airflow_provider_browsersessions.testing.emulator import Emulator, EmulatorClient
from airflow_provider_browsersessions.testing.emulator.faults import RateBudget
from airflow_provider_browsersessions.testing.emulator.responses import Reply
from airflow_provider_browsersessions.testing.emulator.routes import ApiCall, EmulatorState, PlatformApi
from airflow_provider_browsersessions.testing.emulator.server import PLATFORM_APIS

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator, Mapping

    from airflow_provider_browsersessions.testing.emulator.store import StoredSession

pytestmark = pytest.mark.timeout(60)

ACME_KEY = "acme-test-key"


# -- the acme emulator module ----------------------------------------------------------------------


def acme_record(session: StoredSession, now: float, server_url: str) -> dict[str, Any]:
    return {
        "id": session.session_id,
        "state": session.status_at(now),
        "label": session.fields["label"],
        "note": session.fields.get("note"),
        "console": f"{server_url}/acme/console/{session.session_id}",
    }


def acme_handle(state: EmulatorState, call: ApiCall) -> Reply:
    if call.headers.get("X-Acme-Key") != state.settings["acme_api_key"]:
        return Reply(401, {"message": "unknown key"})
    if call.method != "GET" or call.segments[:3] != ["acme", "v1", "sessions"] or len(call.segments) > 4:
        return Reply(404, {"message": "no such route"})
    now = state.now()
    if len(call.segments) == 3:
        every = state.store.listing(("acme", "all"), now, lambda s, at: True, lambda s, at: (s.start, s.session_id))
        return Reply(200, {"items": [acme_record(s, now, state.url) for s in every]})
    session = state.store.get("acme", call.segments[3])
    if session is None:
        return Reply(404, {"message": "no such session"})
    record = acme_record(session, now, state.url)
    return Reply(200, {"session": record} if state.options["acme_wrapped"] else record)


def acme_new_fields(rng: random.Random, outcome: str) -> dict[str, Any]:
    return {"label": rng.choice(("alpha", "beta", "gamma"))}


def acme_ended_fields(status: str, *, note: str | None = None) -> dict[str, Any]:
    return {"note": note}


def acme_connection(base_url: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {"conn_type": "acme", "host": base_url, "password": settings["acme_api_key"]}


ACME = PlatformApi(
    name="acme",
    title="Acme",
    owns=lambda segments: segments[0] == "acme",
    handle=acme_handle,
    is_list=lambda call: call.segments[-1] == "sessions",
    repeated_page=acme_handle,
    rate_limited=lambda retry_after: Reply(429, {"message": "slow down"}, {"Retry-After": retry_after}),
    raw_rate_limited=lambda: Reply(429, {"message": "slow down"}),
    record=acme_record,
    new_fields=acme_new_fields,
    ended_fields=acme_ended_fields,
    history=600.0,
    connection=acme_connection,
    default_conn_id="acme_default",
    base_path="/acme/v1",
    settings={"acme_api_key": "acme-default-key"},
    options=("acme_wrapped",),
    max_running=2,
    rate_budget=RateBudget(requests=1000, window=300.0),
)

# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(speed=0, apis=(*PLATFORM_APIS, ACME), acme_api_key=ACME_KEY) as running:
        yield running


def get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def acme_get(emulator: Emulator, path: str, key: str = ACME_KEY) -> tuple[int, dict[str, str], Any]:
    return get(f"{emulator.base_url('acme')}{path}", {"X-Acme-Key": key})


def test_a_third_platform_is_listed_and_read_over_http_beside_the_other_two(emulator):
    control = EmulatorClient(emulator.url)
    added = control.add_session("acme", duration=30, label="checkout")
    seeded = control.seed_sessions(platform="acme", count=5, seed=3)

    status, _, listing = acme_get(emulator, "/sessions")
    assert status == 200
    assert sorted(item["id"] for item in listing["items"]) == sorted([added["id"], *seeded])
    assert added == {
        "id": added["id"],
        "state": "running",
        "label": "checkout",
        "note": None,
        "console": f"{emulator.url}/acme/console/{added['id']}",
    }

    control.advance(31)
    status, _, read = acme_get(emulator, f"/sessions/{added['id']}")
    assert (status, read["state"], read["label"]) == (200, "finished", "checkout")
    ended = control.end_session("acme", seeded[0], status="failed", note="evicted")
    assert (ended["state"], ended["note"]) == ("failed", "evicted")
    assert control.sessions("acme") == emulator.sessions("acme")
    assert len(control.sessions("acme")) == 6

    assert acme_get(emulator, "/sessions", key="wrong")[0:3:2] == (401, {"message": "unknown key"})
    assert acme_get(emulator, "/sessions/nope")[0:3:2] == (404, {"message": "no such session"})
    # The two shipped platforms are still served, each by its own module.
    bright = get(
        f"{emulator.brightdata_base_url}/browser_sessions", {"Authorization": f"Bearer {emulator.brightdata_api_key}"}
    )
    assert (bright[0], bright[2]["total"]) == (200, 0)
    assert [entry["platform"] for entry in control.request_log()] == ["acme"] * 4 + ["brightdata"]


def test_its_settings_connection_and_options_come_from_its_module(emulator):
    assert emulator.acme_api_key == ACME_KEY
    assert emulator.acme_base_url == f"{emulator.url}/acme/v1"
    env = emulator.connection_env(acme_conn_id="acme_shop")
    assert json.loads(env["AIRFLOW_CONN_ACME_SHOP"]) == {
        "conn_type": "acme",
        "host": f"{emulator.url}/acme/v1",
        "password": ACME_KEY,
    }
    assert {"AIRFLOW_CONN_BRIGHTDATA_DEFAULT", "AIRFLOW_CONN_CLOUDFLARE_BROWSER_RENDERING_DEFAULT"} < env.keys()

    session = emulator.add_session("acme", duration=None)
    EmulatorClient(emulator.url).set_options(acme_wrapped=True)
    assert acme_get(emulator, f"/sessions/{session['id']}")[2] == {"session": session}
    emulator.reset()
    assert emulator.options == {
        "cloudflare_envelope": False,
        "cloudflare_null_for_missing": False,
        "acme_wrapped": False,
    }


def test_seeding_every_platform_includes_it_within_its_concurrency(emulator):
    ids = emulator.seed_sessions(platform="both", count=200, seed=7)
    records = emulator.sessions("acme")
    assert len(records) == 200
    assert len(ids) == 200 * len(emulator.apis)  # each shipped platform and acme
    assert {r["state"] for r in records} <= {"running", "finished", "failed"}
    assert sum(r["state"] == "running" for r in records) <= 2  # its max_running
    assert {r["label"] for r in records} <= {"alpha", "beta", "gamma"}


def test_faults_use_its_own_shapes_and_its_own_rate_budget(emulator):
    emulator.script_faults([{"kind": "429", "retry_after": 2}, {"kind": "500"}], platform="acme")
    status, headers, body = acme_get(emulator, "/sessions")
    assert (status, headers["Retry-After"], body) == (429, "2", {"message": "slow down"})
    assert acme_get(emulator, "/sessions")[0:3:2] == (500, {"error": "Internal server error"})  # no 500 of its own

    emulator.set_lockout(budget=2, window=300, platform="acme")
    first = acme_get(emulator, "/sessions")
    assert first[1]["Ratelimit-Policy"] == '"default";q=2;w=300'
    acme_get(emulator, "/sessions")
    locked = acme_get(emulator, "/sessions")
    assert (locked[0], locked[2]) == (429, {"message": "slow down"})
    assert emulator.request_log(platform="acme")[-1]["fault"] == "lockout"
    # Cloudflare keeps its own budget: acme's lockout is not its lockout.
    cloudflare = get(
        f"{emulator.cloudflare_base_url}/accounts/{emulator.cloudflare_account_id}/browser-rendering/devtools/session",
        {"Authorization": f"Bearer {emulator.cloudflare_api_token}"},
    )
    assert (cloudflare[0], cloudflare[1]["Ratelimit-Policy"]) == (200, '"default";q=1200;w=300')


def test_its_own_end_details_only(emulator):
    session = emulator.add_session("acme", duration=None)
    with pytest.raises(TypeError, match=r"end_session on acme.*close_reason"):
        emulator.end_session("acme", session["id"], close_reason="NormalClosure")
    with pytest.raises(HTTPError) as refused:
        EmulatorClient(emulator.url).end_session("acme", session["id"], error={"code": "x", "message": "y"})
    assert refused.value.code == 400
    assert emulator.get_record("acme", session["id"])["state"] == "running"


def test_an_emulator_without_it_neither_serves_nor_accepts_it():
    with pytest.raises(TypeError, match=r"acme_api_key.*brightdata_api_key"):
        Emulator(acme_api_key=ACME_KEY)
    with pytest.raises(ValueError, match="its own name"):
        Emulator(apis=(*PLATFORM_APIS, ACME, ACME))
    with pytest.raises(ValueError, match="settings another platform has: acme_api_key"):
        Emulator(apis=(*PLATFORM_APIS, ACME, dataclasses.replace(ACME, name="acme2")))
    with Emulator(speed=0) as plain:
        status, _, _ = get(f"{plain.url}/acme/v1/sessions", {"X-Acme-Key": ACME_KEY})
        assert status == 404
        assert plain.request_log() == []
        with pytest.raises(ValueError, match="platform must be one of brightdata, cloudflare, browserbase, not 'acme'"):
            plain.add_session("acme")
