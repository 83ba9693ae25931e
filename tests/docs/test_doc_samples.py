"""Every code sample in the README and docs/ runs as shown, or is checked: tests execute them.

The pages are plain Markdown, readable unbuilt (GitHub, PyPI, an editor): the examples are copied into them
as fenced blocks. An HTML comment on the line right before a block (several may follow one another) says what
it is:

- ``<!-- source: <path>#<region> ... -->``: a copy of that region of a file the suite runs (an example DAG, an
  emulator test), checked here to equal the region, so the copy cannot drift;
- ``<!-- fragment: <why> -->``: deliberately not runnable alone (a task inside a DAG shown whole elsewhere, a
  file's continuation); a Python fragment is compiled, a shell fragment is not run.

Every other block runs as a reader would run it:

- a Python block is executed (a copied region too), and a DAG or test an unsourced one defines is run;
  a block that is a fragment but not marked fails here (an undefined name, a missing import);
- in a shell block, each command is executed or checked: ``export AIRFLOW_CONN_...`` values configure the
  hook they describe and work against an emulator, ``export AIRFLOW__SECTION__KEY`` names a real Airflow
  option, ``browsersessions-emulator`` is started and stopped, ``airflow connections test`` runs against an
  emulator, other ``airflow`` commands must parse with Airflow's own command line, ``make`` targets must
  exist, ``pip install`` names this package, a ``pytest`` run names paths that exist. Any other command
  fails the test until it is made checkable here or its block is marked a fragment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest
from airflow_harness import run_dag

from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook
from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.browserbase import BrowserbaseHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.testing import (
    DEFAULT_BRIGHTDATA_API_KEY,
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_API_TOKEN,
    DEFAULT_CLOUDFLARE_EMAIL,
    DEFAULT_CLOUDFLARE_GLOBAL_KEY,
)
from airflow_provider_browsersessions.testing.cli import build_parser
from airflow_provider_browsersessions.testing.emulator.browserbase_api import DEFAULT_BROWSERBASE_API_KEY

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXPORT = re.compile(r"^export (AIRFLOW_CONN_\w+)='(.+)'$", re.MULTILINE)
FENCE = re.compile(r"^```(\S*)(?: .*)?$")
SOURCE = re.compile(r"^<!-- source: (\S+)#(\w+) [^\n]*-->$")
FRAGMENT = re.compile(r"^<!-- fragment: (\S[^\n]*)-->$")
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
# Files whose regions the pages copy, and the tests that run those files.
RUN_BY = {
    "example_dags": ROOT / "tests" / "system" / "test_example_dags.py",
    "tests/testing/user_dag_tests.py": ROOT / "tests" / "testing" / "test_pytest_plugin.py",
    "tests/system/dags/close_sessions_dags.py": ROOT / "tests" / "system" / "test_close_operator.py",
}

# What a reader substitutes for each placeholder; the emulator accepts exactly these.
PLACEHOLDERS = {
    "<API key>": DEFAULT_BRIGHTDATA_API_KEY,
    "<Browserbase API key>": DEFAULT_BROWSERBASE_API_KEY,
    "<API token>": DEFAULT_CLOUDFLARE_API_TOKEN,
    "<account id>": DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    "<email>": DEFAULT_CLOUDFLARE_EMAIL,
    "<Global API key>": DEFAULT_CLOUDFLARE_GLOBAL_KEY,
}
#: The emulator's address in the pages: it takes a free port, and the pages show this one as an example.
DOCUMENTED_EMULATOR_URL = "http://127.0.0.1:54321"
DOCUMENTED_SESSION_ID = "4f0c9a7e2b1d"  # the id the docs' examples read
STARTUP = 60.0  # seconds; a hang guard for starting the emulator, not a timing assertion


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a page, with what the comments right before it say about it."""

    where: str
    language: str
    code: str
    source: tuple[Path, str] | None  # the file and region it copies
    fragment: str | None  # why it does not run alone


def blocks() -> list[Block]:
    found: list[Block] = []
    for page in PAGES:
        lines = page.read_text().splitlines(keepends=True)
        comments: list[str] = []
        index = 0
        while index < len(lines):
            line = lines[index].rstrip("\n")
            fence = FENCE.match(line)
            if fence is None:
                comments = [*comments, line] if line.startswith("<!--") else []
                index += 1
                continue
            end = next(n for n in range(index + 1, len(lines)) if lines[n].rstrip("\n") == "```")
            source = next((m for c in comments if (m := SOURCE.match(c))), None)
            fragment = next((m for c in comments if (m := FRAGMENT.match(c))), None)
            found.append(
                Block(
                    where=f"{page.relative_to(ROOT)}:{index + 1}",
                    language=fence[1],
                    code="".join(lines[index + 1 : end]),
                    source=None if source is None else ((page.parent / source[1]).resolve(), source[2]),
                    fragment=None if fragment is None else fragment[1].strip(),
                )
            )
            comments, index = [], end + 1
    return found


BLOCKS = blocks()
PYTHON_BLOCKS = [b for b in BLOCKS if b.language == "python"]
SHELL_BLOCKS = [b for b in BLOCKS if b.language in SHELL_LANGUAGES and b.fragment is None]
CONNECTION_SAMPLES = [
    (f"{block.where}#{n}", match.groups())
    for block in SHELL_BLOCKS
    for n, match in enumerate(EXPORT.finditer(block.code), start=1)
]
EMULATOR_COMMANDS = [
    (f"{block.where}#{n}", line)
    for block in SHELL_BLOCKS
    for n, line in enumerate(
        (line for line in block.code.splitlines() if line.startswith("browsersessions-emulator")), start=1
    )
]


def _ids(items: list) -> list[str]:
    return [item.where if isinstance(item, Block) else item[0] for item in items]


def test_the_pages_have_samples_to_check():
    # Guards the parser: a change of fence style must not silently skip every sample.
    assert len(CONNECTION_SAMPLES) >= 8
    assert len([b for b in PYTHON_BLOCKS if b.source is None and b.fragment is None]) >= 4
    assert len([b for b in PYTHON_BLOCKS if b.source is not None]) >= 12
    assert len(EMULATOR_COMMANDS) >= 2
    assert len(SHELL_BLOCKS) >= 15


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


def test_the_pages_never_show_the_emulator_on_airflows_port():
    # Airflow's API server listens on 8080: an emulator started there collided with the reader's Airflow.
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if any(mark in line for mark in ("browsersessions-emulator", "AIRFLOW_CONN_", "base URL:", "/client/v4")):
                assert ":8080" not in line, f"{page.name}:{number}: {line}"
                assert "--port 8080" not in line, f"{page.name}:{number}: {line}"


def region(path: Path, name: str) -> str:
    """The lines between ``# [START name]`` and ``# [END name]``, dedented: what a page copies."""
    lines = path.read_text().splitlines(keepends=True)
    start = [n for n, line in enumerate(lines) if line.strip() == f"# [START {name}]"]
    end = [n for n, line in enumerate(lines) if line.strip() == f"# [END {name}]"]
    assert len(start) == len(end) == 1, f"{path.name} must mark region {name!r} exactly once"
    return textwrap.dedent("".join(lines[start[0] + 1 : end[0]]))


def _lines(code: str) -> list[str]:
    return [line for line in code.splitlines() if line.strip()]


SOURCED = [b for b in PYTHON_BLOCKS if b.source is not None]


@pytest.mark.parametrize("block", SOURCED, ids=_ids(SOURCED))
def test_a_copied_example_equals_the_file_the_suite_runs(block):
    assert block.source is not None
    source, name = block.source
    # Blank lines aside: `ruff format` formats Markdown code blocks as top-level code (two blank lines after a
    # def), while the region sits inside a `with DAG(...)` block (one).
    assert _lines(block.code) == _lines(region(source, name)), f"{block.where} drifted from {source.name}"
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
    return value.replace(DOCUMENTED_EMULATOR_URL, emulator.url)


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
    elif isinstance(hook, BrowserbaseHook):
        assert headers == {"X-BB-API-Key": DEFAULT_BROWSERBASE_API_KEY}
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


RUNNABLE_PYTHON = [b for b in PYTHON_BLOCKS if b.fragment is None]
PYTHON_FRAGMENTS = [b for b in PYTHON_BLOCKS if b.fragment is not None]


@pytest.mark.parametrize("block", RUNNABLE_PYTHON, ids=_ids(RUNNABLE_PYTHON))
def test_python_sample_runs(block, browsersessions_connections, airflow_db, tmp_path):
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_browsersessions.compat import AIRFLOW_V_3_0_PLUS

    if "\nfrom airflow.sdk import" in f"\n{block.code}" and not AIRFLOW_V_3_0_PLUS:
        pytest.skip("an Airflow 3 only sample (asset watchers)")
    emulator = browsersessions_connections.emulator
    emulator.seed_sessions(platform="both", count=30, seed=3)
    emulator.add_session("brightdata", session_id=DOCUMENTED_SESSION_ID, duration=1, outcome="failed")
    namespace: dict = {"__name__": "doc_sample"}
    # Run as a reader would paste it, alone: an undefined name or a missing import fails here (a block that is
    # a part of something must say so, see the module's docstring).
    exec(compile(block.code, block.where, "exec"), namespace)
    if block.source is not None:
        return  # the file it copies is run whole by the suite (see the test above)
    # A sample that shows a test is also run, with the fixture it asks for.
    for name, value in namespace.items():
        if name.startswith("test_") and callable(value):
            value(browsersessions_connections)
    # A sample that is a whole DAG file is run as one, as the page tells the reader to.
    for dag in [value for value in namespace.values() if isinstance(value, DAG)]:
        dag_file = tmp_path / f"{dag.dag_id}.py"
        dag_file.write_text(block.code)
        result = run_dag(dag_file, dag.dag_id)
        assert result.state == "success", result.task_states


@pytest.mark.parametrize("block", PYTHON_FRAGMENTS, ids=_ids(PYTHON_FRAGMENTS))
def test_a_python_fragment_is_marked_with_why_and_compiles(block):
    assert len(block.fragment or "") >= 10, f"{block.where}: say why it is a fragment and where the whole is"
    compile(textwrap.dedent(block.code), block.where, "exec")


# -- shell blocks -------------------------------------------------------------------------------------------


def _commands(code: str) -> list[str]:
    """A block's commands, one a line, without comments (the pages write no line continuations)."""
    commands = []
    for line in code.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(line)
    return commands


def _makefile_targets() -> set[str]:
    phony = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith(".PHONY:"))
    return set(phony.removeprefix(".PHONY:").split())


def _airflow_parses(words: list[str]) -> None:
    from airflow.cli.cli_parser import get_parser

    try:
        get_parser().parse_args(words)
    except SystemExit as exit_:
        raise AssertionError(f"`airflow {shlex.join(words)}` is not a command Airflow knows") from exit_


def _airflow_option_exists(name: str) -> bool:
    from airflow.configuration import conf

    _, section, key = name.split("__", 2)
    return conf.has_option(section.lower(), key.lower())


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=_ids(SHELL_BLOCKS))
def test_shell_sample_is_run_or_checked(block, browsersessions_emulator):
    # The shell of a reader who pasted the lines the emulator printed, then the block's own exports.
    env = browsersessions_emulator.connection_env()
    for command in _commands(block.code):
        words = shlex.split(command, comments=True)
        assignments = [w for w in words if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", w)]
        words = words[len(assignments) :] if words[: len(assignments)] == assignments else words
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            if name.startswith("AIRFLOW_CONN_"):
                env[name] = _filled(value, browsersessions_emulator)  # checked by the connection test too
            else:
                assert name.startswith("AIRFLOW__"), f"{block.where}: {command}"
                assert _airflow_option_exists(name), f"{block.where}: {command}"
                env[name] = value
        elif words[0] == "browsersessions-emulator":
            pass  # started and stopped by test_emulator_command_runs_as_shown
        elif words[:3] == ["airflow", "connections", "test"]:
            # Run for real, as the page shows it, in a shell with the block's exports (on an emulator).
            path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
            result = subprocess.run(
                ["bash", "-c", command],
                env={**os.environ, **env, "PATH": path},
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert result.returncode == 0, f"{block.where}: {command}: {result.stdout[-800:]} {result.stderr[-800:]}"
            assert "Connection success!" in result.stdout
        elif words[0] == "airflow":
            _airflow_parses(words[1:])
        elif words[0] == "make":
            assert set(words[1:]) <= _makefile_targets(), f"{block.where}: {command}"
        elif words[:2] == ["pip", "install"]:
            _check_pip_install(words[2:], where=block.where)
        elif words[0].endswith("/python") and words[1:3] == ["-m", "pytest"]:
            assert Path(words[0]).parts[0] in {".venv", ".venv-airflow2"}, f"{block.where}: {command}"
            paths = [w for w in words[3:] if not w.startswith("-")]
            assert paths, f"{block.where}: {command}"
            assert all((ROOT / path).exists() for path in paths), f"{block.where}: {command}"
        else:
            raise AssertionError(
                f"{block.where}: `{command}` is neither run nor checked here: make it checkable in this test, "
                "or mark its block <!-- fragment: why --> if a reader is not meant to run it as it is"
            )


def _check_pip_install(args: list[str], *, where: str) -> None:
    """What a page may tell a user to pip-install: this package by name, the clone (``.``), or the wheel
    ``make dist`` builds; with, at most, Airflow's constraints file for the Airflow 2.11 release we test."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    wheel = project.replace("-", "_") + "-*.whl"
    if args[1:2] == ["--constraint"]:
        airflow2 = re.search(r"^AIRFLOW2_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
        assert airflow2, "Makefile: AIRFLOW2_VERSION"
        expected = f"https://raw.githubusercontent.com/apache/airflow/constraints-{airflow2[1]}/constraints-3.11.txt"
        assert args[2:] == [expected], f"{where}: the constraints file of Airflow {airflow2[1]} for Python 3.11"
        args = args[:1]
    assert len(args) == 1, f"{where}: pip install {' '.join(args)}"
    assert args[0] in {project, ".", f"dist/{wheel}"}, f"{where}: pip install {args[0]}"
    assert (ROOT / "pyproject.toml").exists(), "`pip install .` runs from the clone's root"
    assert "dist:" in (ROOT / "Makefile").read_text(), "the wheel comes from `make dist`"


@pytest.mark.parametrize(("where", "command"), EMULATOR_COMMANDS, ids=_ids(EMULATOR_COMMANDS))
def test_emulator_command_runs_as_shown(where, command, tmp_path):
    words = shlex.split(command, comments=True)
    args = build_parser().parse_args(words[1:])
    # Every example takes the default free port: a fixed one (8080 was) collides with the reader's Airflow.
    assert args.port == 0, f"{where}: {command}"
    ready = tmp_path / "ready.json"
    launcher = [sys.executable, "-m", "airflow_provider_browsersessions.testing.cli"]
    process = subprocess.Popen(
        [*launcher, *words[1:], "--ready-file", str(ready)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + STARTUP
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), f"{where}: the emulator did not start"
        env = json.loads(ready.read_text())["env"]
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    # It printed the lines the pages show, on its own port.
    printed = {name: value for name, value in EXPORT.findall(stdout)}
    assert printed == env
    documented = dict(EXPORT.findall((ROOT / "docs" / "emulator.md").read_text()))
    url = json.loads(ready.read_text())["url"]
    assert {name: value.replace(DOCUMENTED_EMULATOR_URL, url) for name, value in documented.items()} == printed
