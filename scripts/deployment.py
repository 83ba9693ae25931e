"""A real local Airflow 3 deployment with the provider, wired to the embedded emulator: `make up` / `make down`.

``up`` starts, each in its own process group with its log under ``<home>/logs/``:

- the emulator (``browsersessions-emulator``) with a seeded data set, on loopback;
- ``airflow api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` on a fresh SQLite metadata
  DB, with the example DAGs, both connections stored in the metadata DB (so they show in the UI),
  ``[core] test_connection`` enabled, an admin user and a read-only "viewer" user whose passwords are
  generated per deployment.

It waits until the API reports every component healthy and every example DAG parsed, then prints the UI
address and the login. Any failure (a port in use, a component that exits or never gets healthy) stops
everything it started and says which part failed, with the end of that part's log. ``down`` stops every
process group recorded in ``<home>/state.json`` (SIGTERM, then SIGKILL) and checks the ports are free.

Run ``python scripts/deployment.py --help``; the e2e suite imports :func:`up` and :func:`down`. The distributed
topology (``make up-cluster``: PostgreSQL, Redis, Celery workers, two triggerers) is ``scripts/cluster.py``,
which starts through :func:`launch` and is stopped by the same :func:`down`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = ROOT / ".deploy"
EXAMPLE_DAGS = ROOT / "example_dags"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# What a cluster deployment (scripts/cluster.py) adds to its home: DAGs, the broker's directory, a link to
# PostgreSQL's data directory.
CLUSTER_FILES = ("dags", "redis", "postgres")
USERNAME = "admin"
# A read-only user (simple auth manager role "viewer": DAGs yes, connections no); its password is in
# <home>/airflow/passwords.json.
VIEWER_USERNAME = "viewer"
BRIGHTDATA_CONN_ID = "brightdata_default"
CLOUDFLARE_CONN_ID = "cloudflare_browser_rendering_default"
BROWSERBASE_CONN_ID = "browserbase_default"
#: The connections `make up` stores in the metadata DB, one per platform.
STORED_CONN_IDS = (BRIGHTDATA_CONN_ID, CLOUDFLARE_CONN_ID, BROWSERBASE_CONN_ID)


class DeploymentError(RuntimeError):
    """A start or stop that could not complete; the message says what and where to look."""


@dataclasses.dataclass(frozen=True)
class Ports:
    """
    Every port the deployment listens on (all on 127.0.0.1).

    :param api: The API server and UI.
    :param emulator: The emulator of both platforms.
    :param worker_log_server: The scheduler's log server (``[logging] worker_log_server_port``).
    :param trigger_log_server: The triggerer's log server (``[logging] trigger_log_server_port``).
    """

    api: int = 8080
    emulator: int = 8790
    worker_log_server: int = 8793
    trigger_log_server: int = 8794

    @classmethod
    def free(cls: type[_P]) -> _P:
        """One port free right now per field (for tests, which must not collide with a running `make up`)."""
        names = [field.name for field in dataclasses.fields(cls)]
        sockets = [socket.socket() for _ in names]
        try:
            for sock in sockets:
                sock.bind(("127.0.0.1", 0))
            return cls(**{name: sock.getsockname()[1] for name, sock in zip(names, sockets, strict=True)})
        finally:
            for sock in sockets:
                sock.close()


_P = TypeVar("_P", bound=Ports)


@dataclasses.dataclass(frozen=True)
class Component:
    """
    One long-running process of a deployment.

    :param argv: Its command line.
    :param env: Environment on top of the deployment's (e.g. a log server port of its own).
    :param user: Run as this user (PostgreSQL refuses to run as root); None: as the caller.
    :param service: A backing service (database, broker): stopped after Airflow, which still talks to it.
    """

    argv: list[str]
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    user: str | None = None
    service: bool = False


@dataclasses.dataclass
class Deployment:
    """
    What ``up`` started; also saved as ``<home>/state.json`` for ``down``.

    :param home: The deployment's directory (Airflow home, logs, state).
    :param ports: Its ports.
    :param password: The admin password (generated; also in Airflow's passwords file there).
    :param processes: ``{name: pid}`` of each process group leader.
    :param emulator_env: ``AIRFLOW_CONN_*`` values of the emulator (the stored connections' contents).
    :param kind: ``single`` (``make up``) or ``cluster`` (``make up-cluster``, ``scripts/cluster.py``).
    :param settings: The Airflow settings every component runs with (``AIRFLOW__*``, ``PATH``).
    :param components: How to start each process again (by name, as in ``processes``).
    :param scratch: Directories outside ``home`` that ``down`` deletes (PostgreSQL's data directory).
    """

    home: Path
    ports: Ports
    password: str
    processes: dict[str, int]
    emulator_env: dict[str, str]
    kind: str = "single"
    settings: dict[str, str] = dataclasses.field(default_factory=dict)
    components: dict[str, Component] = dataclasses.field(default_factory=dict)
    scratch: list[str] = dataclasses.field(default_factory=list)

    @property
    def api_url(self) -> str:
        """The UI and REST API address."""
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def emulator_url(self) -> str:
        """The emulator's address (its control API is under ``/_emulator/``)."""
        return f"http://127.0.0.1:{self.ports.emulator}"

    def connection(self, conn_id: str) -> dict[str, Any]:
        """The emulator's values for one of the two connections (``conn_type``, ``host``, ``password``, ...)."""
        return dict(json.loads(self.emulator_env[f"AIRFLOW_CONN_{conn_id.upper()}"]))

    def environment(self, name: str | None = None) -> dict[str, str]:
        """The environment a component (or, without a name, the `airflow` CLI) runs with."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW_", "AIRFLOW__"))}
        env.update(self.settings)
        if name is not None:
            env.update(self.components[name].env)
        return env

    def save(self) -> None:
        state = dataclasses.asdict(self)
        state["home"] = str(self.home)
        (self.home / "state.json").write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, home: Path) -> Deployment | None:
        path = home / "state.json"
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        kind = state.get("kind", "single")
        if kind == "cluster":
            import cluster  # the sibling module (it imports this one); only it knows the cluster's ports

            ports: Ports = cluster.ClusterPorts(**state["ports"])
        else:
            ports = Ports(**state["ports"])
        return cls(
            home=Path(state["home"]),
            ports=ports,
            password=state["password"],
            processes={name: int(pid) for name, pid in state["processes"].items()},
            emulator_env=state["emulator_env"],
            kind=kind,
            settings=state.get("settings", {}),
            components={name: Component(**value) for name, value in state.get("components", {}).items()},
            scratch=state.get("scratch", []),
        )


def airflow_env(home: Path, ports: Ports, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Airflow process of the single-node deployment runs with."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(airflow_settings(home, ports, extra))
    return env


def airflow_settings(home: Path, ports: Ports, extra: dict[str, str] | None = None) -> dict[str, str]:
    """
    The Airflow settings of a deployment: the single-node ones, with ``extra`` on top (the cluster's).

    :param extra: Settings that replace or add to these (another executor, database, ...).
    """
    airflow_home = home / "airflow"
    # The components are started by path, but LocalExecutor's workers run `airflow` by name.
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin,{VIEWER_USERNAME}:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{ports.api}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{ports.api}",
            "AIRFLOW__API__PORT": str(ports.api),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports.worker_log_server),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports.trigger_log_server),
            # New DAG files are seen within seconds, paused DAGs stay paused until a person (or the suite)
            # unpauses them, and the triggerer's heartbeat shows up quickly in /monitor/health.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.update(extra or {})
    return env


def statsd_settings(port: int) -> dict[str, str]:
    """
    Airflow's ``[metrics]`` settings that send StatsD lines to ``port`` on 127.0.0.1, tags included (InfluxDB
    style, as ``docs/metrics.md`` shows them): every process sends them, whatever its component.
    """
    return {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(port),
        "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
    }


def statsd_prefix(name: str) -> dict[str, str]:
    """
    A component's own StatsD prefix, ``airflow.<component>`` (``airflow.dag_processor``), so a listener tells
    who sent a line. The LocalExecutor's task processes inherit the scheduler's environment, so a task's lines
    carry ``airflow.scheduler``.
    """
    return {"AIRFLOW__METRICS__STATSD_PREFIX": f"airflow.{name.replace('-', '_')}"}


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_path(home: Path, name: str) -> Path:
    """Where a process of the deployment writes its output."""
    return home / "logs" / f"{name}.log"


def log_tail(path: Path, lines: int = 20) -> str:
    """The end of a log, indented, for an error message."""
    if not path.exists():
        return "    (no log written)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in text) or "    (log is empty)"


def _start(
    name: str, argv: list[str], env: dict[str, str], home: Path, *, user: str | None = None
) -> subprocess.Popen[bytes]:
    if shutil.which(argv[0], path=env.get("PATH")) is None:
        raise DeploymentError(f"{name}: {argv[0]} not found; is it installed?")
    with log_path(home, name).open("ab") as log:
        # A session of its own, so `down` can stop the component and every worker it forked in one signal.
        return subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=home if user is None else "/",
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )


def start_component(deployment: Deployment, name: str) -> subprocess.Popen[bytes]:
    """Start one of the deployment's components (again) and record its pid."""
    component = deployment.components[name]
    process = _start(name, component.argv, deployment.environment(name), deployment.home, user=component.user)
    deployment.processes[name] = process.pid
    deployment.save()
    return process


def session_members(pid: int) -> list[int]:
    """
    The live (not zombie) processes of the session led by pid: its group, and any group a child made of its own.

    Airflow 3's task supervisor puts each task process in a process group of its own, so a worker's group is
    not all of it; the session (every component starts one) is.
    """
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # After the command name in parentheses: state, ppid, pgrp, session, ...
        state, _, _, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) == pid and state != "Z":
            members.append(int(entry))
    return members


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Send sig to every process of the session led by pid (SIGKILL: a lost machine, no clean-up of any kind)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    for member in session_members(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, sig)


def _stop(pid: int, *, grace: float = 20.0) -> None:
    """SIGTERM the process group led by pid, then SIGKILL what is left of its session after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap our own child so it does not linger as a zombie
        if not _alive(pid):
            return
        time.sleep(0.2)
    kill(pid)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _get_json(url: str, token: str | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def api_token(api_url: str, password: str, *, username: str = USERNAME) -> str:
    """A JWT from the simple auth manager's ``POST /auth/token`` (what scripts and the e2e suite use)."""
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(
        f"{api_url}/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["access_token"])


def _check_running(processes: dict[str, subprocess.Popen[bytes]], home: Path) -> None:
    for name, process in processes.items():
        if process.poll() is not None:
            raise DeploymentError(
                f"{name} exited with code {process.returncode} while starting; the end of "
                f"{log_path(home, name)}:\n{log_tail(log_path(home, name))}"
            )


def _wait_ready(
    deployment: Deployment,
    processes: dict[str, subprocess.Popen[bytes]],
    timeout: float,
    ready: Callable[[Deployment, str], str | None] | None = None,
) -> float:
    """Wait until every component is healthy and every example DAG is parsed; return the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    waiting_for = "the API server to answer"
    token: str | None = None
    expected = {path.stem for path in EXAMPLE_DAGS.glob("example_*.py")}
    while time.monotonic() < deadline:
        _check_running(processes, deployment.home)
        try:
            health = _get_json(f"{deployment.api_url}/api/v2/monitor/health")
            unhealthy = sorted(
                part for part, value in health.items() if isinstance(value, dict) and value.get("status") != "healthy"
            )
            if unhealthy:
                waiting_for = f"healthy {', '.join(unhealthy)} in /api/v2/monitor/health"
            else:
                token = token or api_token(deployment.api_url, deployment.password)
                errors = _get_json(f"{deployment.api_url}/api/v2/importErrors", token)
                if errors["total_entries"]:
                    details = "\n".join(f"  {e['filename']}:\n{e['stack_trace']}" for e in errors["import_errors"])
                    raise DeploymentError(f"example DAGs failed to import:\n{details}")
                dags = _get_json(f"{deployment.api_url}/api/v2/dags?limit=100", token)
                missing = expected - {dag["dag_id"] for dag in dags["dags"]}
                if missing:
                    waiting_for = f"the dag-processor to parse {', '.join(sorted(missing))}"
                else:
                    still = ready(deployment, token) if ready else None
                    if still is None:
                        return time.monotonic() - started
                    waiting_for = still
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        time.sleep(1)
    logs = "\n".join(
        f"  {log_path(deployment.home, name)}:\n{log_tail(log_path(deployment.home, name), 8)}" for name in processes
    )
    raise DeploymentError(
        f"not ready after {timeout:.0f} s: still waiting for {waiting_for}.\nThe ends of the logs:\n{logs}"
    )


def up(
    *,
    home: Path = DEFAULT_HOME,
    ports: Ports | None = None,
    timeout: float = 180.0,
    seed: int = 42,
    sessions: int = 300,
    extra_env: dict[str, str] | None = None,
    statsd_port: int | None = None,
) -> Deployment:
    """
    Start the emulator and Airflow; return once everything is ready. On any failure, stop what started.

    :param home: Directory for the Airflow home, logs and state (emptied first).
    :param ports: Ports to use (default: 8080 for the UI, 8790 for the emulator, 8793/8794 for log servers).
    :param timeout: Seconds to wait for every component to be healthy and every example DAG parsed.
    :param seed: Seed of the emulator's generated data.
    :param sessions: Sessions seeded per platform.
    :param extra_env: More environment for the Airflow processes (tests use it to provoke failures).
    :param statsd_port: Send Airflow's metrics (the provider's included) as StatsD lines to this UDP port on
        127.0.0.1, each component with its own prefix (``statsd_prefix``); None: no metrics.
    :raises DeploymentError: a port in use, a previous deployment still running, a failed or slow start.
    """
    ports = ports or Ports()
    metrics = statsd_settings(statsd_port) if statsd_port is not None else {}
    return launch(
        home=home,
        ports=ports,
        settings=airflow_settings(home, ports, {**metrics, **(extra_env or {})}),
        components={
            name: Component(argv=_component_argv(name, ports), env=statsd_prefix(name) if metrics else {})
            for name in COMPONENTS
        },
        timeout=timeout,
        seed=seed,
        sessions=sessions,
    )


def launch(
    *,
    home: Path,
    ports: Ports,
    settings: dict[str, str],
    components: dict[str, Component],
    timeout: float,
    seed: int = 42,
    sessions: int = 300,
    kind: str = "single",
    services: Callable[[Deployment, Callable[[str, Component], subprocess.Popen[bytes]]], None] | None = None,
    ready: Callable[[Deployment, str], str | None] | None = None,
) -> Deployment:
    """
    Start a deployment: the emulator, its ``services``, the metadata DB schema, both connections, then the
    Airflow ``components``; return once it is ready. On any failure, stop what started and raise.

    :param settings: The Airflow settings (see :func:`airflow_settings`).
    :param components: The Airflow processes, by name, started in this order.
    :param kind: Recorded in the state, so ``down`` and ``Deployment.load`` know the topology.
    :param services: Starts backing services before ``airflow db migrate``; its second argument starts and
        records one process (so a failure stops it too).
    :param ready: Says what else the deployment still waits for (None: nothing), given an API token.
    :raises DeploymentError: a port in use, a previous deployment still running, a failed or slow start.
    """
    previous = Deployment.load(home)
    if previous and any(_alive(pid) for pid in previous.processes.values()):
        raise DeploymentError(
            f"a deployment is already running from {home} at {previous.api_url}; run `make down` first"
        )
    busy = [f"{name} port {port}" for name, port in dataclasses.asdict(ports).items() if port_in_use(port)]
    if busy:
        raise DeploymentError(
            f"already in use on 127.0.0.1: {', '.join(busy)}. Stop what listens there, or choose other ports "
            "(make up API_PORT=... EMULATOR_PORT=...; see `python scripts/deployment.py up --help`)."
        )
    if previous:
        _remove_scratch(previous)
    _reset_home(home)
    password = secrets.token_urlsafe(16)
    passwords = {USERNAME: password, VIEWER_USERNAME: secrets.token_urlsafe(16)}
    (home / "airflow" / "passwords.json").write_text(json.dumps(passwords))
    deployment = Deployment(
        home=home, ports=ports, password=password, processes={}, emulator_env={}, kind=kind, settings=settings
    )
    env = deployment.environment()
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, component: Component) -> subprocess.Popen[bytes]:
        deployment.components[name] = component
        processes[name] = start_component(deployment, name)
        return processes[name]

    try:
        ready_file = home / "emulator.json"
        emulator_argv = [
            sys.executable,
            "-m",
            "airflow_provider_browsersessions.testing.cli",
            "--port",
            str(ports.emulator),
        ]
        emulator_argv += ["--seed", str(seed), "--sessions", str(sessions), "--ready-file", str(ready_file)]
        start("emulator", Component(argv=emulator_argv))
        if services is not None:
            services(deployment, start)
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, check=False
        )
        if migrate.returncode:
            raise DeploymentError(f"`airflow db migrate` failed:\n{migrate.stdout[-2000:]}{migrate.stderr[-2000:]}")
        deadline = time.monotonic() + 30
        while not ready_file.exists():
            _check_running(processes, home)
            if time.monotonic() > deadline:
                raise DeploymentError(f"the emulator did not start in 30 s:\n{log_tail(log_path(home, 'emulator'))}")
            time.sleep(0.1)
        deployment.emulator_env = json.loads(ready_file.read_text())["env"]
        _store_connections(deployment, env)
        for name, component in components.items():
            start(name, component)
        _wait_ready(deployment, processes, timeout, ready)
    except BaseException:
        # What went wrong comes first; a port that outlives the clean-up must not hide it.
        with contextlib.suppress(DeploymentError):
            down(home=home, quiet=True)
        raise
    _write_env_file(deployment, env)
    return deployment


def _component_argv(name: str, ports: Ports) -> list[str]:
    argv = [sys.executable, "-m", "airflow", name]
    if name == "api-server":
        argv += ["--host", "127.0.0.1", "--port", str(ports.api), "--workers", "1"]
    return argv


def _alive(pid: int) -> bool:
    """True while any process of the session led by pid runs (its group, or a task process's own group)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # a leader we started and that died is a zombie until reaped
    # Zombies do not count: orphans are reparented to PID 1, which in a container may never reap them.
    return bool(session_members(pid))


def _reset_home(home: Path) -> None:
    # Emptied on every `up`: refuse a directory that holds anything but an earlier deployment's files.
    ours = {"airflow", "logs", "state.json", "emulator.json", "airflow.env", "connections.json", *CLUSTER_FILES}
    if home.exists() and (not home.is_dir() or any(entry.name not in ours for entry in home.iterdir())):
        raise DeploymentError(f"{home} holds files that are not a deployment's; choose an empty or new --home")
    shutil.rmtree(home, ignore_errors=True)
    (home / "logs").mkdir(parents=True)
    (home / "airflow").mkdir()


def _store_connections(deployment: Deployment, env: dict[str, str]) -> None:
    """The connections in the metadata DB, where the UI lists them and a person can edit and test them."""
    connections = {conn_id: deployment.connection(conn_id) for conn_id in STORED_CONN_IDS}
    for connection in connections.values():
        if isinstance(connection.get("extra"), dict):
            connection["extra"] = json.dumps(connection["extra"])
        # Airflow 3.3.2's UI tests a stored connection with `port: Number(port)`, 0 for a NULL port, and the
        # API then refuses to reuse the stored key (apache/airflow#73298, fixed after 3.3.2). A stored 0
        # matches what the UI sends; our hooks ignore a port of 0 (and any port when Host has a scheme).
        connection["port"] = 0
    path = deployment.home / "connections.json"
    path.write_text(json.dumps(connections))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", "connections", "import", str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        path.unlink()  # it holds the emulator's keys
    if result.returncode:
        raise DeploymentError(f"`airflow connections import` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def _write_env_file(deployment: Deployment, env: dict[str, str]) -> None:
    """``<home>/airflow.env``: source it to point the `airflow` CLI at this deployment."""
    lines = [
        f"export {key}={shlex.quote(value)}"
        for key, value in env.items()
        if key.startswith("AIRFLOW") or key in deployment.settings
    ]
    (deployment.home / "airflow.env").write_text("\n".join(lines) + "\n")


def restart(deployment: Deployment, name: str, *, while_stopped: Callable[[], None] | None = None) -> None:
    """
    Stop one Airflow component and start it again, as an operator restarting a service would.

    :param name: One of the deployment's components (``COMPONENTS`` for ``make up``).
    :param while_stopped: Called after the component stopped and before it starts again.
    """
    if name not in deployment.components or name == "emulator":
        raise DeploymentError(f"{name!r} is not a component; one of {', '.join(deployment.components)}")
    _stop(deployment.processes[name])
    if while_stopped is not None:
        while_stopped()
    start_component(deployment, name)


def down(*, home: Path = DEFAULT_HOME, quiet: bool = False) -> list[str]:
    """
    Stop every process group the deployment in ``home`` started and check its ports are free.

    :return: The names of the components that were still running.
    :raises DeploymentError: a port still answers after everything was stopped.
    """
    deployment = Deployment.load(home)
    if deployment is None:
        if not quiet:
            print(f"Nothing to stop: no deployment recorded in {home}.")
        return []
    running = [name for name, pid in deployment.processes.items() if _alive(pid)]

    def order(name: str) -> int:
        # The API server after the rest of Airflow (workers and triggerers report to it while they shut
        # down), and the database and the broker after every Airflow process (which still use them).
        component = deployment.components.get(name)
        return 2 if component is not None and component.service else int(name == "api-server")

    for name in sorted(deployment.processes, key=order):
        _stop(deployment.processes[name])
    _remove_scratch(deployment)
    (home / "state.json").unlink(missing_ok=True)
    busy: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        busy = [f"{name} {port}" for name, port in dataclasses.asdict(deployment.ports).items() if port_in_use(port)]
        if not busy:
            break
        time.sleep(0.2)
    if busy:
        raise DeploymentError(f"stopped every process, but ports still answer: {', '.join(busy)}")
    if not quiet:
        print(f"Stopped {', '.join(running) or 'nothing (it had already stopped)'}; ports free.")
    return running


def _remove_scratch(deployment: Deployment) -> None:
    for path in deployment.scratch:
        shutil.rmtree(path, ignore_errors=True)


def ready_message(deployment: Deployment, *, seconds: float, services: Sequence[str] = ()) -> str:
    """
    What ``make up`` and ``make up-cluster`` print once ready: the addresses, the login, logs, how to stop.

    :param deployment: The running deployment.
    :param seconds: How long the start took.
    :param services: More lines about what runs (the cluster's database, broker, workers), already indented.
    """
    return "\n".join(
        [
            f"Ready in {seconds:.0f} s.",
            f"  Airflow UI:   {deployment.api_url}   (user {USERNAME!r}, password {deployment.password!r})",
            f"  Emulator:     {deployment.emulator_url}   (control API under /_emulator/)",
            f"  Connections:  {', '.join(STORED_CONN_IDS)} (stored in the metadata DB)",
            *services,
            f"  Logs:         {deployment.home / 'logs'}/",
            f"  Airflow CLI:  source {deployment.home / 'airflow.env'}",
            "Stop everything with `make down`.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deployment.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"state directory (default {DEFAULT_HOME})")
    defaults = Ports()
    parser.add_argument("--api-port", type=int, default=defaults.api, help="UI and REST API port (default %(default)s)")
    parser.add_argument(
        "--emulator-port", type=int, default=defaults.emulator, help="emulator port (default %(default)s)"
    )
    parser.add_argument(
        "--log-server-port", type=int, default=defaults.worker_log_server, help="scheduler log server port"
    )
    parser.add_argument(
        "--trigger-log-server-port", type=int, default=defaults.trigger_log_server, help="triggerer log server port"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a ready deployment")
    args = parser.parse_args(argv)
    try:
        if args.command == "down":
            down(home=args.home)
            return 0
        if args.command == "status":
            deployment = Deployment.load(args.home)
            if deployment is None:
                print("Not running.")
                return 1
            for name, pid in deployment.processes.items():
                print(f"{name:14} pid {pid:<8} {'running' if _alive(pid) else 'STOPPED'}")
            return 0
        ports = Ports(args.api_port, args.emulator_port, args.log_server_port, args.trigger_log_server_port)
        started = time.monotonic()
        print("Starting the emulator and Airflow (api-server, scheduler, dag-processor, triggerer)...", flush=True)
        deployment = up(home=args.home, ports=ports, timeout=args.timeout)
    except DeploymentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(ready_message(deployment, seconds=time.monotonic() - started))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
