"""Scenario 5, DAG-parse cost: importing our operator and sensor modules against the HTTP provider's."""

from __future__ import annotations

import re
import subprocess
import sys

from bench.common import median, table, verdict

# Both sides need Airflow's task SDK; it is imported first and not counted, so what is measured is what a
# DAG file pays on top of Airflow for the operators and sensors it uses.
BASELINE = "import airflow.providers.common.compat.sdk"
OURS = ("airflow_provider_browsersessions.operators.sessions", "airflow_provider_browsersessions.sensors.sessions")
THEIRS = ("airflow.providers.http.operators.http", "airflow.providers.http.sensors.http")
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


def incremental_ms(modules: tuple[str, ...]) -> float:
    """Cumulative import time of what ``modules`` add after the baseline, in one fresh interpreter."""
    code = f"{BASELINE}; " + "; ".join(f"import {m}" for m in modules)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    lines = [m for m in (_LINE.match(line) for line in result.stderr.splitlines()) if m]
    # Top-level entries (no indentation) in completion order; those after the baseline's last one are ours.
    top = [(int(m.group(2)), m.group(4)) for m in lines if m.group(3) == ""]
    baseline_end = max(i for i, (_, name) in enumerate(top) if name == "airflow.providers.common.compat.sdk")
    return sum(cumulative for cumulative, _ in top[baseline_end + 1 :]) / 1000


def run(*, repeats: int) -> str:
    ours = [incremental_ms(OURS) for _ in range(repeats)]
    theirs = [incremental_ms(THEIRS) for _ in range(repeats)]
    ratio = median(ours) / median(theirs)
    rows = [
        ["this package: operators.sessions + sensors.sessions", f"{median(ours):.1f}", f"{min(ours):.1f}", repeats],
        ["HTTP provider: operators.http + sensors.http", f"{median(theirs):.1f}", f"{min(theirs):.1f}", repeats],
        ["ratio (ours ÷ HTTP provider)", f"{ratio:.2f}x", "", verdict(ratio <= 1.0)],
    ]
    note = (
        f"`python -X importtime`, a fresh interpreter per run, median of {repeats}. Each run first imports "
        "`airflow.providers.common.compat.sdk` (Airflow's task SDK, which both need) and counts only what the two "
        "modules add on top. Target: ≤ 1.0x the HTTP provider."
    )
    return table("5. DAG-parse cost: import time (ms)", ["modules", "median", "best", "runs / target"], rows, note)
