"""`neuron up`: the hub for real on one machine, as one supervised process group.

Airflow (scheduler, DAG processor, API server) runs the DAG suite; beside it the export
API and admin console (`neuron serve`), the MQTT collector (`neuron collect`) and, where
configured, the alarm relay (`neuron relay`). Each child:

- runs in its own process group, so a stop reaches its workers too;
- has every output line prefixed with its name on our stdout and kept in
  `<state>/logs/<name>.log`, rolled over daily to `<name>.log.YYYY-MM-DD` so that
  `neuron retention run` can forget whole days (kernel/daily_log.py);
- is restarted when it crashes, after a backoff that doubles (1 s … 60 s) and resets once
  it has stayed up for a minute;
- has a health check (an HTTP endpoint, or being alive) whose changes are logged, and which
  also proves that the port it names is held by the child's own session (read from /proc),
  so another hub answering on the same port never passes for ours;
- has its ports checked before anything starts: one taken port stops `neuron up` with one
  line naming the port, the service that needs it and, where /proc tells, what holds it.

SIGINT/SIGTERM at any moment (while Airflow's DB is migrated, while children start) stop
every child gracefully (SIGTERM, then SIGKILL after a grace period), the Airflow components
last-started first, and then any process they left behind. Every minute one line per
service says its state.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from kernel.daily_log import DailyLog
from kernel.errors import FatalError
from kernel.settings import Settings
from neuron import ports as proc_ports
from neuron.airflow_runner import DAGS_FOLDER, SQLITE_CONNECT_ARGS_PATH
from privacy.tls import certificate_paths

Health = Callable[[], bool]


@dataclass
class Service:
    """One long-running child of the group."""

    name: str
    argv: list[str]
    health: Health | None = None  # None: healthy while alive
    env: dict[str, str] = field(default_factory=dict)  # on top of the group's environment
    # (host, port) it listens on: free before start, held by its own session when healthy.
    listens: list[tuple[str, int]] = field(default_factory=list)
    # Further ports it may open later (a log server): only checked free before start.
    reserves: list[tuple[str, int]] = field(default_factory=list)


class Stopped(Exception):
    """SIGINT/SIGTERM arrived while `neuron up` was still preparing."""


def check_ports(services: list[Service]) -> None:
    """Refuse to start anything when a port a service needs is taken: one line for all."""
    taken = [
        f"{port} ({service.name}) is taken by {proc_ports.taken_by(port)}"
        for service in services
        for host, port in [*service.listens, *service.reserves]
        if not proc_ports.is_free(host, port)
    ]
    if taken:
        raise FatalError(f"nothing started: port {'; port '.join(taken)} — stop it or choose other ports")


def http_ok(url: str, timeout: float = 2.0, ca: Path | None = None) -> Health:
    """Healthy when `url` answers 2xx (over HTTPS, verified against `ca` when given)."""

    def check() -> bool:
        try:
            # Built at each probe: the certificate may be made after the plan is (`neuron init`).
            context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
            with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
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
        self.descendants: set[int] = set()  # seen in its tree: stopped too, even if they left its group

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def owns_its_ports(self) -> bool:
        """Whether every port it listens on is held by its own session (its pid is the sid)."""
        assert self.proc is not None
        return all(proc_ports.owned_by_session(port, self.proc.pid) for _, port in self.service.listens)


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
        summary_every: float = 60.0,
    ) -> None:
        self.children = [_Child(s) for s in services]
        self.env = env
        self.log_dir = log_dir
        self.out = out or sys.stdout
        self.backoff, self.stable_after, self.grace = backoff, stable_after, grace
        self.poll, self.health_every, self.summary_every = poll, health_every, summary_every
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
        log = DailyLog(self.log_dir / f"{service.name}.log")  # closed by the pump
        thread = threading.Thread(target=self._pump, args=(service.name, child.proc.stdout, log), daemon=True)
        thread.start()
        self._threads.append(thread)
        self.say(service.name, f"started (pid {child.proc.pid}): {' '.join(service.argv[:4])}")

    def _pump(self, name: str, stream: IO[str] | None, log: DailyLog) -> None:
        assert stream is not None
        with log:
            for line in stream:
                log.write(line)
                self.say(name, line)

    def start(self) -> None:
        """Start every service, in order (none once a stop was asked for)."""
        for child in self.children:
            if self._stop.is_set():
                return
            self._start(child)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self, *_: object) -> None:
        """Ask for a stop (a signal handler: it only sets a flag; the loops do the work)."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM ask for a stop from now on (from the main thread only)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.request_stop)

    def run_step(self, what: str, argv: list[str]) -> None:
        """A preparation step (migrating Airflow's DB …) that a stop interrupts, its whole group."""
        proc = subprocess.Popen(
            argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        while True:
            try:
                _, err = proc.communicate(timeout=self.poll)
                break
            except subprocess.TimeoutExpired:
                if self._stop.is_set():
                    _signal_group(proc, signal.SIGTERM)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(self.grace)
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait()
                    raise Stopped(what) from None
        if proc.returncode != 0:
            raise FatalError(f"{what} failed (exit {proc.returncode}):\n{err[-2000:]}")

    def summary(self) -> dict[str, str]:
        """One line per service with its state (and say them)."""
        now = time.monotonic()
        states = {}
        for child in self.children:
            if child.alive():
                assert child.proc is not None
                state = "healthy" if child.healthy else "starting" if child.healthy is None else "not healthy"
                state += f", pid {child.proc.pid}, up {_duration(now - child.started)}"
            elif self._stop.is_set():
                state = "stopped"
            else:
                state = f"down, restart in {max(0.0, child.next_start - now):.0f} s"
            states[child.service.name] = f"{state}, {child.restarts} restart(s)"
            self.say(child.service.name, f"state: {states[child.service.name]}")
        return states

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
            ok = (
                child.alive()
                and (child.service.health() if child.service.health else True)
                # Something answered; prove it is this child, not another hub on the same port.
                and child.owns_its_ports()
            )
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
        self.install_signal_handlers()
        last_health = last_summary = time.monotonic()
        while not self._stop.is_set():
            self.check_once()
            now = time.monotonic()
            if now - last_health >= self.health_every:
                self.check_health()
                last_health = now
            if now - last_summary >= self.summary_every:
                self.summary()
                last_summary = now
            self._stop.wait(self.poll)
        self.stop()

    def stop(self) -> None:
        """Stop every child: SIGTERM to its process group, SIGKILL after the grace period."""
        self._stop.set()
        running = [c for c in reversed(self.children) if c.alive()]
        for child in running:
            assert child.proc is not None
            child.descendants |= _descendants(child.proc.pid)
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
            # Children of the group (uvicorn or Celery workers) must not outlive it either,
            # nor those that moved to a group of their own.
            _signal_group(child.proc, signal.SIGKILL)
            for pid in child.descendants:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        for thread in self._threads:
            thread.join(timeout=2)


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _descendants(root: int) -> set[int]:
    """Every process below `root` now (by parent pid, from /proc; empty without /proc)."""
    children: dict[int, list[int]] = {}
    if not proc_ports.proc_available():
        return set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            if pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@dataclass
class AirflowPorts:
    """Where the Airflow components listen (loopback)."""

    api: int = 8080
    scheduler_health: int = 8974
    log_server: int = 8793

    @classmethod
    def free(cls) -> AirflowPorts:
        return cls(free_port(), free_port(), free_port())


AIRFLOW_ADMIN = "admin"
JWT_SECRET_CHARS = 86


def _write_private(path: Path, text: str) -> None:
    """Write a secret readable by its owner only (replacing any earlier one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


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
    # Airflow signs its JWTs with HS512, whose key PyJWT wants at least 64 bytes long (a
    # shorter one makes it warn, issue 17): 64 random bytes, 86 characters of base64url.
    if not secret_file.exists() or len(secret_file.read_text().strip()) < JWT_SECRET_CHARS:
        _write_private(secret_file, secrets.token_urlsafe(64))
    # The UI's simple auth manager: one `admin` account whose generated password is kept
    # (0600) in the state folder, instead of letting every local process in as admin.
    passwords = settings.state_path / "airflow-admin-password.json"
    if not passwords.exists():
        _write_private(passwords, json.dumps({AIRFLOW_ADMIN: secrets.token_urlsafe(18)}))
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
        # Sign-in required (issue 17): `admin` with the password in the state folder. A
        # deployment past one machine sets a real auth manager.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": SQLITE_CONNECT_ARGS_PATH,
    }
    if not env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite"):
        del defaults["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"]  # PostgreSQL needs no busy timeout
    return {**defaults, **env, "AIRFLOW_HOME": str(home)}


def airflow_steps(unpause: bool) -> list[tuple[str, list[str]]]:
    """What runs before any component: migrate the metadata DB, create the hub's pools and,
    with `unpause`, unpause every DAG already known (a demo's batch day made them paused)."""
    steps = [
        ("airflow db migrate", [sys.executable, "-m", "airflow", "db", "migrate"]),
        (
            "creating the duckdb_writer pool",
            [sys.executable, "-c", "from neuron.airflow_runner import create_pools; create_pools()"],
        ),
    ]
    if unpause:
        code = "from neuron.airflow_runner import unpause_dags; unpause_dags()"
        steps.append(("unpausing the DAGs", [sys.executable, "-c", code]))
    return steps


def prepare_airflow(env: dict[str, str], unpause: bool = False) -> None:
    """Migrate the metadata DB and create the hub's pools (before any component starts)."""
    for what, argv in airflow_steps(unpause):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, errors="replace")
        if done.returncode != 0:
            raise FatalError(f"{what} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")


def airflow_services(ports: AirflowPorts) -> list[Service]:
    """Airflow 3's three components on one machine."""
    airflow = [sys.executable, "-m", "airflow"]
    # The components that fork task processes start with the task stack imported (neuron/airflow_warm.py).
    warm = [sys.executable, "-m", "neuron.airflow_warm"]
    api_health = http_ok(f"http://127.0.0.1:{ports.api}/api/v2/monitor/health")
    local = "127.0.0.1"
    return [
        Service(
            "api-server",
            [*airflow, "api-server", "--host", local, "--port", str(ports.api)],
            api_health,
            listens=[(local, ports.api)],
        ),
        Service(
            "scheduler",
            [*warm, "scheduler"],
            http_ok(f"http://{local}:{ports.scheduler_health}/health"),
            listens=[(local, ports.scheduler_health)],
            # LocalExecutor: the scheduler serves the task logs once a task ran (any address).
            reserves=[("0.0.0.0", ports.log_server)],
        ),
        Service("dag-processor", [*airflow, "dag-processor"]),
    ]


def celery_workers(count: int, concurrency: int = 2) -> list[Service]:
    """Celery workers of this machine (CeleryExecutor; other machines run the same command)."""
    airflow = [sys.executable, "-m", "neuron.airflow_warm", "celery", "worker"]  # task stack pre-imported
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
    airflow: bool = True,
) -> list[Service]:
    """Every service of the hub: Airflow (and Celery workers), the export API, the collector,
    the relay and, when consumers' brokers are configured, the NGSI-LD push."""
    neuron = [sys.executable, "-m", "neuron.cli"]
    services = [*airflow_services(ports), *celery_workers(workers)] if airflow else []
    if serve:
        host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::", "") else settings.api.host
        # The probe trusts the hub's own certificate (made by `neuron init`; `serve` refuses without it).
        scheme, ca = ("https", certificate_paths(settings).certfile) if settings.api.tls else ("http", None)
        api = f"{scheme}://{host}:{settings.api.port}/healthz"
        # The console has its own listener (issue 17): both ports must be free, and held by `serve`.
        listens = [(settings.api.host, settings.api.port), (settings.api.console_host, settings.api.console_port)]
        services.append(Service("export-api", [*neuron, "serve"], http_ok(api, ca=ca), listens=listens))
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
        inbox_health = http_ok(f"http://{inbox.host}:{inbox.port}/healthz")
        services.append(Service("inbox", [*neuron, "inbox"], inbox_health, listens=[(inbox.host, inbox.port)]))
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
    airflow: bool = True,
    unpause: bool = False,
    summary_every: float = 60.0,
) -> None:
    """Check the ports, prepare Airflow, start every service and supervise until SIGINT/SIGTERM
    (which may come at any moment: nothing is left running or listening after it)."""
    ports = ports or AirflowPorts()
    env = airflow_env(settings, ports) if airflow else dict(os.environ)
    services = [*hub_services(settings, ports, collect, serve, workers, relay, airflow), *(extra or [])]
    supervisor = Supervisor(services, env, settings.state_path / "logs", out, summary_every=summary_every)
    check_ports(services)
    supervisor.install_signal_handlers()
    try:
        if airflow:
            supervisor.say("neuron-up", f"preparing Airflow in {env['AIRFLOW_HOME']}")
            for what, argv in airflow_steps(unpause):
                supervisor.run_step(what, argv)
        supervisor.start()
        if supervisor.wait_healthy(timeout=180):
            where = f"; Airflow UI on http://127.0.0.1:{ports.api}" if airflow else ""
            supervisor.say("neuron-up", f"all healthy{where}; Ctrl-C to stop")
        elif not supervisor.stopping:
            supervisor.say("neuron-up", "not all healthy after 180 s; still supervising (see the lines above)")
        supervisor.run()
    except Stopped:
        pass
    finally:
        supervisor.stop()
    supervisor.say("neuron-up", "stopped")
