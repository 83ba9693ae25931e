"""`make up` / `make down` when things go wrong: each failure is named, and nothing is left running."""

from __future__ import annotations

import dataclasses
import os

import deployment as deploy
import pytest
from live import port_taken


def assert_nothing_left(home, ports: deploy.Ports) -> None:
    assert not (home / "state.json").exists()
    busy = [port for port in dataclasses.asdict(ports).values() if deploy.port_in_use(port)]
    assert not busy, f"ports still answering: {busy}"


def own_processes_under(home) -> list[int]:
    """Processes whose command line or working directory is inside ``home`` (ours, by construction)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                cmdline = file.read().decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if str(home) in cmdline or cwd.startswith(str(home)):
            found.append(int(entry))
    return found


def test_a_port_in_use_is_named_before_anything_starts(tmp_path):
    ports = deploy.Ports.free()
    with (
        port_taken(ports.api),
        pytest.raises(deploy.DeploymentError, match=rf"already in use on 127\.0\.0\.1: api port {ports.api}\."),
    ):
        deploy.up(home=tmp_path / "d", ports=ports)
    assert not (tmp_path / "d").exists()  # refused before touching anything


def test_a_component_that_fails_to_start_is_named_with_its_log_and_everything_stops(tmp_path):
    home, ports = tmp_path / "d", deploy.Ports.free()
    # An executor that does not exist: the scheduler dies at start-up, the rest would run.
    with pytest.raises(deploy.DeploymentError) as caught:
        deploy.up(home=home, ports=ports, extra_env={"AIRFLOW__CORE__EXECUTOR": "NoSuchExecutor"}, timeout=120)
    message = str(caught.value)
    assert "exited with code" in message
    assert "scheduler" in message or "api-server" in message
    assert str(home / "logs") in message
    assert "NoSuchExecutor" in message  # the end of the log says why
    assert_nothing_left(home, ports)
    assert own_processes_under(home) == []


def test_a_slow_start_times_out_with_what_it_waited_for_and_everything_stops(tmp_path):
    home, ports = tmp_path / "d", deploy.Ports.free()
    with pytest.raises(deploy.DeploymentError) as caught:
        deploy.up(home=home, ports=ports, timeout=3)
    message = str(caught.value)
    assert message.startswith("not ready after 3 s: still waiting for ")
    assert "The ends of the logs" in message
    assert_nothing_left(home, ports)
    assert own_processes_under(home) == []


def test_a_second_up_on_a_running_deployment_is_refused_without_harming_it(live, api):
    with pytest.raises(deploy.DeploymentError, match="already running"):
        deploy.up(home=live.home, ports=deploy.Ports.free())
    assert api.call("GET", "/monitor/health")["scheduler"]["status"] == "healthy"


def test_down_with_nothing_recorded_says_so(tmp_path, capsys):
    assert deploy.down(home=tmp_path) == []
    assert "Nothing to stop" in capsys.readouterr().out


def test_up_then_down_leaves_no_process_and_no_port(live):
    # The session's deployment is the `up` (deploy.up on free ports, as `make up` does), and this test is its
    # `down`: the conftest runs it after every other test, so the suite starts one deployment, not two. (The
    # fixture's own stop then finds nothing recorded.) A component restarted by a test is stopped too.
    home, ports = live.home, live.ports
    assert own_processes_under(home), "the components run from their home"
    stopped = deploy.down(home=home, quiet=True)
    assert sorted(stopped) == sorted(["emulator", *deploy.COMPONENTS])
    assert all(not deploy._alive(pid) for pid in live.processes.values())
    assert_nothing_left(home, ports)
    assert own_processes_under(home) == []


def test_a_home_with_foreign_files_is_refused_and_left_untouched(tmp_path):
    home = tmp_path / "d"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(deploy.DeploymentError, match="holds files that are not a deployment's"):
        deploy.up(home=home, ports=deploy.Ports.free())
    assert (home / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]
