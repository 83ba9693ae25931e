"""A hostile network cannot hold a call, blow up memory, read a credential or walk into the rate lockout.

Every test proves a bound (ends within 3x its deadline, at most N requests, RSS growth under M MB in a
child process, no secret in any form), never a tight timing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING

import pytest

from airflow_provider_browsersessions.exceptions import (
    ConnectionConfigError,
    RateLimitedError,
    RedirectRefusedError,
    RequestDeadlineError,
    ResponseTooLargeError,
    TransportError,
)
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.platforms.cloudflare import CloudflarePlatform
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.testing import Emulator
from airflow_provider_browsersessions.transport import AsyncTransport, ClientSettings, RetryPolicy, SyncTransport

if TYPE_CHECKING:
    from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook

MODES = ["sync", "async"]
NO_RETRY = RetryPolicy(max_retries=0, max_wait=1.0)


@pytest.fixture
def emulator():
    with Emulator(speed=0) as emulator:
        emulator.seed_sessions(platform="both", count=5, seed=3)
        yield emulator


def connect(monkeypatch, emulator: Emulator, conn_id: str, platform: str = "cloudflare", **extra) -> str:
    """An Airflow connection (environment variable) to the emulator with these extras."""
    if platform == "cloudflare":
        value = {
            "conn_type": "cloudflare_browser_rendering",
            "host": emulator.cloudflare_base_url,
            "password": emulator.cloudflare_api_token,
            "extra": {"account_id": emulator.cloudflare_account_id, **extra},
        }
    else:
        value = {
            "conn_type": "brightdata",
            "host": emulator.brightdata_base_url,
            "password": emulator.brightdata_api_key,
        }
        value["extra"] = extra
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
    return conn_id


def list_once(hook: BrowserSessionsHook, mode: str) -> list:
    if mode == "sync":
        return hook.list_sessions()

    async def listing():
        try:
            return [session async for session in hook.aiter_sessions(SessionQuery())]
        finally:
            await hook.aclose()

    return asyncio.run(listing())


def timed_failure(hook: BrowserSessionsHook, mode: str, error: type[Exception]) -> tuple[Exception, float]:
    assert hook.settings.request_deadline > 0  # the connection is read before the clock starts
    started = time.monotonic()
    with pytest.raises(error) as caught:
        list_once(hook, mode)
    return caught.value, time.monotonic() - started


# -- a total deadline per attempt ---------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "trickle", "bytes_per_second": 2, "size": 100_000},  # 14 hours at this pace
        {"kind": "stall_headers", "seconds": 600},
    ],
    ids=["trickling body", "stalled headers"],
)
def test_a_slow_server_ends_the_call_within_3x_the_request_deadline(emulator, monkeypatch, mode, fault):
    conn_id = connect(monkeypatch, emulator, "cf_deadline", request_deadline=3, timeout=30)
    emulator.script_faults([fault], platform="cloudflare")
    hook = CloudflareBrowserRenderingHook(conn_id=conn_id, retry=NO_RETRY)
    error, elapsed = timed_failure(hook, mode, RequestDeadlineError)
    assert elapsed < 3 * 3  # the whole call, the async client's set-up included
    assert "Cloudflare Browser Rendering API GET" in str(error)
    assert "request deadline of 3 s" in str(error)
    assert "'request_deadline'" in str(error)  # how to raise it
    assert emulator.request_count() == 1


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_retries_of_a_stalled_server_stay_bounded_by_the_retry_policy(emulator, monkeypatch, mode):
    conn_id = connect(monkeypatch, emulator, "cf_stalls", request_deadline=1)
    emulator.script_faults([{"kind": "stall_headers", "seconds": 600}] * 5, platform="cloudflare")
    hook = CloudflareBrowserRenderingHook(conn_id=conn_id, retry=RetryPolicy(max_retries=2, max_wait=5, backoff=0.05))
    error, elapsed = timed_failure(hook, mode, RequestDeadlineError)
    assert emulator.request_count() == 3
    assert "gave up after 3 attempt(s)" in str(error)
    assert elapsed < 3 * (3 * 1 + 5)


@pytest.mark.timeout(120)
def test_the_test_button_is_bounded_even_with_a_long_request_deadline(emulator, monkeypatch):
    conn_id = connect(monkeypatch, emulator, "cf_test_button", request_deadline=3600)
    emulator.script_faults([{"kind": "stall_headers", "seconds": 3600}] * 3, platform="cloudflare")
    hook = CloudflareBrowserRenderingHook(conn_id=conn_id)
    started = time.monotonic()
    ok, message = hook.test_connection()
    # Two attempts of at most 10 s each and one retry wait of at most 5 s: about 25 s, never an hour.
    assert not ok
    assert "request deadline of 10 s" in message
    assert time.monotonic() - started < 3 * 25
    assert emulator.request_count() <= 2


# -- bounded responses ----------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from airflow_provider_browsersessions.exceptions import ApiError
    from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
    from airflow_provider_browsersessions.sessions import SessionQuery
    from airflow_provider_browsersessions.transport import RetryPolicy

    def peak_mb():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024

    hook = BrightDataBrowserHook(conn_id="bd_child", retry=RetryPolicy(max_retries=0, max_wait=1))

    def list_once():
        if sys.argv[1] == "sync":
            return hook.list_sessions()
        async def listing():
            try:
                return [s async for s in hook.aiter_sessions(SessionQuery())]
            finally:
                await hook.aclose()
        return asyncio.run(listing())

    list_once()  # warm: imports, pools and the first answer are not what is measured
    results = []
    for _ in ("error text", "gzip bomb"):
        before = peak_mb()
        try:
            list_once()
            outcome = "no error"
        except ApiError as err:
            outcome = type(err).__name__ + ": " + str(err)
        results.append({"growth_mb": peak_mb() - before, "error": outcome})
    print(json.dumps(results))
    """
)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", MODES)
def test_a_gzip_bomb_and_a_huge_error_text_cost_little_memory(emulator, monkeypatch, mode):
    connect(monkeypatch, emulator, "bd_child", platform="brightdata")
    emulator.script_faults(
        [
            {"kind": "ok"},
            {"kind": "body", "status": 400, "body": "x" * 50_000_000, "content_type": "text/plain"},
            {"kind": "gzip_bomb", "size": 1024**3},  # about 1 MB on the wire
        ],
        platform="brightdata",
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=280, env=os.environ.copy()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    error_text, bomb = json.loads(done.stdout.strip().splitlines()[-1])
    assert error_text["error"].startswith("BadRequestError")
    assert len(error_text["error"]) < 1000
    assert error_text["growth_mb"] < 30, error_text  # the 50 MB text is never held whole
    assert bomb["error"].startswith("ResponseTooLargeError")
    assert "'max_response_bytes'" in bomb["error"]
    assert "33554432 bytes" in bomb["error"]
    assert bomb["growth_mb"] < 100, bomb  # 1 GiB decompressed would be 1,024 MB
    print(
        f"\n{mode}: RSS peak growth {error_text['growth_mb']:.1f} MB (50 MB error), {bomb['growth_mb']:.1f} MB (bomb)"
    )


@pytest.mark.parametrize("mode", MODES)
def test_an_answer_over_the_size_cap_is_a_clear_error_not_retried(emulator, monkeypatch, mode):
    conn_id = connect(monkeypatch, emulator, "cf_small_cap", max_response_bytes=1000)
    emulator.seed_sessions(platform="cloudflare", count=50, seed=9)
    hook = CloudflareBrowserRenderingHook(conn_id=conn_id, retry=RetryPolicy(max_retries=3, backoff=0.01))
    error, _ = timed_failure(hook, mode, ResponseTooLargeError)
    assert "larger than 1000 bytes" in str(error)
    assert emulator.request_count() == 1


@pytest.mark.parametrize("name", ["request_deadline", "max_response_bytes"])
@pytest.mark.parametrize("value", [0, -1, "soon", True])
def test_bounds_must_be_positive_numbers(emulator, monkeypatch, name, value):
    conn_id = connect(monkeypatch, emulator, "cf_bad_bound", **{name: value})
    with pytest.raises(ConnectionConfigError, match=name):
        _ = CloudflareBrowserRenderingHook(conn_id=conn_id).settings


# -- Retry-After and redirects --------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", ["0", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", "in a while"])
def test_a_retry_after_that_asks_for_no_wait_keeps_the_backoff_floor(emulator, monkeypatch, mode, value):
    conn_id = connect(monkeypatch, emulator, "cf_retry_after", pace=False)
    emulator.script_faults([{"kind": "429_raw", "retry_after": value}] * 3, platform="cloudflare")
    policy = RetryPolicy(max_retries=5, max_wait=30, backoff=0.2, max_backoff=1)
    list_once(CloudflareBrowserRenderingHook(conn_id=conn_id, retry=policy), mode)  # succeeds after 3 refusals
    assert [entry["status"] for entry in emulator.request_log()] == [429, 429, 429, 200]
    times = [entry["time"] for entry in emulator.request_log()]
    assert len(times) == 4
    # Backoff of at least 0.2, 0.4 and 0.8 s: a lower bound a slow machine can only exceed.
    assert times[-1] - times[0] >= 1.3


@pytest.mark.parametrize("mode", MODES)
def test_a_huge_retry_after_ends_the_retries_at_once(emulator, monkeypatch, mode):
    conn_id = connect(monkeypatch, emulator, "cf_retry_after_huge")
    emulator.script_faults([{"kind": "429_raw", "retry_after": "999999999"}], platform="cloudflare")
    hook = CloudflareBrowserRenderingHook(conn_id=conn_id)  # max_retry_wait 300 s by default
    error, elapsed = timed_failure(hook, mode, RateLimitedError)
    assert emulator.request_count() == 1
    assert elapsed < 30
    assert error.retry_after == 999999999  # what the server said; the wait is capped at MAX_REQUEST_RETRY_AFTER


@pytest.mark.parametrize("mode", MODES)
def test_a_redirect_is_refused_naming_its_status_and_host_never_its_query(emulator, monkeypatch, mode):
    conn_id = connect(monkeypatch, emulator, "cf_redirect")
    location = "https://elsewhere.example:8443/client/v4/moved?signature=SECRET-in-the-query"
    emulator.script_faults([{"kind": "redirect", "location": location}], platform="cloudflare")
    error, _ = timed_failure(CloudflareBrowserRenderingHook(conn_id=conn_id), mode, RedirectRefusedError)
    text = str(error)
    assert "HTTP 302" in text
    assert "'elsewhere.example'" in text
    assert "refused on purpose" in text
    assert "SECRET" not in text
    assert "/moved" not in text
    assert emulator.request_count() == 1  # not followed, not retried


# -- TLS and clear text ----------------------------------------------------------------------------------


@pytest.fixture
def tls_emulator(tmp_path):
    """The emulator behind TLS with a self-signed certificate for 127.0.0.1 (no CA bundle trusts it)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with Emulator(speed=0) as emulator:
        server = emulator._server
        assert server is not None
        server.socket = context.wrap_socket(server.socket, server_side=True)
        emulator.seed_sessions(platform="cloudflare", count=2, seed=1)
        yield emulator, cert


def tls_connection(monkeypatch, emulator: Emulator, verify: bool) -> str:
    value = {
        "conn_type": "cloudflare_browser_rendering",
        "host": f"https://127.0.0.1:{emulator.port}/client/v4",
        "password": emulator.cloudflare_api_token,
        "extra": {"account_id": emulator.cloudflare_account_id, "verify": verify, "request_deadline": 10},
    }
    monkeypatch.setenv("AIRFLOW_CONN_CF_TLS", json.dumps(value))
    return "cf_tls"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
def test_verify_false_is_honoured_whatever_the_ca_bundle_variables_say(tls_emulator, monkeypatch, caplog, mode):
    emulator, _ = tls_emulator
    # A bundle that does not hold the server's certificate: requests used to let it override verify=False.
    bundle = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(variable, bundle)
    caplog.set_level(logging.WARNING)
    hook = CloudflareBrowserRenderingHook(conn_id=tls_connection(monkeypatch, emulator, verify=False), retry=NO_RETRY)
    expected = len(emulator.sessions("cloudflare"))
    assert len(list_once(hook, mode)) == len(list_once(hook, mode)) <= expected
    assert [entry["status"] for entry in emulator.request_log()] == [200, 200]
    warnings = [r.getMessage() for r in caplog.records if "verification is OFF" in r.getMessage()]
    assert len(warnings) == 1  # once per transport, not per request
    assert "'verify' is false" in warnings[0]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
def test_verify_true_refuses_an_untrusted_certificate_in_both_transports(tls_emulator, monkeypatch, mode):
    emulator, _ = tls_emulator
    hook = CloudflareBrowserRenderingHook(conn_id=tls_connection(monkeypatch, emulator, verify=True), retry=NO_RETRY)
    error, _ = timed_failure(hook, mode, TransportError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(error) or "certificate" in str(error).lower()


@pytest.mark.timeout(120)
def test_async_transports_share_a_tls_context_yet_follow_a_changed_ca_bundle_variable(tls_emulator, monkeypatch):
    emulator, cert = tls_emulator
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    conn_id = tls_connection(monkeypatch, emulator, verify=True)
    # The default bundle's context is built once and shared (a new client per trigger costs no CA load)...
    first, second = (CloudflareBrowserRenderingHook(conn_id=conn_id, retry=NO_RETRY) for _ in range(2))
    timed_failure(first, "async", TransportError)
    timed_failure(second, "async", TransportError)
    assert emulator.request_count() == 0  # both refused at the handshake
    # ...but SSL_CERT_FILE naming the server's certificate, as httpx honours it, still takes effect.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    trusted = CloudflareBrowserRenderingHook(conn_id=conn_id, retry=NO_RETRY)
    assert len(list_once(trusted, "async")) <= len(emulator.sessions("cloudflare"))
    assert [entry["status"] for entry in emulator.request_log()] == [200]


@pytest.mark.parametrize(
    "host",
    ["http://api.cloudflare.com/client/v4", "http://10.0.0.8:8080/client/v4", "http://127.0.0.1.example.com/x"],
)
def test_clear_text_to_a_host_that_is_not_loopback_is_refused_unless_allowed(monkeypatch, host):
    value = {"conn_type": "cloudflare_browser_rendering", "host": host, "password": "tok", "extra": {"account_id": "a"}}
    monkeypatch.setenv("AIRFLOW_CONN_CF_CLEAR", json.dumps(value))
    with pytest.raises(ConnectionConfigError, match="allow_insecure_http") as refused:
        _ = CloudflareBrowserRenderingHook(conn_id="cf_clear").settings
    assert "clear text" in str(refused.value)
    ok, message = CloudflareBrowserRenderingHook(conn_id="cf_clear").test_connection()
    assert not ok
    assert "allow_insecure_http" in message
    value["extra"]["allow_insecure_http"] = True
    monkeypatch.setenv("AIRFLOW_CONN_CF_CLEAR", json.dumps(value))
    assert CloudflareBrowserRenderingHook(conn_id="cf_clear").settings.base_url == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost"])
def test_clear_text_to_loopback_is_allowed(monkeypatch, host):
    url = f"http://{host}:8790/client/v4"
    value = {"conn_type": "cloudflare_browser_rendering", "host": url, "password": "tok", "extra": {"account_id": "a"}}
    monkeypatch.setenv("AIRFLOW_CONN_CF_LOOP", json.dumps(value))
    assert CloudflareBrowserRenderingHook(conn_id="cf_loop").settings.base_url == url


# -- credentials ------------------------------------------------------------------------------------------

SECRET = "s3cr3t-T0KEN"


def every_form(value: str) -> list[str]:
    """A value as it could leak: raw, repr-escaped, percent-encoded, base64 (of itself and of its parts)."""
    forms = {value, repr(value)[1:-1], urllib.parse.quote(value), urllib.parse.quote_plus(value)}
    forms.add(base64.b64encode(value.encode("utf-8", "replace")).decode())
    forms |= {part for part in (SECRET, "T0KEN", "s3cr3t") if part in value}
    return sorted(forms)


def assert_no_form_of(value: str, *texts: str) -> None:
    for text in texts:
        for form in every_form(value):
            assert form not in text, f"a form of the secret ({form!r}) leaked"


@pytest.mark.parametrize(
    "password",
    [
        f"{SECRET}\nX-Evil: 1",
        f"{SECRET}\rX",
        f"{SECRET}\x00",
        f"{SECRET}\tX",
        f"{SECRET}é",
        f"{SECRET}€",
        f"{SECRET}токен",
    ],
    ids=["newline", "carriage return", "nul", "tab", "latin-1", "euro", "cyrillic"],
)
@pytest.mark.parametrize("conn_type", ["brightdata", "cloudflare_browser_rendering"])
def test_a_credential_that_cannot_be_a_header_is_a_config_error_that_never_echoes_it(
    monkeypatch, caplog, password, conn_type
):
    caplog.set_level(logging.DEBUG)
    value = {"conn_type": conn_type, "host": "https://127.0.0.1:9", "password": password, "extra": {"account_id": "a"}}
    monkeypatch.setenv("AIRFLOW_CONN_ODD_CREDENTIAL", json.dumps(value))
    hook_class = BrightDataBrowserHook if conn_type == "brightdata" else CloudflareBrowserRenderingHook
    with pytest.raises(ConnectionConfigError, match="Password field") as refused:
        _ = hook_class(conn_id="odd_credential").settings
    ok, message = hook_class(conn_id="odd_credential").test_connection()  # returns, never raises
    assert not ok
    assert "Password field" in message
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert_no_form_of(password, str(refused.value), repr(refused.value), repr(vars(refused.value)), message, logged)


def test_a_legacy_email_that_cannot_be_a_header_names_the_login_field(monkeypatch):
    value = {
        "conn_type": "cloudflare_browser_rendering",
        "host": "https://127.0.0.1:9",
        "login": "me@example.com\nX-Evil: 1",
        "password": "global-key",
        "extra": {"account_id": "a"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ODD_LOGIN", json.dumps(value))
    ok, message = CloudflareBrowserRenderingHook(conn_id="odd_login").test_connection()
    assert not ok
    assert "Login field" in message
    assert "X-Evil" not in message


@pytest.mark.parametrize(
    "host",
    [f"https://user:{SECRET}@api.example.com/client/v4", f"user:{SECRET}@api.example.com", f"https://{SECRET}@h"],
)
def test_user_info_in_the_host_is_refused_without_echoing_it(monkeypatch, caplog, host):
    caplog.set_level(logging.DEBUG)
    value = {"conn_type": "cloudflare_browser_rendering", "host": host, "password": "tok", "extra": {"account_id": "a"}}
    monkeypatch.setenv("AIRFLOW_CONN_USERINFO", json.dumps(value))
    with pytest.raises(ConnectionConfigError, match="user name or password") as refused:
        _ = CloudflareBrowserRenderingHook(conn_id="userinfo").settings
    ok, message = CloudflareBrowserRenderingHook(conn_id="userinfo").test_connection()
    assert not ok
    assert "user name or password" in message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert_no_form_of(SECRET, str(refused.value), repr(refused.value), message, logged)


@pytest.mark.parametrize("mode", MODES)
def test_both_transports_send_our_header_never_basic_auth_from_url_user_info(emulator, mode):
    # The hooks refuse such a URL; the transports must not turn it into Basic auth either.
    base_url = emulator.cloudflare_base_url.replace("http://", "http://someone:other-password@")
    settings = ClientSettings(
        base_url=base_url,
        headers={"Authorization": f"Bearer {emulator.cloudflare_api_token}"},
        retry=NO_RETRY,
        pace=False,
    )
    platform = CloudflarePlatform(account_id=emulator.cloudflare_account_id)
    request = platform.list_request(SessionQuery(), page_size=10)
    if mode == "sync":
        payload = SyncTransport(platform=platform, settings=settings).fetch_json(request)
    else:

        async def fetch():
            transport = AsyncTransport(platform=platform, settings=settings)
            try:
                return await transport.fetch_json(request)
            finally:
                await transport.aclose()

        payload = asyncio.run(fetch())
    assert isinstance(payload, list)
    # The emulator accepts only our Bearer token: Basic auth would have been a 401.
    assert [entry["status"] for entry in emulator.request_log()] == [200]


# -- pacing inside the rate budget --------------------------------------------------------------------------


def hammer(hook_factory, *, workers: int, seconds: float) -> int:
    """``workers`` threads, each listing and reading in a loop (poke-mode sensors and list tasks) for ``seconds``."""
    done = []
    until = time.monotonic() + seconds

    def worker():
        hook = hook_factory()
        calls = 0
        while time.monotonic() < until:
            try:
                sessions = hook.list_sessions()
                if sessions:
                    hook.get_session(sessions[0].session_id)
                calls += 1
            except RateLimitedError:
                pass
        done.append(calls)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return sum(done)


@pytest.mark.timeout(240)
def test_pacing_keeps_many_callers_on_one_token_out_of_the_lockout(emulator, monkeypatch):
    retry = RetryPolicy(max_retries=0, max_wait=1)
    lockouts = {}
    for pace in (True, False):
        emulator.set_lockout(budget=20, window=6)
        emulator.clear_log()
        conn_id = connect(monkeypatch, emulator, f"cf_pace_{pace}", pace=pace)
        calls = hammer(lambda c=conn_id: CloudflareBrowserRenderingHook(conn_id=c, retry=retry), workers=4, seconds=8)
        log = emulator.request_log(platform="cloudflare")
        lockouts[pace] = sum(entry["fault"] == "lockout" for entry in log)
        print(f"\npace={pace}: {len(log)} requests, {lockouts[pace]} locked out, {calls} loops")
        assert calls > 0
    assert lockouts[True] == 0
    assert lockouts[False] > 0
