"""What every scenario shares: the table printer, the machine header, HTTP-provider connections, RSS readings."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

#: Connection ids the HTTP-provider baseline uses (conn type ``http``, the Bearer header in its extra).
HTTP_BRIGHTDATA = "bench_http_brightdata"
HTTP_CLOUDFLARE = "bench_http_cloudflare"
HTTP_BROWSERBASE = "bench_http_browserbase"

#: Where every interpreter of a benchmark run keeps compiled bytecode (``PYTHONPYCACHEPREFIX``): import
#: costs are those of an installed deployment even where ``PYTHONDONTWRITEBYTECODE`` is set, and neither the
#: sources nor the virtualenv get ``__pycache__`` directories from us.
PYCACHE = Path(tempfile.gettempdir()) / "browsersessions-bench-pycache"


def machine() -> str:
    """One paragraph saying where and with what the figures were measured."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo") as info:
            kb = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
        memory = f"{kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration):
        memory = "unknown RAM"
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("apache-airflow", "apache-airflow-providers-http", "requests", "httpx", "tenacity")
    )
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {cpu} x {os.cpu_count()} · {memory} · "
        f"{platform.system()} {platform.release()} · Python {sys.version.split()[0]} · {packages}"
    )


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], note: str = "") -> str:
    """A Markdown table, so the output pastes into docs/benchmarks.md as it is."""
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def rss_mb() -> float:
    """Resident set size of this process now, in MiB."""
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kb / 1024


def http_connections(emulator: Any) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values for the HTTP provider: the same emulator, the key as a header."""
    bright = {
        "conn_type": "http",
        "host": emulator.host,
        "port": emulator.port,
        "schema": "http",
        "extra": {"Authorization": f"Bearer {emulator.brightdata_api_key}"},
    }
    cloud = {**bright, "extra": {"Authorization": f"Bearer {emulator.cloudflare_api_token}"}}
    base = {**bright, "extra": {"X-BB-API-Key": emulator.browserbase_api_key}}
    return {
        f"AIRFLOW_CONN_{HTTP_BRIGHTDATA.upper()}": json.dumps(bright),
        f"AIRFLOW_CONN_{HTTP_CLOUDFLARE.upper()}": json.dumps(cloud),
        f"AIRFLOW_CONN_{HTTP_BROWSERBASE.upper()}": json.dumps(base),
    }


def wire(emulator: Any) -> None:
    """Point our default connections and the HTTP-provider ones at the emulator."""
    os.environ.update(emulator.connection_env())
    os.environ.update(http_connections(emulator))


def traffic(emulator: Any, since: int) -> tuple[int, int]:
    """API requests and response bytes logged since log position ``since``."""
    log = emulator.request_log()[since:]
    return len(log), sum(entry["bytes"] for entry in log)
