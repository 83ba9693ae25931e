"""``browsersessions-emulator`` as a user runs it: a real process whose printed connection values work."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook

EXPORT = re.compile(r"^export (AIRFLOW_CONN_\w+)='(.+)'$")
CONSOLE_SCRIPT = Path(sys.executable).with_name("browsersessions-emulator")


def start(command: list[str], ready_file: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the emulator did not start: {process.communicate()}")
        time.sleep(0.05)
    return process


@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param([sys.executable, "-m", "airflow_provider_browsersessions.testing.cli"], id="python-m"),
        pytest.param([str(CONSOLE_SCRIPT)], id="console-script"),
    ],
)
def test_printed_connection_values_work_with_both_hooks(launcher, tmp_path, monkeypatch):
    ready = tmp_path / "ready.json"
    process = start([*launcher, "--port", "0", "--sessions", "20", "--seed", "3", "--ready-file", str(ready)], ready)
    try:
        urls = json.loads(ready.read_text())
        for name, value in urls["env"].items():
            monkeypatch.setenv(name, value)
        brightdata_hook = BrightDataBrowserHook()
        cloudflare_hook = CloudflareBrowserRenderingHook()
        assert brightdata_hook.test_connection()[0]
        assert cloudflare_hook.test_connection()[0]
        assert len(brightdata_hook.list_sessions()) == 20
        assert all(s.status == "running" for s in cloudflare_hook.list_sessions())
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    exports = dict(EXPORT.match(line).groups() for line in stdout.splitlines() if EXPORT.match(line))
    assert exports == urls["env"]  # the printed values are exactly the ones that worked above
    assert f"Bright Data base URL: {urls['brightdata_base_url']}" in stdout
    assert f"Cloudflare base URL:  {urls['cloudflare_base_url']}" in stdout
    assert stdout.rstrip().endswith("Emulator stopped.")


def test_help_lists_every_option():
    result = subprocess.run([str(CONSOLE_SCRIPT), "--help"], capture_output=True, text=True, check=True)
    for option in ("--host", "--port", "--seed", "--sessions", "--speed", "--ready-file"):
        assert option in result.stdout
