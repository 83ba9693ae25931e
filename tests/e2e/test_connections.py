"""Airflow's "Test connection", through the REST API, for both connection types ([core] test_connection on)."""

from __future__ import annotations

import subprocess
import sys

import deployment as deploy
import pytest

WRONG_SECRET = "e2e-wrong-secret-3f9a1c"


def stored_secret(live, conn_id: str) -> str:
    """The key or token the deployment stored in the connection (the emulator's)."""
    return str(live.connection(conn_id)["password"])


@pytest.mark.parametrize("conn_id", [deploy.BRIGHTDATA_CONN_ID, deploy.CLOUDFLARE_CONN_ID])
def test_the_stored_connections_test_green(api, live, conn_id):
    stored = api.call("GET", f"/connections/{conn_id}")
    assert stored["password"] == "***"  # the API never hands the key back

    answer = api.call("POST", "/connections/test", json={"connection_id": conn_id, "conn_type": stored["conn_type"]})

    assert answer["status"] is True, answer
    assert "credentials accepted" in answer["message"]
    assert stored_secret(live, conn_id) not in answer["message"]


@pytest.mark.parametrize(
    ("conn_id", "conn_type", "expected"),
    [
        (deploy.BRIGHTDATA_CONN_ID, "brightdata", "Bright Data rejected the API key"),
        (
            deploy.CLOUDFLARE_CONN_ID,
            "cloudflare_browser_rendering",
            "Cloudflare Browser Rendering rejected the credentials",
        ),
    ],
)
def test_a_wrong_key_fails_clearly_without_echoing_it(api, conn_id, conn_type, expected):
    answer = api.call(
        "POST",
        "/connections/test",
        json={"connection_id": conn_id, "conn_type": conn_type, "password": WRONG_SECRET},
    )

    assert answer["status"] is False
    assert expected in answer["message"]
    assert "HTTP 401" in answer["message"]
    assert "Password" in answer["message"]  # the field to fix
    assert WRONG_SECRET not in answer["message"]


def test_a_wrong_cloudflare_account_id_names_the_account_and_the_field(api, live):
    answer = api.call(
        "POST",
        "/connections/test",
        json={
            "connection_id": deploy.CLOUDFLARE_CONN_ID,
            "conn_type": "cloudflare_browser_rendering",
            "extra": '{"account_id": "not-my-account"}',
        },
    )

    assert answer["status"] is False
    assert "account 'not-my-account'" in answer["message"]
    assert "HTTP 404" in answer["message"]
    assert "account_id" in answer["message"]
    assert stored_secret(live, deploy.CLOUDFLARE_CONN_ID) not in answer["message"]


@pytest.mark.parametrize("conn_id", [deploy.BRIGHTDATA_CONN_ID, deploy.CLOUDFLARE_CONN_ID])
def test_the_cli_tests_the_stored_connections(live, conn_id):
    # The documented way around Airflow 3.3.2's UI Test button (apache/airflow#73298).
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", conn_id],
        env=deploy.airflow_env(live.home, live.ports),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Connection success!" in result.stdout
    assert stored_secret(live, conn_id) not in result.stdout + result.stderr
