"""Airflow discovers the provider through its entry point: the CLI lists it, its hooks and both connection types."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import airflow_provider_browsersessions

pytestmark = pytest.mark.system


def airflow_cli(*args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args, "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    # Airflow may log a line or two before the JSON document.
    return json.loads(result.stdout[result.stdout.index("[") :])


def test_airflow_providers_list_shows_the_provider(airflow_db):
    rows = {row["package_name"]: row for row in airflow_cli("providers", "list")}
    assert rows["airflow-provider-browsersessions"]["version"] == airflow_provider_browsersessions.__version__


def test_airflow_providers_hooks_shows_both_connection_types(airflow_db):
    hooks = {row["connection_type"]: row for row in airflow_cli("providers", "hooks")}
    assert hooks["brightdata"]["class"] == "airflow_provider_browsersessions.hooks.brightdata.BrightDataBrowserHook"
    assert hooks["cloudflare_browser_rendering"]["class"] == (
        "airflow_provider_browsersessions.hooks.cloudflare.CloudflareBrowserRenderingHook"
    )
    assert hooks["brightdata"]["package_name"] == "airflow-provider-browsersessions"
