"""Airflow discovers the provider through its entry points: the CLI lists it, its hooks, its types and its UI plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_browsersessions
from airflow_provider_browsersessions.compat import AIRFLOW_V_3_0_PLUS

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


def test_the_provider_info_is_valid_for_this_airflows_schema():
    import jsonschema
    from airflow import __file__ as airflow_init

    schema = json.loads((Path(airflow_init).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(airflow_provider_browsersessions.get_provider_info(), schema)


def _plugin_names(**env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "plugins", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    start = result.stdout.find("[")
    return [row["name"] for row in json.loads(result.stdout[start:])] if start >= 0 else []


@pytest.mark.parametrize("lazy", ["True", "False"])  # entry point only / entry point and provider info
def test_the_ui_plugin_is_loaded_once_on_airflow_3_and_absent_on_2_11(airflow_db, lazy):
    names = _plugin_names(AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS=lazy)
    expected = 1 if AIRFLOW_V_3_0_PLUS else 0
    assert names.count("browser_sessions") == expected, names


def test_importing_the_plugin_builds_no_web_app():
    # Every Airflow process that loads plugins imports the module: FastAPI and the view wait for a request.
    code = (
        "import sys; import airflow_provider_browsersessions.plugins.browser_sessions_plugin as p; "
        "print(p.BrowserSessionsPlugin is None, 'fastapi' in sys.modules, "
        "'airflow_provider_browsersessions.plugins.app' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    is_none, fastapi_loaded, app_loaded = result.stdout.split()[-3:]
    assert is_none == str(not AIRFLOW_V_3_0_PLUS)
    assert fastapi_loaded == "False"
    assert app_loaded == "False"
