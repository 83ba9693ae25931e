"""scripts/side_by_side.sh, which runs make test's parts side by side: a failed part fails the whole."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "side_by_side.sh"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A stand-in for make: the target named "fail-N" exits with N, any other passes; each prints its arguments.
    make = tmp_path / "make"
    make.write_text(
        '#!/usr/bin/env bash\necho "ran $*"\ncase "$2" in fail-*) exit "${2#fail-}";; esac\nexit 0\n',
    )
    make.chmod(0o755)
    env = {**os.environ, "MAKE": str(make), "SIDE_BY_SIDE_LOGS": str(tmp_path / "logs")}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False)


def test_every_part_runs_with_the_variables_and_its_log_is_printed_whole(tmp_path):
    result = run(tmp_path, "one", "two", "PYTEST_ARGS=-x -q")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"ran --no-print-directory {part} PYTEST_ARGS=-x -q" for part in ("one", "two")]
    assert lines[2].startswith("== make one: passed in ")
    assert lines[2].endswith(" s ==")
    assert lines[3].startswith("== make two: passed in ")
    assert (tmp_path / "logs" / "one.log").read_text() == "ran --no-print-directory one PYTEST_ARGS=-x -q\n"


def test_a_failed_part_fails_the_whole_after_the_others_end(tmp_path):
    result = run(tmp_path, "fail-3", "two")
    assert result.returncode == 1
    assert "== make fail-3: FAILED (exit 3) in " in result.stdout
    assert "== make two: passed in " in result.stdout  # the other part still ran to its end


def test_the_last_part_failing_fails_the_whole_too(tmp_path):
    result = run(tmp_path, "one", "fail-2")
    assert result.returncode == 1
    assert "== make fail-2: FAILED (exit 2) in " in result.stdout
