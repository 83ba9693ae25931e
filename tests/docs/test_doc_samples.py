"""Every code sample in the README and docs/ runs as shown: connection strings against the emulator, Python blocks too.

The pages are plain Markdown, readable unbuilt (GitHub, PyPI, an editor): the examples are copied into them
as fenced blocks. A block preceded by ``<!-- source: <path>#<region> ... -->`` is a copy of that region of
a file the suite runs (an example DAG, an emulator test): it is checked here to equal the region, so the
copy cannot drift. Other Python blocks are executed, and a DAG they define is run with ``dag.test()``.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from airflow_harness import run_dag

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
SOURCED_BLOCK = re.compile(r"^<!-- source: (\S+)#(\w+) [^\n]*-->\n```python\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
# Files whose regions the pages copy, and the tests that run those files.
RUN_BY = {
    "example_dags": ROOT / "tests" / "system" / "test_example_dags.py",
    "tests/testing/user_dag_tests.py": ROOT / "tests" / "testing" / "test_pytest_plugin.py",
    "tests/system/dags/close_sessions_dags.py": ROOT / "tests" / "system" / "test_close_operator.py",
}

# What a reader substitutes for each placeholder; the emulator accepts exactly these.
PLACEHOLDERS = {
    "<API key>": DEFAULT_BRIGHTDATA_API_KEY,
    "<API token>": DEFAULT_CLOUDFLARE_API_TOKEN,
    "<account id>": DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    "<email>": DEFAULT_CLOUDFLARE_EMAIL,
    "<Global API key>": DEFAULT_CLOUDFLARE_GLOBAL_KEY,
}
DOCUMENTED_SESSION_ID = "4f0c9a7e2b1d"  # the id the docs' examples read


def samples(pattern: re.Pattern[str], *, skip_sourced: bool = False) -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        if skip_sourced:  # copies of tested files are compared below, not executed as fragments
            text = SOURCED_BLOCK.sub("", text)
        for number, match in enumerate(pattern.finditer(text), start=1):
            found.append((f"{page.relative_to(ROOT)}#{number}", match.groups()))
    return found


CONNECTION_SAMPLES = samples(EXPORT)
PYTHON_SAMPLES = samples(PYTHON_BLOCK, skip_sourced=True)
SOURCED_SAMPLES = [
    (where, (str((ROOT / where.split("#")[0]).parent / path), region, code))
    for where, (path, region, code) in samples(SOURCED_BLOCK)
]


def test_the_pages_have_samples_to_check():
    # Guards the regular expressions: a change of fence style must not silently skip every sample.
    assert len(CONNECTION_SAMPLES) >= 8
    assert len(PYTHON_SAMPLES) >= 4
    assert len(SOURCED_SAMPLES) >= 12


def test_the_pages_read_as_plain_markdown():
    # Directives and roles render as raw text on GitHub and PyPI: the pages use fenced blocks and
    # Markdown links instead (the API reference's autodoc and the index's hidden toctrees excepted).
    for page in PAGES:
        if page.name == "reference.md":
            continue
        text = page.read_text()
        assert "{literalinclude}" not in text, page
        assert "{doc}`" not in text, page
        assert "{ref}`" not in text, page


def region(path: Path, name: str) -> str:
    """The lines between ``# [START name]`` and ``# [END name]``, dedented: what a page copies."""
    lines = path.read_text().splitlines(keepends=True)
    start = [n for n, line in enumerate(lines) if line.strip() == f"# [START {name}]"]
    end = [n for n, line in enumerate(lines) if line.strip() == f"# [END {name}]"]
    assert len(start) == len(end) == 1, f"{path.name} must mark region {name!r} exactly once"
    return textwrap.dedent("".join(lines[start[0] + 1 : end[0]]))


def _lines(code: str) -> list[str]:
    return [line for line in code.splitlines() if line.strip()]


@pytest.mark.parametrize(("where", "sample"), SOURCED_SAMPLES, ids=[where for where, _ in SOURCED_SAMPLES])
def test_a_copied_example_equals_the_file_the_suite_runs(where, sample):
    path, name, code = sample
    source = Path(path).resolve()
    # Blank lines aside: `ruff format` formats Markdown code blocks as top-level code (two blank lines after a
    # def), while the region sits inside a `with DAG(...)` block (one).
    assert _lines(code) == _lines(region(source, name)), f"{where} drifted from {source.relative_to(ROOT)}"
    # The file itself is run by the suite: the example DAGs by the system tests, the emulator's by pytest.
    relative = source.relative_to(ROOT).as_posix()
    runner = next((test for prefix, test in RUN_BY.items() if relative.startswith(prefix)), None)
    if runner is None:
        assert source.name.startswith("test_"), f"{relative} is not a test file the suite collects"
    else:
        assert source.stem in runner.read_text(), f"{runner.name} does not run {source.name}"


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
def test_python_sample_runs(where, sample, browsersessions_connections, airflow_db, tmp_path):
    from airflow.providers.common.compat.sdk import DAG

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
    # A sample that is a whole DAG file is run as one, as the page tells the reader to.
    for dag in [value for value in namespace.values() if isinstance(value, DAG)]:
        dag_file = tmp_path / f"{dag.dag_id}.py"
        dag_file.write_text(code)
        result = run_dag(dag_file, dag.dag_id)
        assert result.state == "success", result.task_states
