"""`neuron up` that can be trusted: ports checked before anything starts, health that proves
the answering process is the child's own, a stop at any moment that leaves nothing running
or listening, a state line per service. Small fake services; only the last test starts Airflow.
"""

from __future__ import annotations

import http.server
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kernel.errors import FatalError
from neuron import ports as proc_ports
from neuron.up import Service, Stopped, Supervisor, check_ports, free_port, http_ok

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]


def _until(condition: Callable[[], bool], timeout: float = 60) -> bool:
    # A bound only against hanging forever; the assertions are about what happened.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (its parent has not reaped it yet).
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _http_child(port: int) -> list[str]:
    """A child that serves 200 on /healthz at `port` itself."""
    code = (
        "import http.server\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
        "    def log_message(self, *a): pass\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    return [PY, "-c", code]


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def impostor() -> Iterator[int]:
    """Another "hub" answering 200 on a port: this test process, not a child."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_a_taken_port_stops_everything_with_one_line_naming_it_and_its_holder(impostor: int) -> None:
    free = free_port()
    services = [
        Service("export-api", ["true"], listens=[("127.0.0.1", free)]),
        Service("api-server", ["true"], listens=[("127.0.0.1", impostor)]),
    ]
    with pytest.raises(FatalError) as refused:
        check_ports(services)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("nothing started")
    assert f"port {impostor} (api-server) is taken by pid {os.getpid()} (" in message
    assert str(free) not in message
    check_ports(services[:1])  # the free one alone passes


def test_health_is_only_ours_when_our_own_child_holds_the_port(tmp_path: Path, impostor: int) -> None:
    out = io.StringIO()
    own = free_port()
    # "fooled" answers nothing itself: the impostor answers on its port, as another hub did.
    fooled = Service("fooled", [PY, "-c", "import time; time.sleep(60)"], http_ok(f"http://127.0.0.1:{impostor}/"))
    fooled.listens = [("127.0.0.1", impostor)]
    real = Service("real", _http_child(own), http_ok(f"http://127.0.0.1:{own}/healthz"), listens=[("127.0.0.1", own)])
    sup = Supervisor([fooled, real], dict(os.environ), tmp_path / "logs", out, poll=0.05, grace=2)
    sup.start()
    try:
        assert http_ok(f"http://127.0.0.1:{impostor}/")()  # something does answer there
        assert _until(lambda: sup.check_health()["real"])
        assert sup.check_health() == {"fooled": False, "real": True}
    finally:
        sup.stop()
    assert not proc_ports.is_listening(own)


def test_every_service_says_its_state_every_period(tmp_path: Path) -> None:
    out = io.StringIO()
    sleeper = Service("sleeper", [PY, "-c", "import time; time.sleep(60)"])
    crash = Service("crasher", [PY, "-c", "raise SystemExit(2)"])
    sup = Supervisor(
        [sleeper, crash], dict(os.environ), tmp_path / "logs", out, poll=0.02, summary_every=0.1, backoff=(30, 60)
    )
    runner = threading.Thread(target=sup.run)
    sup.start()
    runner.start()
    try:
        assert _until(lambda: "crasher | state: down, restart in" in out.getvalue())
        assert _until(
            lambda: "sleeper | state: healthy" in out.getvalue() or "sleeper | state: starting" in out.getvalue()
        )
    finally:
        sup.request_stop()
        runner.join(30)
    states = sup.summary()
    assert states["sleeper"].startswith("stopped") and states["crasher"].startswith("stopped")


def test_a_stop_interrupts_a_preparation_step_and_its_group(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    # A step that starts a grandchild and waits: both must be gone after the stop.
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(marker)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    sup = Supervisor([], dict(os.environ), tmp_path / "logs", io.StringIO(), poll=0.05, grace=2)

    def stop_once_started() -> None:
        _until(marker.exists)
        sup.request_stop()

    threading.Thread(target=stop_once_started, daemon=True).start()
    with pytest.raises(Stopped):
        sup.run_step("a long migration", [PY, "-c", code])
    assert _until(lambda: not _alive(int(marker.read_text())), timeout=10)


def _up(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, "-m", "neuron.cli", "up", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NEURON_HOME": str(tmp_path / "hub"), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], needle: str, seen: list[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} never came:\n{''.join(seen)}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_right_after_start_leaves_no_child_and_nothing_listening(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    proc = _up(
        tmp_path,
        "--no-airflow",
        "--no-collect",
        "--no-relay",
        env={"NEURON_API__PORT": str(port), "NEURON_API__CONSOLE_PORT": str(free_port())},
    )
    seen: list[str] = []
    line = _read_until(proc, "export-api | started (pid ", seen)
    child = int(line.split("(pid ")[1].split(")")[0])
    proc.send_signal(sig)  # early: the export API is still importing, not yet listening
    assert proc.stdout is not None
    seen.extend(proc.stdout)
    assert proc.wait(60) == 0, "".join(seen)
    assert "neuron-up | stopped" in "".join(seen)
    assert not _alive(child)
    assert not proc_ports.is_listening(port)


def test_up_refuses_a_taken_port_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = _up(
            tmp_path,
            "--no-airflow",
            "--no-collect",
            "--no-relay",
            env={"NEURON_API__PORT": str(port), "NEURON_API__CONSOLE_PORT": str(free_port())},
        )
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {port} (export-api) is taken by pid {os.getpid()} (" in out
    assert "| started" not in out and "Traceback" not in out


@pytest.mark.slow
def test_ctrl_c_while_airflow_starts_leaves_nothing_of_it(tmp_path: Path) -> None:
    api = free_port()
    proc = _up(tmp_path, "--no-serve", "--no-collect", "--no-relay", "--airflow-port", str(api))
    seen: list[str] = []
    _read_until(proc, "dag-processor | started (pid ", seen)
    pids = [int(line.split("(pid ")[1].split(")")[0]) for line in seen if "| started (pid " in line]
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None
    seen.extend(proc.stdout)
    assert proc.wait(120) == 0, "".join(seen)
    assert len(pids) == 3 and not any(_alive(p) for p in pids)
    assert not proc_ports.is_listening(api)


@pytest.mark.slow
def test_unpause_unpauses_the_dags_a_batch_day_left_paused(tmp_path: Path) -> None:
    from kernel.settings import load_settings
    from neuron.up import AirflowPorts, airflow_env, airflow_steps

    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEURON_"))}
    base |= {"NEURON_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env = airflow_env(load_settings(home=tmp_path), AirflowPorts.free(), base=base)
    sup = Supervisor([], env, tmp_path / "logs", io.StringIO())
    steps = dict(airflow_steps(unpause=True))
    sup.run_step("migrate", steps["airflow db migrate"])
    session = (
        "from airflow.utils.session import create_session\n"
        "from airflow.models.dag import DagModel\n"
        "from airflow.models.dagbundle import DagBundleModel\n"
        "with create_session() as s:\n"
    )
    seed = session + (
        "    s.add(DagBundleModel(name='dags-folder')); s.flush()\n"
        "    for n in range(3): s.add(DagModel(dag_id=f'dag{n}', bundle_name='dags-folder', is_paused=True,\n"
        "        max_active_tasks=1, max_consecutive_failed_dag_runs=0, has_task_concurrency_limits=False))\n"
    )
    sup.run_step("seed paused DAGs", [PY, "-c", seed])
    sup.run_step("unpause", steps["unpausing the DAGs"])
    count = session + "    print(sum(d.is_paused for d in s.query(DagModel)), s.query(DagModel).count())\n"
    done = subprocess.run([PY, "-c", count], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == ["0", "3"]
