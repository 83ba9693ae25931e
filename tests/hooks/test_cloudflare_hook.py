"""CloudflareBrowserRenderingHook against the embedded emulator over loopback HTTP."""

from __future__ import annotations

import json

import pytest

from airflow_provider_browsersessions.exceptions import ConnectionConfigError, InvalidQueryError
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sessions import SessionStatus
from airflow_provider_browsersessions.testing import (
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_EMAIL,
    DEFAULT_CLOUDFLARE_GLOBAL_KEY,
)
from airflow_provider_browsersessions.transport import RetryPolicy

FAST_RETRY = RetryPolicy(max_retries=3, max_wait=10.0, backoff=0.01, max_backoff=0.05)


@pytest.fixture
def emulator(browsersessions_connections):
    return browsersessions_connections.emulator


@pytest.fixture
def hook(emulator):
    return CloudflareBrowserRenderingHook(conn_id="cloudflare_browser_rendering_default", retry=FAST_RETRY)


def set_connection(monkeypatch, conn_id, **fields):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "cloudflare_browser_rendering", **fields})
    )


def list_calls(emulator):
    return [e for e in emulator.request_log(platform="cloudflare") if e["path"].endswith("/devtools/session")]


def test_lists_active_sessions_in_pages_of_200_until_a_short_page(emulator, hook):
    for _ in range(230):
        emulator.add_session("cloudflare", duration=None)
    sessions = hook.list_sessions()
    assert len(sessions) == 230
    assert all(s.status is SessionStatus.RUNNING for s in sessions)
    assert [(c["query"]["limit"], c["query"]["offset"]) for c in list_calls(emulator)] == [
        (["200"], ["0"]),
        (["200"], ["200"]),
    ]


def test_a_full_last_page_costs_one_more_request(emulator, hook):
    for _ in range(200):
        emulator.add_session("cloudflare", duration=None)
    assert len(hook.list_sessions()) == 200
    assert len(list_calls(emulator)) == 2


def test_status_and_time_filters_apply_locally(emulator, hook):
    now = emulator.now()
    old = emulator.add_session("cloudflare", duration=None, started_at=now - 3600)
    emulator.add_session("cloudflare", duration=None, started_at=now - 60)
    got = hook.list_sessions(status="running", started_before=_iso(now - 600))
    assert [s.session_id for s in got] == [old["sessionId"]]
    assert set(list_calls(emulator)[0]["query"]) == {"limit", "offset"}


def _iso(epoch):
    import pendulum

    return pendulum.from_timestamp(epoch, tz="UTC").isoformat()


def test_unsupported_filters_are_rejected_before_any_request(emulator, hook):
    with pytest.raises(InvalidQueryError, match="not supported on Cloudflare"):
        hook.list_sessions(api_name="zone")
    with pytest.raises(InvalidQueryError, match="sort"):
        hook.list_sessions(sort="bandwidth")
    assert emulator.request_count() == 0


@pytest.mark.parametrize("envelope", [False, True])
def test_bare_and_enveloped_bodies(emulator, hook, envelope):
    emulator.set_options(cloudflare_envelope=envelope)
    record = emulator.add_session("cloudflare", duration=None)
    assert [s.session_id for s in hook.list_sessions()] == [record["sessionId"]]
    assert hook.get_session(record["sessionId"]).status is SessionStatus.RUNNING


@pytest.mark.parametrize("null_for_missing", [False, True])
def test_unknown_session_reads_as_none(emulator, hook, null_for_missing):
    emulator.set_options(cloudflare_null_for_missing=null_for_missing)
    assert hook.get_session("6f1c0a9e-0000-4000-8000-000000000000") is None


def test_close_session_ends_it_and_the_closed_record_stays_readable(emulator, hook):
    record = emulator.add_session("cloudflare", duration=None)
    assert hook.close_session(record["sessionId"]) == "closing"
    assert hook.list_sessions() == []
    closed = hook.get_session(record["sessionId"])
    assert closed.status is SessionStatus.FINISHED
    assert closed.close_reason == "NormalClosure"
    assert closed.ended_at is not None
    assert emulator.request_log(platform="cloudflare")[0]["method"] == "DELETE"


def test_legacy_email_and_global_key(emulator, monkeypatch):
    set_connection(
        monkeypatch,
        "cf_legacy",
        host=emulator.cloudflare_base_url,
        login=DEFAULT_CLOUDFLARE_EMAIL,
        password=DEFAULT_CLOUDFLARE_GLOBAL_KEY,
        extra={"account_id": DEFAULT_CLOUDFLARE_ACCOUNT_ID},
    )
    hook = CloudflareBrowserRenderingHook(conn_id="cf_legacy", retry=FAST_RETRY)
    assert hook.test_connection()[0]
    emulator.add_session("cloudflare", duration=None)
    assert len(hook.list_sessions()) == 1


def test_wrong_token_fails_test_connection_with_a_message_and_no_secret(emulator, monkeypatch):
    set_connection(
        monkeypatch,
        "cf_bad",
        host=emulator.cloudflare_base_url,
        password="canary-token-456",
        extra={"account_id": DEFAULT_CLOUDFLARE_ACCOUNT_ID},
    )
    ok, message = CloudflareBrowserRenderingHook(conn_id="cf_bad", retry=FAST_RETRY).test_connection()
    assert not ok
    assert "Authentication error (code 10000)" in message
    assert "canary-token-456" not in message


def test_wrong_account_is_named_and_not_mistaken_for_a_missing_session(emulator, monkeypatch):
    token = json.loads(emulator.connection_env()["AIRFLOW_CONN_CLOUDFLARE_BROWSER_RENDERING_DEFAULT"])["password"]
    set_connection(
        monkeypatch, "cf_acct", host=emulator.cloudflare_base_url, password=token, extra={"account_id": "nope"}
    )
    hook = CloudflareBrowserRenderingHook(conn_id="cf_acct", retry=FAST_RETRY)
    ok, message = hook.test_connection()
    assert not ok
    assert "'nope'" in message
    assert "account_id" in message
    with pytest.raises(Exception, match="7003"):
        hook.get_session("6f1c0a9e-0000-4000-8000-000000000000")


def test_missing_account_id_is_a_configuration_error(emulator, monkeypatch):
    set_connection(monkeypatch, "cf_noacct", host=emulator.cloudflare_base_url, password="x")
    hook = CloudflareBrowserRenderingHook(conn_id="cf_noacct")
    with pytest.raises(ConnectionConfigError, match="account_id"):
        hook.list_sessions()
    ok, message = hook.test_connection()
    assert not ok
    assert "cf_noacct" in message
