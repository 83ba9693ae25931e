"""Every fault kind, seen by a raw HTTP client; scripted, random and Cloudflare's lockout."""

from __future__ import annotations

import http.client
import json
import time

import pytest
import requests

from airflow_provider_browsersessions.testing import (
    DEFAULT_BRIGHTDATA_API_KEY,
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_API_TOKEN,
    Emulator,
)

BD_AUTH = {"Authorization": f"Bearer {DEFAULT_BRIGHTDATA_API_KEY}"}
CF_AUTH = {"Authorization": f"Bearer {DEFAULT_CLOUDFLARE_API_TOKEN}"}
CF_LIST = f"/client/v4/accounts/{DEFAULT_CLOUDFLARE_ACCOUNT_ID}/browser-rendering/devtools/session"


@pytest.fixture
def emulator():
    with Emulator(speed=0) as emulator:
        emulator.seed_sessions(platform="both", count=20, seed=4)
        yield emulator


def bd(emulator):
    return requests.get(f"{emulator.url}/browser_sessions", headers=BD_AUTH, timeout=10)


def cf(emulator):
    return requests.get(f"{emulator.url}{CF_LIST}", headers=CF_AUTH, timeout=10)


def test_429_carries_retry_after_in_each_platforms_shape(emulator):
    emulator.script_faults([{"kind": "429", "retry_after": 7}])
    limited = bd(emulator)
    assert (limited.status_code, limited.headers["Retry-After"], limited.json()) == (
        429,
        "7",
        {"error": "Too many requests"},
    )
    emulator.script_faults([{"kind": "429", "retry_after": 0.5}], platform="cloudflare")
    limited = cf(emulator)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "0.50")
    assert limited.json()["errors"][0]["code"] == 971


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_errors(emulator, kind):
    emulator.script_faults([{"kind": kind}])
    assert bd(emulator).status_code == int(kind)
    assert bd(emulator).status_code == 200  # a scripted fault is used once


def test_html_error_page_from_a_proxy(emulator):
    emulator.script_faults([{"kind": "html_error"}])
    response = bd(emulator)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert b"<h1>502 Bad Gateway</h1>" in response.content


def test_malformed_json_is_a_200_with_a_cut_body(emulator):
    emulator.script_faults([{"kind": "malformed_json"}])
    response = bd(emulator)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_latency_delays_the_answer(emulator):
    emulator.script_faults([{"kind": "latency", "seconds": 0.3}])
    started = time.monotonic()
    assert bd(emulator).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_close_mid_body_hangs_up_after_half_the_promised_body(emulator):
    emulator.script_faults([{"kind": "close_mid_body"}])
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    connection.request("GET", "/browser_sessions", headers=BD_AUTH)
    response = connection.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    connection.close()
    assert bd(emulator).status_code == 200


def test_scripts_match_by_platform_method_and_path_and_ok_passes_a_slot(emulator):
    emulator.script_faults([{"kind": "ok"}, {"kind": "503"}], platform="brightdata", method="GET", path_contains="/x")
    other_path = bd(emulator)  # does not match path_contains
    cloudflare = cf(emulator)  # other platform
    first = requests.get(f"{emulator.url}/browser_sessions/x", headers=BD_AUTH, timeout=10)
    second = requests.get(f"{emulator.url}/browser_sessions/x", headers=BD_AUTH, timeout=10)
    assert (other_path.status_code, cloudflare.status_code) == (200, 200)
    assert (first.status_code, second.status_code) == (404, 503)  # "ok" served normally: unknown id


def test_an_unknown_fault_kind_is_refused(emulator):
    with pytest.raises(ValueError, match="kind"):
        emulator.script_faults([{"kind": "explode"}])


def test_random_faults_are_reproducible_for_a_seed(emulator):
    def statuses(seed):
        emulator.set_random_faults(rate=0.5, kinds=["500", "503", "429"], seed=seed, retry_after=0)
        return [bd(emulator).status_code for _ in range(30)]

    first, again, other = statuses(1), statuses(1), statuses(2)
    assert first == again
    assert first != other
    assert 5 < sum(code != 200 for code in first) < 25
    log = emulator.request_log()
    assert {e["fault"] for e in log if e["status"] != 200} <= {"500", "503", "429"}


def test_random_faults_can_be_limited_to_one_platform(emulator):
    emulator.set_random_faults(rate=1.0, kinds=["500"], seed=0, platform="cloudflare")
    assert bd(emulator).status_code == 200
    assert cf(emulator).status_code == 500


def test_cloudflare_lockout_answers_429_to_every_call_until_the_window_ends(emulator):
    emulator.set_lockout(budget=3, window=0.6)
    started = time.monotonic()
    answers = [cf(emulator).status_code for _ in range(6)]
    assert answers[:3] == [200, 200, 200]
    assert set(answers[3:]) == {429}
    assert bd(emulator).status_code == 200  # Bright Data has no such lockout
    locked = cf(emulator)
    if time.monotonic() - started < 0.6:  # still inside the window (it is short): the 429 says how long is left
        assert locked.status_code == 429
        assert 0 < float(locked.headers["Retry-After"]) <= 0.6
    time.sleep(max(0.0, 0.65 - (time.monotonic() - started)))
    assert cf(emulator).status_code == 200
    lockout_entries = [e for e in emulator.request_log(platform="cloudflare") if e["fault"] == "lockout"]
    assert len(lockout_entries) >= 3


def test_the_request_log_never_holds_credentials(emulator):
    emulator.script_faults([{"kind": "500"}])
    bd(emulator)
    cf(emulator)
    text = json.dumps(emulator.request_log())
    assert DEFAULT_BRIGHTDATA_API_KEY not in text
    assert DEFAULT_CLOUDFLARE_API_TOKEN not in text
