"""`make up-cluster` when things go wrong: each failure names its part, and nothing is left running."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cluster
import deployment as deploy
import pytest
from live import port_taken
from test_deployment import assert_nothing_left, own_processes_under  # the single-node suite's checks


def _postgres_scratch() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("browsersessions-postgres-*"))


def test_a_port_in_use_is_named_before_anything_starts(tmp_path):
    ports = cluster.ClusterPorts.free()
    with (
        port_taken(ports.postgres),
        pytest.raises(
            deploy.DeploymentError, match=rf"already in use on 127\.0\.0\.1: postgres port {ports.postgres}\."
        ),
    ):
        cluster.up(home=tmp_path / "d", ports=ports)
    assert not (tmp_path / "d").exists()  # refused before touching anything


def test_a_missing_broker_is_named_with_how_to_install_it_and_the_emulator_stops(tmp_path, monkeypatch):
    home, ports = tmp_path / "d", cluster.ClusterPorts.free()
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no /usr/bin: no redis-server
    with pytest.raises(
        deploy.DeploymentError, match=r"redis: redis-server is not installed; run `bash scripts/install"
    ):
        cluster.up(home=home, ports=ports)
    assert_nothing_left(home, ports)
    assert own_processes_under(home) == []


def test_a_component_that_fails_to_start_is_named_and_everything_stops_database_and_broker_included(tmp_path):
    home, ports = tmp_path / "d", cluster.ClusterPorts.free()
    scratch_before = _postgres_scratch()
    # An executor that does not exist: the scheduler dies at start-up, after PostgreSQL and Redis started.
    with pytest.raises(deploy.DeploymentError) as caught:
        cluster.up(home=home, ports=ports, extra_env={"AIRFLOW__CORE__EXECUTOR": "NoSuchExecutor"}, timeout=300)
    message = str(caught.value)
    assert "exited with code" in message
    assert str(home / "logs") in message
    assert "NoSuchExecutor" in message
    assert_nothing_left(home, ports)  # the postgres and redis ports included
    assert own_processes_under(home) == []
    created = _postgres_scratch() - scratch_before
    assert created == set(), f"PostgreSQL's data directory was left behind: {created}"
