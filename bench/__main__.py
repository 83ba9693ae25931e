"""``python -m bench``: start the emulator, run every scenario for this package and for the HTTP provider, print tables.

``make bench`` runs the full set (about six minutes on two cores); ``make bench-smoke`` (``--smoke``) runs
every scenario at tiny sizes so CI keeps them working. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

SCENARIOS = ("listing", "waiting", "footprint", "latency", "imports", "memory", "pacing", "deadlines", "pipelining")


def _bytecode() -> None:
    # Import-heavy child processes (and this one, from here on) compile each module once, into our own cache.
    from bench.common import PYCACHE

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    sys.dont_write_bytecode = False
    sys.pycache_prefix = str(PYCACHE)


def _airflow_home() -> None:
    # Airflow reads its configuration when first imported: a throwaway home, no metadata DB needed.
    home = Path(tempfile.mkdtemp(prefix="browsersessions-bench-"))
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check every scenario runs")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only this scenario (repeatable)")
    args = parser.parse_args(argv)
    chosen = args.only or list(SCENARIOS)
    _airflow_home()
    _bytecode()

    import logging

    logging.disable(logging.WARNING)  # retries and polls log; the tables are the output
    from airflow_provider_browsersessions.testing import Emulator
    from bench import deadlines, footprint, imports, latency, listing, memory, pacing, pipelining, waiting
    from bench.common import machine, wire

    print("# Benchmarks\n")
    print(f"Machine: {machine()}\n")
    print(f"Command: python -m bench {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip() + "\n")
    started = time.monotonic()
    # A frozen clock: each side of a comparison sees the same data; sessions end only when a scenario says so.
    with Emulator(speed=0) as emulator:
        wire(emulator)
        # The comparisons measure the providers, not Cloudflare's budget; the pacing scenario sets its own.
        emulator.set_lockout(budget=None)
        if "listing" in chosen:
            full = ([1_000, 10_000, 100_000], [1_000, 10_000], [1_000, 10_000])
            bright, cloud, base = ([300], [250], [300]) if args.smoke else full
            print(
                listing.run(emulator, brightdata_sizes=bright, cloudflare_sizes=cloud, browserbase_sizes=base),
                flush=True,
            )
        if "waiting" in chosen:
            ks = [1, 10] if args.smoke else [1, 10, 100, 1000]
            print(waiting.run(emulator, ks=ks, interval=0.3 if args.smoke else 2.0), flush=True)
        if "footprint" in chosen:
            print(
                footprint.run(
                    emulator,
                    cases=[(50, 2)] if args.smoke else [(1_000, 1), (10_000, 4)],
                    interval=0.5 if args.smoke else 5.0,
                ),
                flush=True,
            )
        if "latency" in chosen:
            intervals, trials = ([0.5], 2) if args.smoke else ([1.0, 5.0], 5)
            print(latency.run(emulator, intervals=intervals, trials=trials), flush=True)
        if "imports" in chosen:
            # Compiling Airflow from source takes seconds per interpreter: the smoke run skips that variant.
            print(imports.run(repeats=1 if args.smoke else 7, without_bytecode=not args.smoke), flush=True)
        if "memory" in chosen:
            print(memory.run(emulator, sizes=[200, 500] if args.smoke else [1_000, 10_000, 100_000]), flush=True)
        if "pacing" in chosen:
            load = {"workers": 2, "seconds": 4.0, "budget": 10, "window": 3.0, "processes": False} if args.smoke else {}
            print(pacing.run(emulator, **(load or {"workers": 8, "seconds": 40.0, "budget": 120, "window": 30.0})))
        if "deadlines" in chosen:
            intervals, trials = ([5.0], 1) if args.smoke else ([5.0, 30.0, 60.0], 3)
            print(deadlines.run(emulator, intervals=intervals, deadline_in=1.0 if args.smoke else 3.0, trials=trials))
        if "pipelining" in chosen:
            slow_sizes, delay = ([300], 0.05) if args.smoke else ([3_000, 100_000], 0.15)
            print(pipelining.run(emulator, sizes=slow_sizes, latency=delay), flush=True)
    print(f"All scenarios took {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
