"""A private MQTT broker for the simulated devices: mosquitto on a free loopback port, or amqtt.

Never the machine's shared 1883. Mosquitto is configured the way a community broker
must be for the collector's guarantees: persistence on (sessions and their queued
messages survive a broker restart), and no cap on the messages queued for an offline
persistent session (mosquitto's default of 1,000 silently drops the rest while the
collector is down). amqtt (pure Python, MQTT 3.1.1 only) stands in where mosquitto is
not installed.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def find_mosquitto() -> str | None:
    """The mosquitto executable, if installed."""
    found = shutil.which("mosquitto")
    return found or next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


class Broker:
    """A broker process of our own: start, stop, restart on the same port and state."""

    def __init__(self, workdir: Path, port: int | None = None, kind: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.mosquitto = find_mosquitto()
        self.kind = kind or os.environ.get("NEURON_TEST_BROKER") or ("mosquitto" if self.mosquitto else "amqtt")
        self.protocol = "5" if self.kind == "mosquitto" else "3.1.1"
        # amqtt 0.12 forgets a client's session when it disconnects (session present: 0), so
        # what is published while the collector is away is not kept for it.
        self.keeps_sessions = self.kind == "mosquitto"
        self._process: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        if self.kind == "mosquitto":
            if self.mosquitto is None:
                raise RuntimeError("mosquitto is not installed")
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} {self.host}\n"
                "allow_anonymous true\n"
                # Started as root, mosquitto would switch to its own user, who cannot write here.
                f"user {getpass.getuser()}\n"
                "persistence true\n"
                f"persistence_location {self.workdir}/\n"
                "max_queued_messages 0\n"
                "max_inflight_messages 0\n"
                "log_type error\n",
                encoding="utf-8",
            )
            return [self.mosquitto, "-c", str(conf)]
        conf = self.workdir / "amqtt.yaml"
        conf.write_text(
            f"listeners:\n  default:\n    type: tcp\n    bind: {self.host}:{self.port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n",
            encoding="utf-8",
        )
        return [str(Path(sys.executable).with_name("amqtt")), "-c", str(conf)]

    def start(self, timeout: float = 15.0) -> Broker:
        """Start the broker and wait until it accepts connections."""
        log = open(self.workdir / f"{self.kind}.log", "ab")  # noqa: SIM115 - owned by the process
        # Same process group as the caller: killing a test run's group takes its broker too.
        self._process = subprocess.Popen(self._command(), stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start (see {self.workdir})")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop the broker gracefully (mosquitto saves its persistent state on SIGTERM)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start again on the same port: every client is disconnected meanwhile."""
        self.stop()
        self.start()

    def __enter__(self) -> Broker:
        return self.start() if self._process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
