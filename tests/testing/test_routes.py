"""The emulator's routing table: each platform API owns its paths; the server serves a path by the first owner."""

from __future__ import annotations

import urllib.request
from urllib.error import HTTPError

import pytest

from airflow_provider_browsersessions.testing.emulator import Emulator
from airflow_provider_browsersessions.testing.emulator.server import PLATFORM_APIS

pytestmark = pytest.mark.timeout(60)


def owners(path: str) -> list[str]:
    segments = path.strip("/").split("/")
    return [api.name for api in PLATFORM_APIS if api.owns(segments)]


def test_every_stored_platform_has_exactly_one_api():
    stored = Emulator().store.sessions  # a platform's sessions live under its API's name
    assert sorted(api.name for api in PLATFORM_APIS) == sorted(stored) == ["brightdata", "browserbase", "cloudflare"]


@pytest.mark.parametrize(
    ("path", "platform"),
    [
        ("/browser_sessions", "brightdata"),
        ("/browser_sessions/abc", "brightdata"),
        ("/client/v4/accounts/acct/browser-rendering/devtools/session", "cloudflare"),
        ("/client/v4/accounts/acct/browser-rendering/devtools/browser/abc", "cloudflare"),
        ("/v1/sessions", "browserbase"),
        ("/v1/sessions/abc", "browserbase"),
    ],
)
def test_each_api_path_has_one_owner(path, platform):
    assert owners(path) == [platform]


@pytest.mark.parametrize("path", ["/", "/client/v4/zones", "/sessions", "/v4/accounts"])
def test_a_path_no_api_owns_has_no_owner(path):
    assert owners(path) == []


def test_the_server_answers_404_to_a_path_no_api_owns_and_logs_only_api_requests(browsersessions_emulator):
    emulator = browsersessions_emulator
    with pytest.raises(HTTPError) as caught:
        urllib.request.urlopen(f"{emulator.url}/client/v4/zones", timeout=10)
    assert caught.value.code == 404
    assert emulator.request_log() == []
    for base in (emulator.brightdata_base_url, f"{emulator.cloudflare_base_url}/accounts/x"):
        with pytest.raises(HTTPError):  # no credentials: each API answers 401 (or 404) in its own shape
            urllib.request.urlopen(f"{base}/browser_sessions", timeout=10)
    assert [entry["platform"] for entry in emulator.request_log()] == ["brightdata", "cloudflare"]
