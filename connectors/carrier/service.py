"""`neuron inbox` wired together: the durable store, the HTTP receiver, the processor and the alarm
publisher, in one process. `InboxService` runs it in a thread (tests, benchmarks); `run_inbox` in the
foreground until SIGINT/SIGTERM (uvicorn's handlers), finishing in-flight pushes before it stops."""

from __future__ import annotations

import gc
import logging
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

import uvicorn

from connectors.carrier.alarms_out import AlarmPublisher
from connectors.carrier.devices import DeviceRegister
from connectors.carrier.processor import Processor
from connectors.carrier.receiver import InboxApp
from connectors.carrier.settings import InboxSettings
from connectors.carrier.store import InboxStore
from connectors.mqtt import landing_root, mqtt_settings
from neuron.errors import ConfigError
from neuron.settings import Settings

log = logging.getLogger(__name__)


def inbox_settings(settings: Settings) -> InboxSettings:
    found = getattr(settings, "inbox", None)
    if isinstance(found, InboxSettings):
        return found
    return InboxSettings.model_validate(found) if isinstance(found, dict) else InboxSettings()


class InboxService:
    """One inbox: bound on start (port 0 → a free port), stopped gracefully by `stop`."""

    def __init__(
        self, settings: Settings, publish_alarms: bool = True, process: bool = True, port: int | None = None
    ) -> None:
        self.settings, self.process = settings, process
        self.config = inbox_settings(settings)
        if self.config.onenet_token.get_secret_value() == "":
            log.warning("carrier inbox: no [inbox].onenet_token: every OneNET push will be refused")
        from privacy.keys import HubKeys  # the connectors otherwise stay clear of the privacy package

        keys = HubKeys.load(settings)
        state = settings.state_path
        self.store = InboxStore(state / self.config.db_file, keys, self.config.sqlite_synchronous, self.config.writers)
        self.register = DeviceRegister.load(keys, state / self.config.devices_file)
        if not len(self.register):
            log.warning("carrier inbox: the device register is empty (`neuron inbox devices FILE.csv`)")
        self.processor = Processor(
            self.config, self.store, self.register, keys, landing_root(settings), settings.community_id,
            mqtt_settings(settings).topic_prefix,
        )  # fmt: skip
        self.publisher = (
            AlarmPublisher(
                self.store,
                mqtt_settings(settings),
                f"neuron-inbox-{settings.community_id}",
                self.processor.outbox_ready,
            )
            if publish_alarms
            else None
        )
        self.app = InboxApp(self.config, self.store, self.health)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((self.config.host, self.config.port if port is None else port))
        except OSError as exc:
            raise ConfigError(
                f"carrier inbox: cannot listen on {self.config.host}:{self.config.port} ({exc})"
            ) from None
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{self.config.host}:{self.port}"
        uv = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on", http="httptools",
                            timeout_keep_alive=30)  # fmt: skip
        self.server = uvicorn.Server(uv)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def health(self) -> dict[str, Any]:
        return {"processor": asdict(self.processor.stats), "devices": len(self.register),
                "alarms_published": self.publisher.published if self.publisher else 0}  # fmt: skip

    def _background(self) -> None:
        self._threads = []
        if self.process:  # off only where a test drives the processor step by step
            self._threads.append(
                threading.Thread(target=self.processor.run, args=(self._stop,), name="inbox-processor")
            )
        if self.publisher is not None:
            self._threads.append(threading.Thread(target=self.publisher.run, args=(self._stop,), name="inbox-alarms"))
        for t in self._threads:
            t.start()

    def start(self) -> InboxService:
        """Serve in a background thread (no signal handlers); returns once it accepts connections."""
        self._background()
        self.server.config.install_signal_handlers = False  # type: ignore[attr-defined]
        thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="inbox-http")
        thread.start()
        self._threads.append(thread)
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def run(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM. Uvicorn serves from a thread, so these signals
        are ours: uvicorn would re-raise them once stopped, ending the process before the last landing."""
        self._background()
        thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="inbox-http")
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, lambda *_: setattr(self.server, "should_exit", True))
        log.info("carrier inbox: listening on %s", self.url)
        try:
            thread.start()
            while thread.is_alive():
                thread.join(0.5)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self._finish()

    def stop(self) -> None:
        self.server.should_exit = True
        self._finish()

    def _finish(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=30)
        self.store.close()
        self.processor.close()
        self.sock.close()


# Each push crosses threads (event loop → writer → event loop); with CPython's default 5 ms switch
# interval each hand-off under load can cost up to 5 ms (the relay's finding, relay/run.py).
SWITCH_INTERVAL_SECONDS = 0.0005


def run_inbox(settings: Settings) -> dict[str, Any]:
    """`neuron inbox`: serve until stopped; returns the run's counts."""
    service = InboxService(settings)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)  # the inbox's own process
    # Start-up objects live as long as the process: frozen, a full cyclic collection under load no
    # longer walks them while holding the GIL (tens of ms in the relay's measurements).
    gc.collect()
    gc.freeze()
    service.run()
    return {"receiver": asdict(service.app.stats), **service.health()}
