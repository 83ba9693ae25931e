"""Every code sample in the README and docs/ runs as shown: connection strings against the emulator, Python blocks too.

Samples pulled in with ``literalinclude`` come from files that are tested elsewhere (the example DAGs,
the emulator tests); this module covers what is written inline in the Markdown itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.testing import (
    DEFAULT_BRIGHTDATA_API_KEY,
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_API_TOKEN,
    DEFAULT_CLOUDFLARE_EMAIL,
    DEFAULT_CLOUDFLARE_GLOBAL_KEY,
)

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXPORT = re.compile(r"^export (AIRFLOW_CONN_\w+)='(.+)'$", re.MULTILINE)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

# What a reader substitutes for each placeholder; the emulator accepts exactly these.
PLACEHOLDERS = {
    "<API key>": DEFAULT_BRIGHTDATA_API_KEY,
    "<API token>": DEFAULT_CLOUDFLARE_API_TOKEN,
    "<account id>": DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    "<email>": DEFAULT_CLOUDFLARE_EMAIL,
    "<Global API key>": DEFAULT_CLOUDFLARE_GLOBAL_KEY,
}
DOCUMENTED_SESSION_ID = "4f0c9a7e2b1d"  # the id the docs' examples read


def samples(pattern: re.Pattern[str]) -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for page in PAGES:
        for number, match in enumerate(pattern.finditer(page.read_text()), start=1):
            found.append((f"{page.relative_to(ROOT)}#{number}", match.groups()))
    return found


CONNECTION_SAMPLES = samples(EXPORT)
PYTHON_SAMPLES = samples(PYTHON_BLOCK)


def test_the_pages_have_samples_to_check():
    # Guards the regular expressions: a change of fence style must not silently skip every sample.
    assert len(CONNECTION_SAMPLES) >= 8
    assert len(PYTHON_SAMPLES) >= 4


def _filled(value: str, emulator) -> str:
    for placeholder, real in PLACEHOLDERS.items():
        value = value.replace(placeholder, real)
    return value.replace("http://127.0.0.1:8080", emulator.url)


@pytest.mark.parametrize(("where", "sample"), CONNECTION_SAMPLES, ids=[where for where, _ in CONNECTION_SAMPLES])
def test_connection_sample_configures_the_hook_it_describes(where, sample, browsersessions_emulator, monkeypatch):
    name, value = sample
    value = _filled(value, browsersessions_emulator)
    monkeypatch.setenv(name, value)
    conn_id = name.removeprefix("AIRFLOW_CONN_").lower()

    hook = get_browser_sessions_hook(conn_id)
    headers = hook.settings.headers
    if isinstance(hook, BrightDataBrowserHook):
        assert headers == {"Authorization": f"Bearer {DEFAULT_BRIGHTDATA_API_KEY}"}
    else:
        assert isinstance(hook, CloudflareBrowserRenderingHook)
        assert hook.platform.account_id == DEFAULT_CLOUDFLARE_ACCOUNT_ID
        if DEFAULT_CLOUDFLARE_EMAIL in value:
            assert headers == {"X-Auth-Email": DEFAULT_CLOUDFLARE_EMAIL, "X-Auth-Key": DEFAULT_CLOUDFLARE_GLOBAL_KEY}
        else:
            assert headers == {"Authorization": f"Bearer {DEFAULT_CLOUDFLARE_API_TOKEN}"}

    if browsersessions_emulator.url in value:
        # Samples that point at a local emulator must really work against one.
        ok, message = hook.test_connection()
        assert ok, message
    else:
        assert hook.settings.base_url == hook.default_base_url
    if value.startswith("{") and "extra" in json.loads(value):
        extra = json.loads(value)["extra"]
        assert hook.settings.timeout == extra.get("timeout", hook.settings.timeout)
        assert hook.settings.retry.max_retries == extra.get("max_retries", hook.settings.retry.max_retries)


@pytest.mark.parametrize(("where", "sample"), PYTHON_SAMPLES, ids=[where for where, _ in PYTHON_SAMPLES])
def test_python_sample_runs(where, sample, browsersessions_connections):
    (code,) = sample
    emulator = browsersessions_connections.emulator
    emulator.seed_sessions(platform="both", count=30, seed=3)
    emulator.add_session("brightdata", session_id=DOCUMENTED_SESSION_ID, duration=1, outcome="failed")
    namespace: dict = {"__name__": "doc_sample"}
    exec(compile(code, where, "exec"), namespace)
    # A sample that shows a test is also run, with the fixture it asks for.
    for name, value in namespace.items():
        if name.startswith("test_") and callable(value):
            value(browsersessions_connections)
