"""The release artifacts, used as a user uses them: the wheel `make dist` built, in a clean virtualenv.

Nothing here imports the source tree: the virtualenv holds Airflow (from the lock) and the wheel, every command
runs in a temporary directory, and the README's first DAG runs against the emulator that the wheel installed.
Run with ``make test-dist`` (part of ``make test``), which builds ``dist/`` first and sets ``BROWSERSESSIONS_DIST``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("BROWSERSESSIONS_DIST", ROOT / "dist"))
UV = ROOT / ".venv-tools" / "bin" / "uv"
AIRFLOW_VERSION = re.search(r"^AIRFLOW3_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)[1]  # type: ignore[index]
LOCK = ROOT / "constraints" / f"airflow-{AIRFLOW_VERSION}.txt"
SOURCE_VERSION = re.search(
    r'^__version__ = "(.+)"$', (ROOT / "airflow_provider_browsersessions" / "__init__.py").read_text(), re.MULTILINE
)[1]  # type: ignore[index]
FIRST_DAG = re.search(
    r"^```python\n(\"\"\"Yesterday's failed Bright Data sessions.*?)^```",
    (ROOT / "README.md").read_text(),
    re.MULTILINE | re.DOTALL,
)


def _only(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {DIST}, found {[p.name for p in found]}"
    return found[0]


@pytest.fixture(scope="module")
def wheel() -> Path:
    return _only("*.whl")


@pytest.fixture(scope="module")
def sdist() -> Path:
    return _only("*.tar.gz")


@pytest.fixture(scope="module")
def user_env(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> dict[str, str]:
    """A clean virtualenv with the wheel and the locked Airflow, and an environment that never sees the clone."""
    home = tmp_path_factory.mktemp("user")
    venv = home / "venv"
    subprocess.run([str(UV), "venv", "--quiet", "--python", "python3", str(venv)], check=True, cwd=home)
    subprocess.run(
        [
            str(UV),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            str(wheel),
            f"apache-airflow=={AIRFLOW_VERSION}",
            "-c",
            str(LOCK),
        ],
        check=True,
        cwd=home,
    )
    airflow_home = home / "airflow"
    (airflow_home / "dags").mkdir(parents=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "BROWSERSESSIONS"))
    }
    env.update(
        {
            "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "HOME_DIR": str(home),
        }
    )
    return env


def _run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), env=env, cwd=env["HOME_DIR"], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_wheel_and_the_sdist_carry_one_version_and_the_metadata_a_user_reads(wheel: Path, sdist: Path) -> None:
    assert wheel.name.startswith(f"airflow_provider_browsersessions-{SOURCE_VERSION}-py3-none-any")
    assert sdist.name == f"airflow_provider_browsersessions-{SOURCE_VERSION}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"airflow_provider_browsersessions-{SOURCE_VERSION}.dist-info/METADATA").decode()
        names = archive.namelist()
    assert f"Version: {SOURCE_VERSION}" in metadata
    assert "Requires-Python: >=3.11" in metadata
    classifiers = re.findall(r"^Classifier: Programming Language :: Python :: (3\.\d+)$", metadata, re.MULTILINE)
    assert classifiers == ["3.11"], "list only the Python versions the suite runs on"
    assert "airflow_provider_browsersessions/py.typed" in names
    assert "airflow_provider_browsersessions/plugins/templates/style.css" in names
    assert not [name for name in names if name.startswith(("tests/", "example_dags/", "bench/"))]
    with tarfile.open(sdist) as archive:
        members = {member.name.split("/", 1)[1] for member in archive.getmembers() if "/" in member.name}
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "docs/index.md"} <= members


def test_the_sdist_alone_builds_the_same_wheel(tmp_path: Path, wheel: Path) -> None:
    """`make dist` built the wheel from the sdist; a wheel built straight from the tree has the same files."""
    subprocess.run(
        [
            str(UV),
            "build",
            "--quiet",
            "--wheel",
            "--build-constraint",
            str(ROOT / "constraints" / "build.txt"),
            "--out-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    from_tree = _only_in(tmp_path, "*.whl")
    with zipfile.ZipFile(wheel) as from_sdist, zipfile.ZipFile(from_tree) as direct:
        assert sorted(from_sdist.namelist()) == sorted(direct.namelist())
        different = [name for name in direct.namelist() if from_sdist.read(name) != direct.read(name)]
    assert different == []


def _only_in(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_airflow_lists_the_installed_provider_with_its_version(user_env: dict[str, str]) -> None:
    where = _run(user_env, "python", "-c", "import airflow_provider_browsersessions as p; print(p.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(user_env["HOME_DIR"]), "the package must come from the wheel, not the clone"
    listed = _run(user_env, "airflow", "providers", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    providers = {row["package_name"]: row["version"] for row in json.loads(listed.stdout[listed.stdout.index("[") :])}
    assert providers.get("airflow-provider-browsersessions") == SOURCE_VERSION


@pytest.fixture
def installed_emulator(user_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The emulator the wheel installed (its console script), on a free port; yields its connection variables."""
    ready = Path(user_env["HOME_DIR"]) / "emulator-ready.json"
    ready.unlink(missing_ok=True)
    process = subprocess.Popen(
        ["browsersessions-emulator", "--ready-file", str(ready)],
        env=user_env,
        cwd=user_env["HOME_DIR"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else "emulator exited"
            assert time.monotonic() < deadline, "the emulator wrote no ready file in 60 s"
            time.sleep(0.1)
        yield json.loads(ready.read_text())["env"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_readme_first_dag_runs_from_the_installed_wheel(
    user_env: dict[str, str], installed_emulator: dict[str, str]
) -> None:
    assert FIRST_DAG, "the README's first DAG block was not found"
    dags = Path(user_env["AIRFLOW_HOME"]) / "dags"
    (dags / "browser_sessions_first_dag.py").write_text(FIRST_DAG[1])
    env = {**user_env, **installed_emulator}
    migrated = _run(env, "airflow", "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    ran = _run(env, "airflow", "dags", "test", "browser_sessions_first_dag")
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output[-5000:]
    assert re.search(r"\d+ failed session\(s\); cut at max_results: False", output), output[-5000:]
    assert re.search(r"DagRun Finished: .*state=success", output), output[-5000:]
