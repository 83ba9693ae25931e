"""``browsersessions-emulator`` as a user runs it: a real process whose printed connection values work."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.testing import EmulatorClient
from airflow_provider_browsersessions.testing.emulator.brightdata_api import SHOWCASE_FAILED_PER_ZONE, ZONES

EXPORT = re.compile(r"^export (AIRFLOW_CONN_\w+)='(.+)'$")
CONSOLE_SCRIPT = Path(sys.executable).with_name("browsersessions-emulator")
PYTHON_M = [sys.executable, "-m", "airflow_provider_browsersessions.testing.cli"]
SERVING = "Serving; press Ctrl-C to stop."
STARTUP = 60.0  # seconds; generous, a slow machine imports slowly. Not a timing assertion: a hang guard.


class RunningEmulator:
    """A ``browsersessions-emulator`` process, its stdout read line by line as it prints."""

    def __init__(self, command: list[str], ready_file: Path) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.printed: list[str] = []
        deadline = time.monotonic() + STARTUP
        while not ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"the emulator did not start: {self.process.communicate()}")
            time.sleep(0.05)
        self.ready = json.loads(ready_file.read_text())
        # The ready file is written just before the last banner line; read the banner up to it.
        while not self.printed or self.printed[-1] != SERVING:
            line = self._lines.get(timeout=STARTUP)
            if line is None:
                raise AssertionError(f"the emulator exited while starting: {self.printed}")
            self.printed.append(line)

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def exports(self) -> dict[str, str]:
        """The ``export AIRFLOW_CONN_...='...'`` lines it printed, as name -> value."""
        return {m[1]: m[2] for line in self.printed if (m := EXPORT.match(line))}

    def stop(self, signum: int) -> tuple[int, list[str], str]:
        """Send ``signum``; return the exit code, what it printed after the banner, and stderr."""
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        rest = []
        while (line := self._lines.get(timeout=20)) is not None:
            rest.append(line)
        assert self.process.stderr is not None
        return self.process.returncode, rest, self.process.stderr.read()


@pytest.mark.parametrize(
    ("launcher", "signum"),
    [
        pytest.param(PYTHON_M, signal.SIGINT, id="python-m"),
        pytest.param([str(CONSOLE_SCRIPT)], signal.SIGINT, id="console-script"),
        pytest.param([str(CONSOLE_SCRIPT)], signal.SIGTERM, id="console-script-sigterm"),
    ],
)
def test_printed_connection_values_work_with_both_hooks(launcher, signum, tmp_path, monkeypatch):
    ready = tmp_path / "ready.json"
    # Speed 0: nothing ends between reading what was seeded and listing it through the hooks.
    options = ["--port", "0", "--sessions", "20", "--seed", "3", "--speed", "0", "--ready-file", str(ready)]
    emulator = RunningEmulator([*launcher, *options], ready)
    try:
        exports = emulator.exports()
        assert set(exports) == {
            "AIRFLOW_CONN_BRIGHTDATA_DEFAULT",
            "AIRFLOW_CONN_CLOUDFLARE_BROWSER_RENDERING_DEFAULT",
            "AIRFLOW_CONN_BROWSERBASE_DEFAULT",
        }
        assert exports == emulator.ready["env"]  # the ready file and the banner agree
        for name, value in exports.items():
            monkeypatch.setenv(name, value)  # exactly what a user pastes into a shell

        control = EmulatorClient(emulator.ready["url"])
        seeded_bd = {r["session_id"] for r in control.sessions("brightdata")}
        active_cf = {r["sessionId"] for r in control.sessions("cloudflare") if not r.get("endTime")}
        assert len(seeded_bd) == 20
        assert active_cf  # seed 3 has running Cloudflare browsers: the comparison below is not vacuous

        brightdata_hook = BrightDataBrowserHook()
        cloudflare_hook = CloudflareBrowserRenderingHook()
        bd_ok, bd_message = brightdata_hook.test_connection()
        cf_ok, cf_message = cloudflare_hook.test_connection()
        assert bd_ok is True, bd_message
        assert cf_ok is True, cf_message
        assert {s.session_id for s in brightdata_hook.list_sessions()} == seeded_bd
        assert {s.session_id for s in cloudflare_hook.list_sessions()} == active_cf
    finally:
        code, rest, stderr = emulator.stop(signum)
    assert code == 0, stderr
    assert rest == ["Emulator stopped."]
    banner = emulator.printed
    assert banner[0] == f"Bright Data base URL: {emulator.ready['brightdata_base_url']}"
    assert banner[1] == f"Cloudflare base URL:  {emulator.ready['cloudflare_base_url']}"
    assert banner[2] == f"Browserbase base URL: {emulator.ready['browserbase_base_url']}"
    assert banner[3] == f"Control API:          {emulator.ready['url']}/_emulator/"


def test_help_lists_every_option():
    result = subprocess.run([str(CONSOLE_SCRIPT), "--help"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("usage: browsersessions-emulator")
    for option in ("--host", "--port", "--seed", "--sessions", "--speed", "--ready-file", "--cloudflare-budget"):
        assert option in result.stdout
    assert "--cloudflare-window" in result.stdout
    assert "--no-cloudflare-budget" in result.stdout


@pytest.mark.parametrize(
    ("options", "policy", "left"),
    [
        (["--cloudflare-budget", "120", "--cloudflare-window", "30"], '"default";q=120;w=30', "r=119;"),
        ([], '"default";q=1200;w=300', "r=1199;"),  # Cloudflare's published budget
        (["--cloudflare-window", "30"], '"default";q=1200;w=30', "r=1199;"),
    ],
)
def test_the_cloudflare_budget_is_set_from_the_command_line(tmp_path, options, policy, left):
    ready = tmp_path / "ready.json"
    emulator = RunningEmulator([*PYTHON_M, "--sessions", "0", *options, "--ready-file", str(ready)], ready)
    try:
        env = json.loads(next(iter(v for k, v in emulator.ready["env"].items() if "CLOUDFLARE" in k)))
        url = f"{env['host']}/accounts/{env['extra']['account_id']}/browser-rendering/devtools/session"
        answer = requests.get(url, headers={"Authorization": f"Bearer {env['password']}"}, timeout=10)
        assert answer.headers["Ratelimit-Policy"] == policy
        assert answer.headers["Ratelimit"].startswith(f'"default";{left}')
    finally:
        code, _, stderr = emulator.stop(signal.SIGTERM)
    assert code == 0, stderr


def test_a_bad_option_is_a_usage_error():
    result = subprocess.run([*PYTHON_M, "--port", "eighty"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "argument --port: expected an integer: 0 for a free port, or 1 to 65535; got 'eighty'" in result.stderr


def test_help_is_plain_text():
    result = subprocess.run([*PYTHON_M, "--help"], capture_output=True, text=True, check=True)
    # The description was the module docstring, whose reStructuredText backticks showed as they are.
    assert "`" not in result.stdout
    assert "Run the emulator of the Bright Data Browser API and Cloudflare Browser Run" in result.stdout


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--speed", "-1", "must be 0 (a frozen clock) or more; got -1"),
        ("--speed", "nan", "must be 0 (a frozen clock) or more; got nan"),
        ("--sessions", "-5", "must be 0 or more; got -5"),
        ("--cloudflare-budget", "-1", "must be 0 or more requests; got -1"),
        ("--cloudflare-window", "0", "must be seconds above 0; got 0"),
        ("--cloudflare-window", "-30", "must be seconds above 0; got -30"),
        ("--port", "-1", "must be 0 for a free port, or 1 to 65535; got -1"),
        ("--port", "70000", "must be 0 for a free port, or 1 to 65535; got 70000"),
    ],
)
def test_an_out_of_range_value_is_a_usage_error_naming_the_option(option, value, allowed):
    # A timeout: a value accepted would start a server that runs until stopped.
    command = [*PYTHON_M, f"{option}={value}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=STARTUP)
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines()[-1] == f"browsersessions-emulator: error: argument {option}: {allowed}"
    assert "Serving" not in result.stdout


def test_a_taken_port_is_one_line_naming_it_and_what_to_do():
    with socket.socket() as taken:  # what a user's Airflow API server does to port 8080
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [*PYTHON_M, "--port", str(port)]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=STARTUP)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"browsersessions-emulator: port {port} on 127.0.0.1 is already in use. Leave out --port to take a free "
        "port (the URLs printed at start say which), or pass another --port."
    ]


def test_an_address_not_of_this_machine_is_one_line():
    # 203.0.113.0/24 is TEST-NET-3, never assigned: binding to it fails on any machine.
    command = [*PYTHON_M, "--host", "203.0.113.123"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=STARTUP)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("browsersessions-emulator: cannot listen on 203.0.113.123:0: ")
    assert result.stderr.rstrip().endswith("Check --host and --port.")


def test_bound_to_every_interface_it_prints_lines_that_work_and_warns(tmp_path, monkeypatch):
    ready = tmp_path / "ready.json"
    # The defaults otherwise, as a user starts it: the default seed's data set, a real-time clock.
    emulator = RunningEmulator([*PYTHON_M, "--host", "0.0.0.0", "--ready-file", str(ready)], ready)
    try:
        exports = emulator.exports()
        for name, value in exports.items():
            assert '"host": "http://127.0.0.1:' in value  # not 0.0.0.0, which the hooks refuse in clear text
            monkeypatch.setenv(name, value)
        for hook in (BrightDataBrowserHook(), CloudflareBrowserRenderingHook()):
            ok, message = hook.test_connection()
            assert ok is True, message
        # The default data set shows the examples' point: failed sessions of each zone in the last 24 hours.
        now = datetime.now(UTC)
        for zone in ZONES:
            failed = list(
                BrightDataBrowserHook().iter_sessions(
                    status="failed", api_name=zone, started_after=now - timedelta(days=1), started_before=now
                )
            )
            assert len(failed) >= SHOWCASE_FAILED_PER_ZONE, zone
    finally:
        code, _, stderr = emulator.stop(signal.SIGTERM)
    assert code == 0, stderr
    assert stderr.startswith("Warning: listening on 0.0.0.0, beyond loopback: ")
    assert f"The lines above use {emulator.ready['url']}, for this machine." in stderr


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (the one its default route leaves by), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: nothing is sent, the kernel only picks a source address
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_bound_to_another_address_it_prints_lines_with_allow_insecure_http(tmp_path, monkeypatch):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    ready = tmp_path / "ready.json"
    emulator = RunningEmulator([*PYTHON_M, "--host", address, "--sessions", "0", "--ready-file", str(ready)], ready)
    try:
        for name, value in emulator.exports().items():
            connection = json.loads(value)
            assert connection["host"].startswith(f"http://{address}:")
            # The hooks refuse clear text to a host that is not loopback unless the extra allows it.
            assert connection["extra"]["allow_insecure_http"] is True
            monkeypatch.setenv(name, value)
        for hook in (BrightDataBrowserHook(), CloudflareBrowserRenderingHook()):
            ok, message = hook.test_connection()
            assert ok is True, message
    finally:
        code, _, stderr = emulator.stop(signal.SIGTERM)
    assert code == 0, stderr
    assert f"Warning: listening on {address}, beyond loopback: " in stderr
    assert '"allow_insecure_http": true' in stderr
