"""Every fault kind, seen by a raw HTTP client; scripted, random and Cloudflare's lockout; the request log."""

from __future__ import annotations

import contextlib
import http.client
import json
import time

import pytest
import requests

from airflow_provider_browsersessions.testing import (
    DEFAULT_BRIGHTDATA_API_KEY,
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_API_TOKEN,
    DEFAULT_CLOUDFLARE_EMAIL,
    DEFAULT_CLOUDFLARE_GLOBAL_KEY,
    Emulator,
)

BD_AUTH = {"Authorization": f"Bearer {DEFAULT_BRIGHTDATA_API_KEY}"}
CF_AUTH = {"Authorization": f"Bearer {DEFAULT_CLOUDFLARE_API_TOKEN}"}
CF_LIST = f"/client/v4/accounts/{DEFAULT_CLOUDFLARE_ACCOUNT_ID}/browser-rendering/devtools/session"
REQUESTS = {  # one list call per platform, as a raw client sends it
    "brightdata": ("/browser_sessions", BD_AUTH),
    "cloudflare": (CF_LIST, CF_AUTH),
}


@pytest.fixture
def emulator():
    with Emulator(speed=0) as emulator:
        emulator.seed_sessions(platform="both", count=20, seed=4)
        yield emulator


def bd(emulator, path="/browser_sessions"):
    return requests.get(f"{emulator.url}{path}", headers=BD_AUTH, timeout=10)


def cf(emulator, path=""):
    return requests.get(f"{emulator.url}{CF_LIST}{path}", headers=CF_AUTH, timeout=10)


def call(emulator, platform):
    path, headers = REQUESTS[platform]
    return requests.get(f"{emulator.url}{path}", headers=headers, timeout=10)


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
    assert limited.json()["success"] is False
    assert limited.json()["errors"][0]["code"] == 971
    assert "Ratelimit" in limited.headers


@pytest.mark.parametrize(
    ("platform", "kind", "body"),
    [
        ("brightdata", "500", {"error": "Internal server error"}),
        ("brightdata", "503", {"error": "Service unavailable"}),
        (
            "cloudflare",
            "500",
            {
                "success": False,
                "errors": [{"code": 2000, "message": "Internal server error"}],
                "messages": [],
                "result": None,
            },
        ),
        ("cloudflare", "503", {"error": "Service unavailable"}),
    ],
)
def test_server_errors_in_each_platforms_shape(emulator, platform, kind, body):
    emulator.script_faults([{"kind": kind}], platform=platform)
    failed = call(emulator, platform)
    assert (failed.status_code, failed.json()) == (int(kind), body)
    assert call(emulator, platform).status_code == 200  # a scripted fault is used once


@pytest.mark.parametrize("platform", ["brightdata", "cloudflare"])
def test_html_error_page_from_a_proxy(emulator, platform):
    emulator.script_faults([{"kind": "html_error"}], platform=platform)
    response = call(emulator, platform)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert b"<h1>502 Bad Gateway</h1>" in response.content


@pytest.mark.parametrize("platform", ["brightdata", "cloudflare"])
def test_malformed_json_is_a_200_with_a_cut_body(emulator, platform):
    emulator.script_faults([{"kind": "malformed_json"}], platform=platform)
    response = call(emulator, platform)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert call(emulator, platform).json() is not None


@pytest.mark.parametrize("platform", ["brightdata", "cloudflare"])
def test_latency_delays_the_normal_answer(emulator, platform):
    normal = call(emulator, platform).json()
    emulator.script_faults([{"kind": "latency", "seconds": 0.3}], platform=platform)
    started = time.monotonic()
    delayed = call(emulator, platform)
    # Only a lower bound: the machine may be slow, but the answer cannot come before the delay.
    assert time.monotonic() - started >= 0.3
    assert (delayed.status_code, delayed.json()) == (200, normal)


def test_close_mid_body_hangs_up_after_half_the_promised_body(emulator):
    emulator.script_faults([{"kind": "close_mid_body"}])
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    connection.request("GET", "/browser_sessions", headers=BD_AUTH)
    response = connection.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert 0 < len(cut.value.partial) < int(response.headers["Content-Length"])
    connection.close()
    assert bd(emulator).status_code == 200


def test_close_mid_body_is_a_broken_connection_for_requests(emulator):
    emulator.script_faults([{"kind": "close_mid_body"}], platform="cloudflare")
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        cf(emulator)
    assert cf(emulator).status_code == 200


def cf_close_url(emulator, session_id):
    return f"{emulator.url}{CF_LIST.removesuffix('/session')}/browser/{session_id}"


def test_drop_after_apply_closes_the_session_and_hangs_up_without_an_answer(emulator):
    session = emulator.add_session("cloudflare", duration=None)
    emulator.script_faults([{"kind": "drop_after_apply"}], method="DELETE")
    with pytest.raises(requests.exceptions.ConnectionError, match=r"RemoteDisconnected|without response"):
        requests.delete(cf_close_url(emulator, session["sessionId"]), headers=CF_AUTH, timeout=10)
    assert emulator.get_record("cloudflare", session["sessionId"])["closeReasonText"] == "NormalClosure"
    (logged,) = [e for e in emulator.request_log() if e["method"] == "DELETE"]
    assert (logged["fault"], logged["status"]) == ("drop_after_apply", None)


def test_drop_after_apply_with_a_status_answers_a_gateway_error_after_acting(emulator):
    session = emulator.add_session("cloudflare", duration=None)
    emulator.script_faults([{"kind": "drop_after_apply", "status": 504}], method="DELETE")
    answer = requests.delete(cf_close_url(emulator, session["sessionId"]), headers=CF_AUTH, timeout=10)
    assert (answer.status_code, answer.json()) == (504, {"error": "Gateway Timeout"})
    assert emulator.get_record("cloudflare", session["sessionId"])["closeReasonText"] == "NormalClosure"


def test_scripts_match_by_platform_method_and_path_and_ok_passes_a_slot(emulator):
    # [START scripted_faults]
    emulator.script_faults([{"kind": "ok"}, {"kind": "503"}], platform="brightdata", method="GET", path_contains="/x")
    other_path = bd(emulator)  # does not match path_contains: served normally, the script is untouched
    cloudflare = cf(emulator)  # another platform: served normally
    first = bd(emulator, "/browser_sessions/x")  # "ok": served normally (an unknown id: 404)
    second = bd(emulator, "/browser_sessions/x")  # the 503
    third = bd(emulator, "/browser_sessions/x")  # the script is used up
    assert (other_path.status_code, cloudflare.status_code) == (200, 200)
    assert (first.status_code, second.status_code, third.status_code) == (404, 503, 404)
    # [END scripted_faults]


def test_scripts_match_by_method(emulator):
    session = emulator.add_session("cloudflare", duration=600)
    emulator.script_faults([{"kind": "500"}], method="DELETE")
    assert cf(emulator).status_code == 200  # a GET does not use the DELETE's fault
    url = f"{emulator.url}{CF_LIST.removesuffix('/session')}/browser/{session['sessionId']}"
    assert requests.delete(url, headers=CF_AUTH, timeout=10).status_code == 500
    assert requests.delete(url, headers=CF_AUTH, timeout=10).json() == {"status": "closing"}


def test_scripts_queue_in_order(emulator):
    emulator.script_faults([{"kind": "500"}, {"kind": "429", "retry_after": 0}, {"kind": "503"}])
    assert [bd(emulator).status_code for _ in range(4)] == [500, 429, 503, 200]


def test_an_unknown_fault_kind_is_refused(emulator):
    with pytest.raises(ValueError, match="kind"):
        emulator.script_faults([{"kind": "explode"}])
    with pytest.raises(ValueError, match="kind"):
        emulator.set_random_faults(rate=0.5, kinds=["explode"], seed=1)
    with pytest.raises(ValueError, match="rate"):
        emulator.set_random_faults(rate=1.5, kinds=["500"], seed=1)


def test_random_faults_are_reproducible_for_a_seed(emulator):
    def statuses(seed):
        emulator.set_random_faults(rate=0.5, kinds=["500", "503", "429"], seed=seed, retry_after=0)
        return [bd(emulator).status_code for _ in range(30)]

    first, again, other = statuses(1), statuses(1), statuses(2)
    assert first == again
    assert first != other
    assert 5 < sum(code != 200 for code in first) < 25
    assert {code for code in first if code != 200} == {500, 503, 429}
    log = emulator.request_log()
    assert [e["fault"] is None for e in log] == [e["status"] == 200 for e in log]


def test_random_faults_can_be_limited_to_one_platform(emulator):
    emulator.set_random_faults(rate=1.0, kinds=["500"], seed=0, platform="cloudflare")
    assert bd(emulator).status_code == 200
    assert cf(emulator).status_code == 500
    emulator.clear_faults()
    assert cf(emulator).status_code == 200


def test_cloudflare_lockout_answers_429_to_every_call_for_the_lockout_period(emulator):
    # The window is scaled down from Cloudflare's 300 s. A burst must fall inside one window for its
    # answers to be predictable; on a very slow machine the window is widened and the burst repeated.
    for window in (0.5, 2.0, 8.0):
        burst_started = time.monotonic()
        emulator.clear_log()
        emulator.set_lockout(budget=3, window=window)
        brightdata = [bd(emulator).status_code for _ in range(5)]  # Bright Data neither counts nor is locked out
        cloudflare = [cf(emulator) for _ in range(6)]
        brightdata.append(bd(emulator).status_code)
        if time.monotonic() - burst_started < window:
            break
    else:
        pytest.fail("the machine never sent 12 loopback requests within 8 s")
    assert brightdata == [200] * 6
    assert [r.status_code for r in cloudflare] == [200, 200, 200, 429, 429, 429]
    for locked in cloudflare[3:]:
        assert locked.json()["errors"][0]["code"] == 971
        assert 0 < float(locked.headers["Retry-After"]) <= window  # what is left of the lockout
        assert locked.headers["Ratelimit"].startswith('"default";r=0;')
    assert [e["fault"] for e in emulator.request_log(platform="cloudflare")] == [None] * 3 + ["lockout"] * 3

    time.sleep(float(cloudflare[-1].headers["Retry-After"]) + 0.05)
    assert cf(emulator).status_code == 200  # the lockout is over: a new window


def test_every_cloudflare_answer_carries_its_rate_budget(emulator):
    first = cf(emulator)
    assert first.headers["Ratelimit-Policy"] == '"default";q=1200;w=300'  # Cloudflare's budget, on by default
    assert first.headers["Ratelimit"].startswith('"default";r=1199;t=')
    emulator.set_lockout(budget=120, window=30)
    answers = [cf(emulator) for _ in range(3)]
    assert [a.headers["Ratelimit"].split(";")[1] for a in answers] == ["r=119", "r=118", "r=117"]
    assert {a.headers["Ratelimit-Policy"] for a in answers} == {'"default";q=120;w=30'}
    emulator.script_faults([{"kind": "503"}], platform="cloudflare")
    assert cf(emulator).headers["Ratelimit"].split(";")[1] == "r=116"  # errors count and carry it too
    assert "Ratelimit" not in bd(emulator).headers  # Bright Data publishes no such headers


def test_a_lockout_lasts_its_own_period_not_the_windows_end(emulator):
    emulator.set_lockout(budget=1, window=60, lockout=0.5)
    assert [cf(emulator).status_code for _ in range(2)] == [200, 429]
    time.sleep(0.6)
    assert cf(emulator).status_code == 200  # the lockout (0.5 s) ended long before the window (60 s)
    with pytest.raises(ValueError, match="budget"):
        emulator.set_lockout(budget=-1, window=1)
    with pytest.raises(ValueError, match="above 0"):
        emulator.set_lockout(budget=1, window=0)


def test_lockout_off_turns_the_budget_and_its_headers_off(emulator):
    emulator.set_lockout(budget=0, window=60)
    assert cf(emulator).status_code == 429
    emulator.set_lockout(budget=None)
    answer = cf(emulator)
    assert answer.status_code == 200
    assert "Ratelimit" not in answer.headers


# -- hostile networks --------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["brightdata", "cloudflare"])
def test_trickle_sends_the_headers_then_the_body_a_few_bytes_at_a_time(emulator, platform):
    emulator.script_faults([{"kind": "trickle", "bytes_per_second": 20, "size": 100_000}], platform=platform)
    path, headers = REQUESTS[platform]
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()  # the headers come at once
    assert (response.status, response.headers["Content-Length"]) == (200, "100000")
    started = time.monotonic()
    received = response.read(10)
    # Only a lower bound: 10 bytes at 20 per second cannot all come in less than a few tenths of a second.
    assert len(received) == 10
    assert time.monotonic() - started >= 0.2
    connection.close()  # hanging up ends the trickle
    assert call(emulator, platform).status_code == 200


def test_stall_headers_answers_nothing_until_the_client_hangs_up(emulator):
    emulator.script_faults([{"kind": "stall_headers", "seconds": 60}])
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{emulator.url}/browser_sessions", headers=BD_AUTH, timeout=(5, 0.5))
    assert bd(emulator).status_code == 200  # other connections are served meanwhile
    assert [e["fault"] for e in emulator.request_log()] == ["stall_headers", None]
    assert emulator.request_log()[0]["status"] is None  # nothing was answered


def test_gzip_bomb_is_a_small_body_that_inflates_to_its_size(emulator):
    import zlib

    emulator.script_faults([{"kind": "gzip_bomb", "size": 20_000_000}])
    response = requests.get(f"{emulator.url}/browser_sessions", headers=BD_AUTH, timeout=30, stream=True)
    assert response.headers["Content-Encoding"] == "gzip"
    raw = response.raw.read(decode_content=False)
    assert len(raw) < 200_000
    assert len(zlib.decompress(raw, 16 + zlib.MAX_WBITS)) == 20_000_000


@pytest.mark.parametrize("value", ["0", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", "soon-ish", "999999999"])
def test_429_raw_sends_its_retry_after_exactly_as_given(emulator, value):
    emulator.script_faults([{"kind": "429_raw", "retry_after": value}], platform="cloudflare")
    limited = cf(emulator)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, value)
    assert limited.json()["errors"][0]["code"] == 971


def test_redirect_answers_its_status_and_location(emulator):
    emulator.script_faults([{"kind": "redirect", "status": 307, "location": "https://elsewhere.example/x?t=1"}])
    moved = requests.get(f"{emulator.url}/browser_sessions", headers=BD_AUTH, timeout=10, allow_redirects=False)
    assert (moved.status_code, moved.headers["Location"]) == (307, "https://elsewhere.example/x?t=1")


@pytest.mark.parametrize(
    ("fault", "complaint"),
    [
        ({"kind": "trickle", "bytes_per_second": 0}, "bytes_per_second"),
        ({"kind": "stall_headers", "seconds": "long"}, "seconds"),
        ({"kind": "gzip_bomb"}, "size"),
        ({"kind": "gzip_bomb", "size": 1024**3 + 1}, "at most 1,073,741,824 bytes"),
        ({"kind": "trickle", "size": 10**12}, "at most 16,777,216 bytes"),
        ({"kind": "429_raw", "retry_after": 5}, "raw Retry-After"),
        ({"kind": "redirect"}, "location"),
        ({"kind": "redirect", "location": "/x", "status": 200}, "300..399"),
        ({"kind": "drop_after_apply", "status": 404}, "500..599"),
    ],
)
def test_network_faults_are_checked_when_scripted(emulator, fault, complaint):
    with pytest.raises(ValueError, match=complaint):
        emulator.script_faults([fault])


def test_the_request_log_records_each_api_request(emulator):
    emulator.script_faults([{"kind": "503"}], platform="cloudflare")
    requests.get(
        f"{emulator.url}/browser_sessions", params={"status": "failed", "limit": 5}, headers=BD_AUTH, timeout=10
    )
    cf(emulator)
    requests.get(f"{emulator.url}/_emulator/health", timeout=10)  # control calls are not API requests
    first, second = emulator.request_log()
    assert set(first) == {"seq", "platform", "method", "path", "query", "raw_query", "status", "fault", "bytes", "time"}
    assert (first["seq"], first["platform"], first["method"], first["path"]) == (
        1,
        "brightdata",
        "GET",
        "/browser_sessions",
    )
    assert first["query"] == {"status": ["failed"], "limit": ["5"]}
    assert (first["status"], first["fault"]) == (200, None)
    assert first["bytes"] > 0
    assert (second["seq"], second["platform"], second["status"], second["fault"]) == (2, "cloudflare", 503, "503")
    assert emulator.request_count(platform="brightdata", method="get", path_contains="browser_sessions") == 1
    assert emulator.request_count(method="POST") == 0


def test_the_request_log_never_holds_credentials(emulator):
    emulator.script_faults([{"kind": "500"}, {"kind": "ok"}, {"kind": "close_mid_body"}])
    for _ in range(3):
        with contextlib.suppress(requests.exceptions.ChunkedEncodingError):
            bd(emulator)
    cf(emulator)
    legacy = {"X-Auth-Email": DEFAULT_CLOUDFLARE_EMAIL, "X-Auth-Key": DEFAULT_CLOUDFLARE_GLOBAL_KEY}
    requests.get(f"{emulator.url}{CF_LIST}", headers=legacy, timeout=10)
    requests.get(f"{emulator.url}{CF_LIST}", headers={"Authorization": "Bearer wrong-secret"}, timeout=10)
    in_process = json.dumps(emulator.request_log())
    over_http = requests.get(f"{emulator.url}/_emulator/requests", timeout=10).text
    assert len(emulator.request_log()) == 6
    for text in (in_process, over_http):
        for secret in (
            DEFAULT_BRIGHTDATA_API_KEY,
            DEFAULT_CLOUDFLARE_API_TOKEN,
            DEFAULT_CLOUDFLARE_EMAIL,
            DEFAULT_CLOUDFLARE_GLOBAL_KEY,
            "wrong-secret",
        ):
            assert secret not in text
