"""``browsersessions-emulator``: run the emulator of every platform API on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, print where it is and how to wire Airflow to it, serve until interrupted."""
    parser = argparse.ArgumentParser(prog="browsersessions-emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data (default 0)")
    parser.add_argument("--sessions", type=int, default=200, help="sessions seeded per platform (default 200)")
    parser.add_argument("--speed", type=float, default=1.0, help="emulator seconds per real second (default 1)")
    parser.add_argument(
        "--cloudflare-budget", type=int, default=1200, help="Cloudflare requests per window (default 1200)"
    )
    parser.add_argument(
        "--cloudflare-window", type=float, default=300.0, help="seconds of Cloudflare's budget window (default 300)"
    )
    parser.add_argument(
        "--no-cloudflare-budget", action="store_true", help="no budget, no lockout, no Ratelimit headers"
    )
    parser.add_argument("--ready-file", type=Path, help="write the URLs and connection values here as JSON")
    args = parser.parse_args(argv)

    from airflow_provider_browsersessions.testing.emulator import Emulator

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator = Emulator(host=args.host, port=args.port, seed=args.seed, sessions=args.sessions, speed=args.speed)
    with emulator:
        budget = None if args.no_cloudflare_budget else args.cloudflare_budget
        emulator.set_lockout(budget=budget, window=args.cloudflare_window, platform="cloudflare")
        env = emulator.connection_env()
        base_urls = {f"{name}_base_url": emulator.base_url(name) for name in emulator.apis}
        for name, api in emulator.apis.items():
            print(f"{api.title + ' base URL:':<22}{base_urls[f'{name}_base_url']}")
        print(f"{'Control API:':<22}{emulator.url}/_emulator/")
        for name, value in env.items():
            print(f"export {name}='{value}'")
        if args.ready_file:
            ready = {"url": emulator.url, **base_urls, "env": env}
            # Written whole, then renamed: a script polling for the file never reads it half-written.
            partial = args.ready_file.with_name(args.ready_file.name + ".partial")
            # It holds the emulator's credentials: readable by its owner only (0600), from its creation on.
            partial.unlink(missing_ok=True)
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(json.dumps(ready))
            partial.replace(args.ready_file)
        print("Serving; press Ctrl-C to stop.", flush=True)
        stop.wait()
    print("Emulator stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
