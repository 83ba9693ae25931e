"""The benchmarks at tiny sizes, so they cannot rot: every scenario runs and prints its table; no timing is judged."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

# The baseline comes with the bench extra, which make installs into both test environments.
pytest.importorskip("airflow.providers.http", reason="the benchmarks' baseline needs the bench extra")

ROOT = Path(__file__).parents[2]
TABLES = (
    "### 1. Listing cost",
    "### 2. Waiting cost: requests per poll interval",
    "### 3. Triggerer footprint",
    "### 4. Detection latency",
    "### 5. DAG-parse cost: import time (ms)",
    "### 6. Memory: peak RSS (MB)",
    "### 7. Pacing inside Cloudflare's rate budget",
    "### 8. Deadline to timeout event",
    "### 9. Listing on a slow network: pipelined paging",
)


@pytest.mark.timeout(600)
def test_every_scenario_prints_its_table():
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout
    assert output.startswith("# Benchmarks")
    assert "Machine: " in output
    for title in TABLES:
        assert title in output
        section = output.split(title, 1)[1].split("###", 1)[0]
        assert re.search(r"\b(PASS|MISS)\b", section), f"{title} has no verdict against its target"
    # Request counts are exact, not timings: the smoke sizes list at the physical minimum.
    listing = output.split(TABLES[0], 1)[1].split("###", 1)[0]
    assert "| brightdata | status=failed of 300 |" in listing
    # One poke of each of K sensors is K requests, ours and the HTTP provider's alike: counted, not timed.
    waiting = output.split(TABLES[1], 1)[1].split("###", 1)[0]
    assert "| drain one zone | 10 | 10 | 10 |" in waiting
    assert "| own session each | 10 | 10 | 10 |" in waiting
