"""`neuron up`: the hub for real on one machine, as one supervised process group.

Airflow (scheduler, DAG processor, API server) runs the DAG suite; beside it the export
API and admin console (`neuron serve`), the MQTT collector (`neuron collect`) and, where
configured, the alarm relay (`neuron relay`). Each child:

- runs in its own process group, so a stop reaches its workers too;
- has every output line prefixed with its name on our stdout and kept in
  `<state>/logs/<name>.log`;
- is restarted when it crashes, after a backoff that doubles (1 s … 60 s) and resets once
  it has stayed up for a minute;
- has a health check (an HTTP endpoint, or being alive) whose changes are logged.

SIGINT/SIGTERM stop every child gracefully (SIGTERM, then SIGKILL after a grace period),
the Airflow components last-started first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from kernel.errors import FatalError
from kernel.settings import Settings
from neuron.airflow_runner import DAGS_FOLDER, SQLITE_CONNECT_ARGS_PATH

Health = Callable[[], bool]


@dataclass
class Service:
    """One long-running child of the group."""

    name: str
    argv: list[str]
    health: Health | None = None  # None: healthy while alive
    env: dict[str, str] = field(default_factory=dict)  # on top of the group's environment


def http_ok(url: str, timeout: float = 2.0) -> Health:
    """Healthy when `url` answers 2xx."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return 200 <= int(response.status) < 300
        except OSError:
            return False

    return check


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Child:
    """A service's current process, its restarts and health."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.proc: subprocess.Popen[str] | None = None
        self.started = 0.0
        self.restarts = 0
        self.failures_in_a_row = 0
        self.next_start = 0.0
        self.healthy: bool | None = None


class Supervisor:
    """Start, watch, restart and stop a group of services."""

    def __init__(
        self,
        services: list[Service],
        env: dict[str, str],
        log_dir: Path,
        out: TextIO | None = None,
        backoff: tuple[float, float] = (1.0, 60.0),
        stable_after: float = 60.0,
        grace: float = 20.0,
        poll: float = 0.5,
        health_every: float = 30.0,
    ) -> None:
        self.children = [_Child(s) for s in services]
        self.env = env
        self.log_dir = log_dir
        self.out = out or sys.stdout
        self.backoff, self.stable_after, self.grace = backoff, stable_after, grace
        self.poll, self.health_every = poll, health_every
        self._stop = threading.Event()
        self._out_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def say(self, name: str, line: str) -> None:
        """One prefixed line on the group's output."""
        with self._out_lock:
            self.out.write(f"{name:>14} | {line.rstrip()}\n")
            self.out.flush()

    def _start(self, child: _Child) -> None:
        service = child.service
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child.proc = subprocess.Popen(
            service.argv,
            env={**self.env, **service.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: a stop reaches its workers too
        )
        child.started = time.monotonic()
        child.healthy = None
        log = open(self.log_dir / f"{service.name}.log", "a", encoding="utf-8")  # noqa: SIM115 (closed by the pump)
        thread = threading.Thread(target=self._pump, args=(service.name, child.proc.stdout, log), daemon=True)
        thread.start()
        self._threads.append(thread)
        self.say(service.name, f"started (pid {child.proc.pid}): {' '.join(service.argv[:4])}")

    def _pump(self, name: str, stream: IO[str] | None, log: IO[str]) -> None:
        assert stream is not None
        with log:
            for line in stream:
                log.write(line)
                log.flush()
                self.say(name, line)

    def start(self) -> None:
        """Start every service, in order."""
        for child in self.children:
            self._start(child)

    def check_once(self) -> None:
        """Restart crashed children (after their backoff) and log health changes."""
        now = time.monotonic()
        for child in self.children:
            proc = child.proc
            if proc is not None and proc.poll() is not None:
                uptime = now - child.started
                child.failures_in_a_row = 1 if uptime >= self.stable_after else child.failures_in_a_row + 1
                delay = min(self.backoff[1], self.backoff[0] * 2 ** (child.failures_in_a_row - 1))
                self.say(
                    child.service.name, f"exited with {proc.returncode} after {uptime:.0f} s; restart in {delay:g} s"
                )
                child.proc, child.next_start = None, now + delay
            if child.proc is None and not self._stop.is_set() and now >= child.next_start:
                child.restarts += 1
                self._start(child)

    def check_health(self) -> dict[str, bool]:
        """Each service's health now (and log the changes)."""
        status = {}
        for child in self.children:
            alive = child.proc is not None and child.proc.poll() is None
            ok = alive and (child.service.health() if child.service.health else True)
            if ok != child.healthy:
                self.say(child.service.name, "healthy" if ok else "not healthy (yet)")
                child.healthy = ok
            status[child.service.name] = ok
        return status

    def wait_healthy(self, timeout: float) -> bool:
        """Wait until every service is healthy (restarting crashed ones meanwhile)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            self.check_once()
            if all(self.check_health().values()):
                return True
            time.sleep(self.poll)
        return False

    def run(self) -> None:
        """Supervise until stop() (or SIGINT/SIGTERM when called from the main thread)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self._stop.set())
        last_health = 0.0
        while not self._stop.is_set():
            self.check_once()
            if time.monotonic() - last_health >= self.health_every:
                self.check_health()
                last_health = time.monotonic()
            self._stop.wait(self.poll)
        self.stop()

    def stop(self) -> None:
        """Stop every child: SIGTERM to its process group, SIGKILL after the grace period."""
        self._stop.set()
        running = [c for c in reversed(self.children) if c.proc is not None and c.proc.poll() is None]
        for child in running:
            assert child.proc is not None
            self.say(child.service.name, "stopping")
            _signal_group(child.proc, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(child.service.name, f"still running after {self.grace:g} s: killed")
                _signal_group(child.proc, signal.SIGKILL)
                child.proc.wait()
            # Children of the group (uvicorn or Celery workers) must not outlive it either.
            _signal_group(child.proc, signal.SIGKILL)
        for thread in self._threads:
            thread.join(timeout=2)


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


@dataclass
class AirflowPorts:
    """Where the Airflow components listen (loopback)."""

    api: int = 8080
    scheduler_health: int = 8974
    log_server: int = 8793

    @classmethod
    def free(cls) -> AirflowPorts:
        return cls(free_port(), free_port(), free_port())


def airflow_env(settings: Settings, ports: AirflowPorts, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Airflow component of the hub shares.

    Values already set (AIRFLOW__*) win: that is how a deployment chooses CeleryExecutor,
    PostgreSQL and its broker. The JWT secret that lets task runners call the API server is
    made once and kept (0600) in AIRFLOW_HOME, so restarts and every component agree.
    """
    env = dict(os.environ if base is None else base)
    home = Path(env.get("AIRFLOW_HOME") or settings.state_path / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    secret_file = home / "neuron-jwt-secret"
    if not secret_file.exists():
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # Airflow's default of 32 parallel task processes only thrashes a small machine: the
        # hub's tasks are CPU-bound (validation, pseudonymisation) and DuckDB has one writer.
        "AIRFLOW__CORE__PARALLELISM": str(max(4, 2 * (os.cpu_count() or 2))),
        # The hub runs unattended: a DAG starts on its schedule as soon as it is parsed.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{ports.api}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(ports.api),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{ports.api}",
        "AIRFLOW__API__WORKERS": "1",  # one machine: the UI and the task runners' calls need no more
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(ports.scheduler_health),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports.log_server),
        # On loopback only, for one operator: the UI's simple auth manager lets everyone in
        # as admin. A deployment past one machine sets a real auth manager.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": SQLITE_CONNECT_ARGS_PATH,
    }
    if not env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite"):
        del defaults["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"]  # PostgreSQL needs no busy timeout
    return {**defaults, **env, "AIRFLOW_HOME": str(home)}


def prepare_airflow(env: dict[str, str]) -> None:
    """Migrate the metadata DB and create the hub's pools (before any component starts)."""
    code = "from neuron.airflow_runner import create_pools; create_pools()"
    for what, argv in (
        ("airflow db migrate", [sys.executable, "-m", "airflow", "db", "migrate"]),
        ("creating the duckdb_writer pool", [sys.executable, "-c", code]),
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, errors="replace")
        if done.returncode != 0:
            raise FatalError(f"{what} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")


def airflow_services(ports: AirflowPorts) -> list[Service]:
    """Airflow 3's three components on one machine."""
    airflow = [sys.executable, "-m", "airflow"]
    api_health = http_ok(f"http://127.0.0.1:{ports.api}/api/v2/monitor/health")
    return [
        Service("api-server", [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(ports.api)], api_health),
        Service("scheduler", [*airflow, "scheduler"], http_ok(f"http://127.0.0.1:{ports.scheduler_health}/health")),
        Service("dag-processor", [*airflow, "dag-processor"]),
    ]


def celery_workers(count: int, concurrency: int = 2) -> list[Service]:
    """Celery workers of this machine (CeleryExecutor; other machines run the same command)."""
    airflow = [sys.executable, "-m", "airflow", "celery", "worker"]
    return [
        # Distinct node names; logs are read from the shared log folder, so no log server
        # (two on one machine would fight over its port).
        Service(
            f"celery-worker-{i}",
            [*airflow, "--concurrency", str(concurrency), "--celery-hostname", f"neuron-{i}@%h", "--skip-serve-logs"],
        )
        for i in range(1, count + 1)
    ]


def relay_available(settings: Settings) -> bool:
    """Whether the hub configures an upstream for the relay."""
    return bool(settings.relay.upstreams)


def hub_services(
    settings: Settings,
    ports: AirflowPorts,
    collect: bool = True,
    serve: bool = True,
    workers: int = 0,
    relay: bool = True,
) -> list[Service]:
    """Every service of the hub: Airflow (and Celery workers), the export API, the collector,
    the relay and, when consumers' brokers are configured, the NGSI-LD push."""
    neuron = [sys.executable, "-m", "neuron.cli"]
    services = [*airflow_services(ports), *celery_workers(workers)]
    if serve:
        api = f"http://{settings.api.host}:{settings.api.port}/healthz"
        services.append(Service("export-api", [*neuron, "serve"], http_ok(api)))
    if collect:
        services.append(Service("collector", [*neuron, "collect"]))
    if relay and relay_available(settings):
        services.append(Service("relay", [*neuron, "relay"]))
    if settings.viid.configured:  # [viid] names an upper platform
        services.append(Service("viid", [*neuron, "viid"]))
    if settings.push.ngsi_ld:  # consumers' NGSI-LD brokers (neuron/push_cli.py)
        services.append(Service("push", [*neuron, "push"]))
    inbox = getattr(settings, "inbox", None)
    if inbox is not None and inbox.enabled:  # `[inbox] enabled = true`: the carriers push to this hub
        services.append(Service("inbox", [*neuron, "inbox"], http_ok(f"http://{inbox.host}:{inbox.port}/healthz")))
    return services


def run_up(
    settings: Settings,
    collect: bool = True,
    serve: bool = True,
    ports: AirflowPorts | None = None,
    out: TextIO | None = None,
    extra: list[Service] | None = None,
    workers: int = 0,
    relay: bool = True,
) -> None:
    """Prepare Airflow, start every service and supervise until SIGINT/SIGTERM."""
    ports = ports or AirflowPorts()
    env = airflow_env(settings, ports)
    services = [*hub_services(settings, ports, collect, serve, workers, relay), *(extra or [])]
    supervisor = Supervisor(services, env, settings.state_path / "logs", out)
    supervisor.say("neuron-up", f"preparing Airflow in {env['AIRFLOW_HOME']}")
    prepare_airflow(env)
    supervisor.start()
    if supervisor.wait_healthy(timeout=180):
        supervisor.say("neuron-up", f"all healthy; Airflow UI on http://127.0.0.1:{ports.api}; Ctrl-C to stop")
    supervisor.run()
    supervisor.say("neuron-up", "stopped")
