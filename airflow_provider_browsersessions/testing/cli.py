"""``browsersessions-emulator``: run the emulator of every platform API on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.hostnames import WILDCARD_ADDRESSES

if TYPE_CHECKING:
    from collections.abc import Callable

#: Airflow's API server's default port: the one a new user's emulator most often collides with.
AIRFLOW_API_PORT = 8080
#: What ``--help`` says first (plain text: the module docstring's markup would show as is in a terminal).
DESCRIPTION = (
    "Run the emulator of the Bright Data Browser API and Cloudflare Browser Run on a free loopback port until "
    "Ctrl-C, and print its URLs and the export lines that point Airflow's default connections at it."
)


def _number(
    kind: Callable[[str], float], *, low: float, strict: bool = False, high: float | None = None, allowed: str
) -> Callable[[str], float]:
    """
    An argparse ``type`` that refuses a value out of range with what is allowed (argparse adds the option's name).

    :param kind: ``int`` or ``float``.
    :param low: The lowest value allowed.
    :param strict: Refuse ``low`` itself too.
    :param high: The highest value allowed, if any.
    :param allowed: What is allowed, in words, for the message.
    """
    name = "an integer" if kind is int else "a number"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}: {allowed}; got {text!r}") from None
        out_of_range = value < low or (strict and value == low) or (high is not None and value > high)
        if out_of_range or value != value:  # value != value: NaN
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {text}")
        return value

    return parse


#: Every option that takes a value: its flag, how its text is read (and the range it must be in), its default,
#: and its help, where ``{default}`` stands for the default, so the two cannot disagree. Cloudflare's budget
#: (None) is the emulator's own, Cloudflare's published one (``cloudflare_api.RATE_BUDGET``), read when the
#: emulator starts: ``--help`` does not import the emulator.
_VALUE_OPTIONS: tuple[tuple[str, Callable[[str], Any], Any, str], ...] = (
    ("--host", str, "127.0.0.1", "address to bind (default {default}); anything but loopback exposes it in clear text"),
    (
        "--port",
        _number(int, low=0, high=65535, allowed="0 for a free port, or 1 to 65535"),
        0,
        "port (default {default}: a free one, printed at start)",
    ),
    ("--seed", int, 0, "seed of the generated data (default {default})"),
    ("--sessions", _number(int, low=0, allowed="0 or more"), 200, "sessions seeded per platform (default {default})"),
    (
        "--speed",
        _number(float, low=0, allowed="0 (a frozen clock) or more"),
        1.0,
        "emulator seconds per real second (default {default}; 0 freezes the clock)",
    ),
    (
        "--cloudflare-budget",
        _number(int, low=0, allowed="0 or more requests"),
        None,
        "Cloudflare requests per window (default: Cloudflare's published budget)",
    ),
    (
        "--cloudflare-window",
        _number(float, low=0, strict=True, allowed="seconds above 0"),
        None,
        "seconds of Cloudflare's budget window (default: Cloudflare's published window)",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The command line: every option, its default and what it accepts."""
    parser = argparse.ArgumentParser(prog="browsersessions-emulator", description=DESCRIPTION)
    for flag, parse, default, text in _VALUE_OPTIONS:
        shown = f"{default:g}" if isinstance(default, float) else default  # 1, not 1.0
        parser.add_argument(flag, type=parse, default=default, help=text.format(default=shown))
    parser.add_argument(
        "--no-cloudflare-budget", action="store_true", help="no budget, no lockout, no Ratelimit headers"
    )
    parser.add_argument("--ready-file", type=Path, help="write the URLs and connection values here as JSON")
    return parser


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    """One line saying why the address could not be bound and what to do (no traceback: nothing is wrong inside)."""
    if error.errno == errno.EADDRINUSE:
        airflow = " (8080 is where Airflow's API server listens by default)" if port == AIRFLOW_API_PORT else ""
        return (
            f"browsersessions-emulator: port {port} on {host} is already in use{airflow}. Leave out --port to "
            "take a free port (the URLs printed at start say which), or pass another --port."
        )
    return (
        f"browsersessions-emulator: cannot listen on {host}:{port}: {error.strerror or error}. Check --host and --port."
    )


def _exposed_warning(host: str, url: str) -> str:
    """What binding beyond loopback means, and how the printed lines reach it (the hooks refuse clear text)."""
    if host in WILDCARD_ADDRESSES:
        how = (
            f"The lines above use {url}, for this machine. From another machine, put this machine's address in "
            'their Host and add "allow_insecure_http": true to their extra.'
        )
    else:
        how = 'The lines above carry "allow_insecure_http": true: without it the connections refuse clear text.'
    return (
        f"Warning: listening on {host}, beyond loopback: anyone who reaches it can read and end its sessions (the "
        f"control API has no authentication), and credentials cross the network in clear text. {how}"
    )


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, print where it is and how to wire Airflow to it, serve until interrupted."""
    args = build_parser().parse_args(argv)

    from airflow_provider_browsersessions.testing.emulator import Emulator
    from airflow_provider_browsersessions.testing.emulator.cloudflare_api import RATE_BUDGET

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator = Emulator(host=args.host, port=args.port, seed=args.seed, sessions=args.sessions, speed=args.speed)
    try:
        emulator.start()
    except OSError as error:  # a taken port, an address not of this machine, a privileged port
        print(_cannot_listen(args.host, args.port, error), file=sys.stderr)
        return 1
    with emulator:
        budget = RATE_BUDGET.requests if args.cloudflare_budget is None else args.cloudflare_budget
        window = RATE_BUDGET.window if args.cloudflare_window is None else args.cloudflare_window
        emulator.set_lockout(budget=None if args.no_cloudflare_budget else budget, window=window, platform="cloudflare")
        env = emulator.connection_env()
        base_urls = {f"{name}_base_url": emulator.base_url(name) for name in emulator.apis}
        for name, api in emulator.apis.items():
            print(f"{api.title + ' base URL:':<22}{base_urls[f'{name}_base_url']}")
        print(f"{'Control API:':<22}{emulator.url}/_emulator/")
        for name, value in env.items():
            print(f"export {name}='{value}'")
        if emulator.exposed:
            print(_exposed_warning(args.host, emulator.url), file=sys.stderr)
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
