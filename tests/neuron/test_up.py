"""`neuron up`'s supervisor with real child processes: prefixed logs, health checks,
restart on crash with a doubling backoff, graceful stop (and a kill for a child that
ignores SIGTERM). Airflow itself under `neuron up` is tested in tests/dags/test_scheduler.py.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from api.app import create_app
from kernel.settings import load_settings
from neuron.up import AirflowPorts, Service, Supervisor, airflow_env, http_ok, hub_services
from privacy.keys import init_keys
from privacy.tls import ensure_certificate
from tests.api.hub import ServerThread
from tests.conftest import make_settings
from warehouse.migrations import migrate

PY = sys.executable


def _until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    # A bound only against hanging forever; the assertions are about what happened.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / f"{name}.py"
    path.write_text(body)
    return [PY, str(path)]


def test_children_log_with_their_name_are_checked_and_stop_gracefully(tmp_path: Path) -> None:
    out = io.StringIO()
    stopped = tmp_path / "stopped-cleanly"
    graceful = _script(
        tmp_path,
        "graceful",
        "import signal, sys, time\n"
        f"def bye(*_): open({str(stopped)!r}, 'w').write('yes'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.1)\n",
    )
    stubborn = _script(
        tmp_path,
        "stubborn",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ignoring', flush=True)\n"
        "while True: time.sleep(0.1)\n",
    )
    flag = tmp_path / "healthy"
    sup = Supervisor(
        [Service("graceful", graceful, health=flag.exists), Service("stubborn", stubborn)],
        dict(os.environ),
        tmp_path / "logs",
        out,
        grace=1.0,
        poll=0.05,
    )
    sup.start()
    assert _until(lambda: "ready" in out.getvalue() and "ignoring" in out.getvalue())
    assert sup.check_health() == {"graceful": False, "stubborn": True}
    flag.touch()
    assert sup.wait_healthy(timeout=5)
    sup.stop()
    text = out.getvalue()
    assert "      graceful | ready" in text and "      stubborn | ignoring" in text
    assert "graceful | healthy" in text and "stubborn | still running after 1 s: killed" in text
    assert stopped.read_text() == "yes"  # SIGTERM reached it and it finished its own way
    assert (tmp_path / "logs" / "graceful.log").read_text().startswith("ready")
    assert all(c.proc is not None and c.proc.poll() is not None for c in sup.children)


def test_a_crashing_child_is_restarted_with_a_doubling_backoff(tmp_path: Path) -> None:
    out = io.StringIO()
    crash = _script(tmp_path, "crash", "print('up', flush=True)\nraise SystemExit(3)\n")
    sup = Supervisor([Service("flaky", crash)], dict(os.environ), tmp_path / "logs", out, backoff=(0.1, 0.4), poll=0.02)
    sup.start()
    child = sup.children[0]

    def crashed_and_restarted(times: int) -> Callable[[], bool]:
        def check() -> bool:
            sup.check_once()
            return child.restarts >= times

        return check

    assert _until(crashed_and_restarted(4))
    sup.stop()
    delays = [line.split("restart in ")[1] for line in out.getvalue().splitlines() if "restart in" in line]
    # Backoff doubles from 0.1 s and is capped at 0.4 s; exit codes are reported.
    assert delays[:4] == ["0.1 s", "0.2 s", "0.4 s", "0.4 s"]
    assert "exited with 3" in out.getvalue()


def test_health_over_http(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    migrate(settings.control_url)
    with ServerThread(create_app(settings)) as server:
        assert http_ok(f"{server.url}/healthz")()
    assert not http_ok(f"{server.url}/healthz", timeout=0.5)()


def test_the_hub_group_is_airflow_then_the_api_and_collector(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    ensure_certificate(settings)  # the export API's health is checked over HTTPS
    ports = AirflowPorts(api=18080, scheduler_health=18974, log_server=18793)
    names = [s.name for s in hub_services(settings, ports, workers=2)]
    assert names[:5] == ["api-server", "scheduler", "dag-processor", "celery-worker-1", "celery-worker-2"]
    assert {"export-api", "collector"} <= set(names)
    env = airflow_env(settings, ports, base={})
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    # A deployment's own choice wins (CeleryExecutor, PostgreSQL, …); the JWT secret is kept.
    again = airflow_env(settings, ports, base={"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"})
    assert again["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert again["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert (Path(env["AIRFLOW_HOME"]) / "neuron-jwt-secret").stat().st_mode & 0o777 == 0o600


def test_airflow_asks_for_a_password_and_gets_a_long_enough_jwt_secret(tmp_path: Path) -> None:
    """Issue 17: not every local process an admin; a JWT secret PyJWT does not warn about."""
    settings = load_settings(home=tmp_path)
    env = airflow_env(settings, AirflowPorts(api=18080, scheduler_health=18974, log_server=18793), base={})
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert passwords.parent == settings.state_path and passwords.stat().st_mode & 0o777 == 0o600
    assert len(json.loads(passwords.read_text())["admin"]) >= 20
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"].encode()) >= 64  # HS512's key length
