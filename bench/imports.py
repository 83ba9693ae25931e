"""Scenario 5, DAG-parse cost: importing our operator and sensor modules against the HTTP provider's, and the
asset-watcher trigger's module (what a DAG declaring an asset watcher imports) beside them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

from bench.common import PYCACHE, median, table, verdict

#: The operators + sensors modules' own import cost, as a share of the HTTP provider's (issue #24; was 1.0).
TARGET = 0.2

# Both sides need Airflow's task SDK; it is imported first so its cost can be read apart: what a DAG file
# pays on top of Airflow for the operators and sensors it uses is what the two packages can change.
BASELINE = "airflow.providers.common.compat.sdk"
OURS = ("airflow_provider_browsersessions.operators.sessions", "airflow_provider_browsersessions.sensors.sessions")
THEIRS = ("airflow.providers.http.operators.http", "airflow.providers.http.sensors.http")
# A DAG file that declares an asset watcher builds our event trigger at every parse (Airflow 3).
WATCHER = ("airflow_provider_browsersessions.triggers.events",)
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


def bytecode_env(cached: bool, empty_dir: str) -> dict[str, str]:
    """The environment of a run with compiled bytecode at hand (as in any deployment) or compiling every module.

    The cache is the benchmarks' own (``PYTHONPYCACHEPREFIX``); without bytecode, the prefix is an empty
    directory nothing is written to, so ``.pyc`` files next to the sources cannot be used either.
    """
    env = dict(os.environ)
    if cached:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = empty_dir
    return env


def one_run(modules: tuple[str, ...], env: dict[str, str] | None = None) -> dict[str, float]:
    """One fresh interpreter: its wall time, and from ``-X importtime`` the shared and the specific cost (ms)."""
    code = f"import {BASELINE}; " + "; ".join(f"import {m}" for m in modules)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True, env=env
    )
    wall = (time.perf_counter() - started) * 1000
    lines = [m for m in (_LINE.match(line) for line in result.stderr.splitlines()) if m]
    # Top-level entries (no indentation) in completion order; those after the baseline's last one are the
    # modules' own, everything up to it is shared by both sides.
    top = [(int(m.group(2)), m.group(4)) for m in lines if m.group(3) == ""]
    baseline_end = max(i for i, (_, name) in enumerate(top) if name == BASELINE)
    # ``airflow`` itself is imported nested inside the baseline's parent packages, at whatever depth.
    airflow = next(int(m.group(2)) for m in lines if m.group(4) == "airflow")
    return {
        "wall": wall,
        "airflow": airflow / 1000,
        "shared": sum(cumulative for cumulative, _ in top[: baseline_end + 1]) / 1000,
        "specific": sum(cumulative for cumulative, _ in top[baseline_end + 1 :]) / 1000,
    }


def col(runs: list[dict[str, float]], key: str) -> float:
    """The median of one figure over runs."""
    return median(r[key] for r in runs)


def run(*, repeats: int, without_bytecode: bool = True) -> str:
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="browsersessions-bench-nobytecode-") as empty:
        for cached in (True, False) if without_bytecode else (True,):
            env = bytecode_env(cached, empty)
            if cached:  # one unmeasured run each, so the cache holds both sides' bytecode
                one_run(OURS, env)
                one_run(THEIRS, env)
                one_run(WATCHER, env)
            ours: list[dict[str, float]] = []
            theirs: list[dict[str, float]] = []
            watcher: list[dict[str, float]] = []
            for _ in range(repeats):  # alternating, so a slow spell of the machine hits every side alike
                ours.append(one_run(OURS, env))
                theirs.append(one_run(THEIRS, env))
                watcher.append(one_run(WATCHER, env))
            specific = col(ours, "specific") / col(theirs, "specific")
            wall = col(ours, "wall") / col(theirs, "wall")
            how = "bytecode cached" if cached else "no bytecode"
            for label, runs in (
                ("this package: operators.sessions + sensors.sessions", ours),
                ("HTTP provider: operators.http + sensors.http", theirs),
                ("this package: triggers.events (an asset-watcher DAG)", watcher),
            ):
                rows.append(
                    [
                        how,
                        label,
                        f"{col(runs, 'specific'):.0f}",
                        f"{min(r['specific'] for r in runs):.0f}",
                        f"{col(runs, 'shared'):.0f}",
                        f"{col(runs, 'airflow'):.0f}",
                        f"{col(runs, 'wall'):.0f}",
                        "",
                    ]
                )
            rows.append(
                [
                    how,
                    "ours ÷ HTTP provider",
                    f"{specific:.2f}x",
                    "",
                    "",
                    "",
                    f"{wall:.2f}x",
                    verdict(specific <= TARGET),
                ]
            )
            rows.append(
                [
                    how,
                    "watcher ÷ HTTP provider",
                    f"{col(watcher, 'specific') / col(theirs, 'specific'):.2f}x",
                    "",
                    "",
                    "",
                    f"{col(watcher, 'wall') / col(theirs, 'wall'):.2f}x",
                    verdict(col(watcher, "specific") / col(theirs, "specific") <= TARGET),
                ]
            )
    note = (
        f"`python -X importtime -c 'import {BASELINE}; import A; import B'`, a fresh interpreter per run, both "
        f"sides alternating, median of {repeats}. *Modules' own*: the cumulative import time of what A and B add "
        f"after `{BASELINE}` (Airflow and its task SDK, which every DAG file needs); *shared*: that baseline, "
        "of which `import airflow` alone is the next column; *whole interpreter*: the wall time of the run, "
        "start-up and importtime's own overhead included. *Bytecode cached*: compiled `.pyc` files at hand, as "
        "in any installed deployment (after one unmeasured run); *no bytecode*: every module compiled from "
        "source at each run (what `PYTHONDONTWRITEBYTECODE` costs). Target: the modules' own cost ≤ 0.2x the "
        "HTTP provider's, for the operators and sensors and for the watcher's trigger alike."
    )
    headers = [
        "bytecode",
        "modules",
        "modules' own (median)",
        "modules' own (best)",
        "shared: task SDK",
        "of which import airflow",
        "whole interpreter (wall)",
        "target",
    ]
    return table("5. DAG-parse cost: import time (ms)", headers, rows, note)
