"""A distributed Airflow 3 on this one machine, wired to the emulator: `make up-cluster` (stopped by `make down`).

``up`` starts what ``scripts/deployment.py`` starts for ``make up`` (the emulator, api-server, scheduler,
dag-processor, both connections in the metadata DB), on Airflow's production parts instead of the
single-node ones:

- **PostgreSQL** as the metadata DB: Debian's server binaries (``initdb``, ``postgres``) with a data
  directory of the deployment's own, on a free loopback port. PostgreSQL refuses to run as root, so as
  root it runs as the ``postgres`` user, its data directory in a private temporary directory that user
  can enter (``<home>/postgres`` links to it; ``down`` deletes it);
- **Redis** as the Celery broker (Debian's ``redis-server``, no persistence);
- ``CeleryExecutor`` with **two Celery workers** and **two triggerers**, each with a name of its own
  (``worker-1``, ``worker-2``, ``triggerer-1``, ``triggerer-2``: the task instances' and the triggerer
  jobs' ``hostname`` in Airflow's records) and a log server port of its own.

Every process runs in its own process group with its log under ``<home>/logs/``. A missing binary, a port in
use, a part that exits or never gets ready: the message names the part and everything started is stopped.
``python scripts/deployment.py down`` (``make down``) stops it all, PostgreSQL and Redis last.

Run ``python scripts/cluster.py --help``; the cluster e2e suite imports :func:`up`.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deployment as deploy

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
COMPONENTS = ("api-server", "scheduler", "dag-processor", *WORKERS, *TRIGGERERS)
DATABASE = "airflow"
DB_USER = "airflow"
# The variable each worker and triggerer gets its name from, and the hostname callable that reads it.
NAME_VARIABLE = "BROWSERSESSIONS_COMPONENT_NAME"
HOSTNAME_CALLABLE = "cluster.component_hostname"
INSTALL_HINT = "run `bash scripts/install_cluster_services.sh` (make up-cluster does) to install it"
# A triggerer that misses heartbeats for this long is taken for dead, and another one adopts its triggers.
# Airflow's default is 30 s with a heartbeat every 5 s; the cluster heartbeats every 2 s (as make up does).
TRIGGERER_HEALTH_CHECK_THRESHOLD = 15
# A task whose worker died (no heartbeat for this long) is failed, and retried if it has retries left.
# Airflow's default is 300 s.
TASK_HEARTBEAT_TIMEOUT = 60
WORKER_CONCURRENCY = 8


def component_hostname() -> str:
    """``[core] hostname_callable`` of the cluster: a worker's or triggerer's own name, else the host's."""
    import socket

    return os.environ.get(NAME_VARIABLE) or socket.getfqdn()


@dataclasses.dataclass(frozen=True)
class ClusterPorts(deploy.Ports):
    """
    The single-node deployment's ports, and the cluster's own.

    ``worker_log_server`` and ``trigger_log_server`` are the first worker's and triggerer's log servers.

    :param worker_log_server_2: The second Celery worker's log server.
    :param trigger_log_server_2: The second triggerer's log server.
    :param postgres: PostgreSQL.
    :param redis: Redis.
    """

    worker_log_server_2: int = 0
    trigger_log_server_2: int = 0
    postgres: int = 0
    redis: int = 0


def postgres_bin() -> Path:
    """Debian's PostgreSQL server binaries (the newest major version installed)."""
    found = sorted(
        (Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if not found or not (found[-1] / "postgres").exists():
        raise deploy.DeploymentError(
            f"postgres: the PostgreSQL server (initdb, postgres) is not under /usr/lib/postgresql/*/bin; {INSTALL_HINT}"
        )
    return found[-1]


def database_url(ports: ClusterPorts, password: str, *, scheme: str = "postgresql+psycopg2") -> str:
    return f"{scheme}://{DB_USER}:{password}@127.0.0.1:{ports.postgres}/{DATABASE}"


def cluster_settings(home: Path, ports: ClusterPorts, db_password: str, extra: dict[str, str] | None) -> dict[str, str]:
    """The single-node settings with the cluster's executor, database, broker, DAGs folder and health checks."""
    cluster = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url(ports, db_password),
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{ports.redis}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": database_url(ports, db_password, scheme="db+postgresql"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_CHECK_THRESHOLD),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
        # The hostname callable lives in this directory.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")])
        ),
    }
    return deploy.airflow_settings(home, ports, {**cluster, **(extra or {})})


def airflow_components(ports: ClusterPorts) -> dict[str, deploy.Component]:
    airflow = [sys.executable, "-m", "airflow"]
    api = [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(ports.api), "--workers", "1"]
    components = {
        "api-server": deploy.Component(argv=api),
        "scheduler": deploy.Component(argv=[*airflow, "scheduler"]),
        "dag-processor": deploy.Component(argv=[*airflow, "dag-processor"]),
    }
    for name, log_port in zip(WORKERS, (ports.worker_log_server, ports.worker_log_server_2), strict=True):
        components[name] = deploy.Component(
            argv=[*airflow, "celery", "worker", "--celery-hostname", f"{name}@%h", "--without-mingle"],
            env={NAME_VARIABLE: name, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port)},
        )
    for name, log_port in zip(TRIGGERERS, (ports.trigger_log_server, ports.trigger_log_server_2), strict=True):
        components[name] = deploy.Component(
            argv=[*airflow, "triggerer"],
            env={NAME_VARIABLE: name, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_port)},
        )
    return components


def _link_dags(home: Path, extra_dags: Sequence[Path]) -> None:
    """``<home>/dags``: links to the example DAGs and to any ``extra_dags`` (the e2e suite's test DAGs)."""
    dags = home / "dags"
    dags.mkdir()
    for path in [*sorted(deploy.EXAMPLE_DAGS.glob("example_*.py")), *extra_dags]:
        (dags / path.name).symlink_to(path.resolve())


def _wait(what: str, check: Callable[[], bool], process: subprocess.Popen[bytes], home: Path, name: str) -> None:
    deadline = time.monotonic() + 60
    while not check():
        if process.poll() is not None:
            raise deploy.DeploymentError(
                f"{name} exited with code {process.returncode} while starting; the end of "
                f"{deploy.log_path(home, name)}:\n{deploy.log_tail(deploy.log_path(home, name))}"
            )
        if time.monotonic() > deadline:
            raise deploy.DeploymentError(
                f"{name} did not {what} in 60 s; the end of {deploy.log_path(home, name)}:\n"
                f"{deploy.log_tail(deploy.log_path(home, name))}"
            )
        time.sleep(0.3)


def _run(name: str, argv: list[str], *, user: str | None = None, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, user=user, cwd="/", env=env)
    if result.returncode:
        raise deploy.DeploymentError(
            f"{name}: `{' '.join(argv)}` failed with code {result.returncode}:\n"
            f"{result.stdout[-1500:]}{result.stderr[-1500:]}"
        )


def start_services(
    deployment: deploy.Deployment,
    start: Callable[[str, deploy.Component], subprocess.Popen[bytes]],
    *,
    db_password: str,
) -> None:
    """PostgreSQL (a fresh cluster, one database) and Redis, each ready to serve before this returns."""
    assert isinstance(deployment.ports, ClusterPorts)
    ports, home = deployment.ports, deployment.home
    bin_dir = postgres_bin()
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise deploy.DeploymentError(f"redis: redis-server is not installed; {INSTALL_HINT}")
    # PostgreSQL never runs as root; as root it runs as Debian's postgres user, which may not be able to enter
    # the deployment's home (a root-only temporary directory, say): its files live in a directory of its own.
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="browsersessions-postgres-"))
    deployment.scratch.append(str(root))
    deployment.save()
    (home / "postgres").symlink_to(root)
    password_file = root / "password"
    password_file.write_text(db_password)
    if user is not None:
        record = pwd.getpwnam(user)
        for path in (root, password_file):
            os.chown(path, record.pw_uid, record.pw_gid)
    initdb = [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", DB_USER, f"--pwfile={password_file}"]
    initdb += ["--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"]
    _run("postgres", initdb, user=user)
    password_file.unlink()
    postgres = [str(bin_dir / "postgres"), "-D", str(root / "data"), "-p", str(ports.postgres), "-k", str(root)]
    # Two workers' task processes, two triggerers, the scheduler, the API server: more than the default 100.
    postgres += ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"]
    process = start("postgres", deploy.Component(argv=postgres, user=user, service=True))
    pg_isready = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(ports.postgres)]
    _wait(
        "accept connections",
        lambda: subprocess.run(pg_isready, check=False).returncode == 0,
        process,
        home,
        "postgres",
    )
    client_env = {**os.environ, "PGPASSWORD": db_password}
    createdb = [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(ports.postgres), "-U", DB_USER, DATABASE]
    _run("postgres", createdb, env=client_env)
    (home / "redis").mkdir()
    redis = [redis_server, "--port", str(ports.redis), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    redis += ["--dir", str(home / "redis")]
    process = start("redis", deploy.Component(argv=redis, service=True))
    _wait("listen on its port", lambda: deploy.port_in_use(ports.redis), process, home, "redis")


def workers_and_triggerers_ready(deployment: deploy.Deployment, token: str) -> str | None:
    """What the cluster still waits for beyond ``make up``'s checks: both workers and both triggerers."""
    not_ready = [
        name
        for name in WORKERS
        if f"{name}@" not in (text := _read(deploy.log_path(deployment.home, name))) or " ready." not in text
    ]
    if not_ready:
        return f"the Celery workers {', '.join(not_ready)} to report ready in their logs"
    try:
        jobs = deploy._get_json(f"{deployment.api_url}/api/v2/jobs?job_type=TriggererJob&is_alive=true", token)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return "the API server to list the triggerer jobs"
    alive = {job["hostname"] for job in jobs["jobs"]}
    missing = [name for name in TRIGGERERS if name not in alive]
    if missing:
        return f"a heartbeat from {', '.join(missing)} (/api/v2/jobs?job_type=TriggererJob)"
    return None


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def up(
    *,
    home: Path = deploy.DEFAULT_HOME,
    ports: ClusterPorts | None = None,
    timeout: float = 600.0,
    seed: int = 42,
    sessions: int = 300,
    extra_dags: Sequence[Path] = (),
    extra_env: dict[str, str] | None = None,
) -> deploy.Deployment:
    """
    Start the emulator, PostgreSQL, Redis and a distributed Airflow; return once all of it is ready.

    On any failure, stop what started. ``deployment.down`` stops it.

    :param home: Directory for the Airflow home, logs and state (emptied first).
    :param ports: Ports to use (default: free ones).
    :param timeout: Seconds to wait for every component to be ready (a loaded machine needs minutes).
    :param seed: Seed of the emulator's generated data.
    :param sessions: Sessions seeded per platform.
    :param extra_dags: DAG files served next to the example DAGs (the e2e suite's own).
    :param extra_env: More Airflow settings (tests use them to provoke failures).
    :raises DeploymentError: a missing binary, a port in use, a previous deployment still running, a failed or
        slow start; the message names the part.
    """
    ports = ports or ClusterPorts.free()
    db_password = secrets.token_urlsafe(16)

    def services(
        deployment: deploy.Deployment, start: Callable[[str, deploy.Component], subprocess.Popen[bytes]]
    ) -> None:
        _link_dags(deployment.home, extra_dags)
        start_services(deployment, start, db_password=db_password)

    return deploy.launch(
        home=home,
        ports=ports,
        kind="cluster",
        settings=cluster_settings(home, ports, db_password, extra_env),
        components=airflow_components(ports),
        services=services,
        ready=workers_and_triggerers_ready,
        timeout=timeout,
        seed=seed,
        sessions=sessions,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cluster.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--home", type=Path, default=deploy.DEFAULT_HOME, help="state directory (default %(default)s)")
    parser.add_argument("--api-port", type=int, default=0, help="UI and REST API port (default: a free one)")
    parser.add_argument("--emulator-port", type=int, default=0, help="emulator port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a ready cluster")
    args = parser.parse_args(argv)
    ports = ClusterPorts.free()
    ports = dataclasses.replace(ports, api=args.api_port or ports.api, emulator=args.emulator_port or ports.emulator)
    started = time.monotonic()
    print(
        "Starting the emulator, PostgreSQL, Redis and Airflow (api-server, scheduler, dag-processor, "
        f"{', '.join(WORKERS)}, {', '.join(TRIGGERERS)})...",
        flush=True,
    )
    try:
        deployment = up(home=args.home, ports=ports, timeout=args.timeout)
    except deploy.DeploymentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    services = [
        f"  PostgreSQL:   127.0.0.1:{ports.postgres} (database {DATABASE!r}; the URL is in airflow.env)",
        f"  Redis:        127.0.0.1:{ports.redis} (the Celery broker)",
        f"  Workers:      {', '.join(WORKERS)}; triggerers: {', '.join(TRIGGERERS)}",
    ]
    print(deploy.ready_message(deployment, seconds=time.monotonic() - started, services=services))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
