"""`neuron inbox` wired together: the durable store and the HTTP receiver in one process, the
processor and the alarm publisher beside them.

`run_inbox` (the command) runs the processor and publisher in a worker process of their own: they
decode, encrypt and write under load, and in the receiver's process they would hold the GIL the
carriers' answers wait for. The worker exits when the inbox does (asked, or found orphaned after a
kill -9); a lock keeps a second processor off the same inbox meanwhile. `InboxService.start` runs
everything in threads of one process (tests, benchmarks of parts), where a test may also drive the
processor itself (`process=False`).
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

import uvicorn

from connectors.carrier.alarms_out import AlarmPublisher
from connectors.carrier.ctwing_api import CtwingHistory
from connectors.carrier.devices import DeviceRegister
from connectors.carrier.processor import Processor, write_watermark
from connectors.carrier.receiver import InboxApp
from connectors.carrier.store import InboxFiles, InboxStore, KeySource, Sealer, connect
from connectors.mqtt import landing_root
from kernel.errors import ConfigError
from kernel.inbox_settings import InboxSettings
from kernel.settings import Settings

log = logging.getLogger(__name__)

# Each push crosses threads (event loop → writer → event loop); with CPython's default 5 ms switch
# interval each hand-off under load can cost up to 5 ms (the relay's finding, relay/run.py).
SWITCH_INTERVAL_SECONDS = 0.0005
STATS_FILE = "processor-stats.json"


def inbox_settings(settings: Settings) -> InboxSettings:
    return settings.inbox


def _keys(settings: Settings) -> KeySource:
    from privacy.keys import HubKeys  # the connectors otherwise stay clear of the privacy package

    return HubKeys.load(settings)


def _processor(settings: Settings, files: InboxFiles, keys: KeySource, safe_through: Any) -> Processor:
    config = inbox_settings(settings)
    register = DeviceRegister.load(keys, settings.state_path / config.devices_file)  # type: ignore[arg-type]
    if not len(register):
        log.warning("carrier inbox: the device register is empty (`neuron inbox devices FILE.csv`)")
    prefix = settings.mqtt.topic_prefix
    history = None
    if config.ctwing_api_url:  # re-fetch what CTWing's cool-down kept back (connectors/carrier/ctwing_api.py)
        history = CtwingHistory(config.ctwing_api_url, config.ctwing_app_key,
                                config.ctwing_app_secret.get_secret_value(),
                                config.ctwing_master_key.get_secret_value())  # fmt: skip
    return Processor(config, files, register, keys, landing_root(settings), settings.community_id, prefix,
                     safe_through=safe_through, history=history)  # fmt: skip


def _publisher(settings: Settings, files: InboxFiles, keys: KeySource, ready: threading.Event) -> AlarmPublisher:
    client_id = f"neuron-inbox-{settings.community_id}"
    return AlarmPublisher(files, Sealer(keys), settings.mqtt, client_id, ready)


class InboxService:
    """One inbox: bound on start (port 0 → a free port), stopped gracefully by `stop`."""

    def __init__(
        self, settings: Settings, publish_alarms: bool = True, process: bool = True, port: int | None = None
    ) -> None:
        self.settings, self.process, self.publish_alarms = settings, process, publish_alarms
        self.config = inbox_settings(settings)
        if self.config.onenet_token.get_secret_value() == "":
            log.warning("carrier inbox: no [inbox].onenet_token: every OneNET push will be refused")
        if self.config.ctwing_path_secret.get_secret_value() == "" and self.config.host not in ("127.0.0.1", "::1"):
            # CTWing signs nothing: on a reachable address, anyone who knows the path can push.
            log.warning("carrier inbox: no [inbox].ctwing_path_secret: the CTWing URL is guessable")
        self.keys = _keys(settings)
        self.store = InboxStore(
            settings.state_path / self.config.db_file, self.keys, self.config.sqlite_synchronous, self.config.writers
        )
        self._processor: Processor | None = None
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
        self._worker: multiprocessing.process.BaseProcess | None = None
        self._worker_stop: ProcessEvent | None = None

    @property
    def processor(self) -> Processor:
        """The processor of an inbox started in threads (`start`)."""
        if self._processor is None:
            raise RuntimeError("the processor runs in the worker process")
        return self._processor

    def health(self) -> dict[str, Any]:
        """Counts for /healthz (no identifiers): the processor's, and the pushes not yet processed."""
        if self._processor is not None:
            stats = asdict(self._processor.stats)
        else:
            try:
                stats = json.loads((self.store.state_path.parent / STATS_FILE).read_text(encoding="utf-8"))
            except (FileNotFoundError, ValueError):
                stats = {}
        return {"processor": stats, "backlog": backlog(self.store.files)}

    # --- threads of this process (tests) ------------------------------------------------------

    def start(self) -> InboxService:
        """Serve in a background thread (no signal handlers); returns once it accepts connections."""
        processor = self._processor = _processor(self.settings, self.store.files, self.keys, self.store.safe_through_us)
        if self.process:  # off only where a test drives the processor step by step
            self._threads.append(threading.Thread(target=processor.run, args=(self._stop,), name="inbox-processor"))
        if self.publish_alarms:
            publisher = _publisher(self.settings, self.store.files, self.keys, processor.outbox_ready)
            self._threads.append(threading.Thread(target=publisher.run, args=(self._stop,), name="inbox-alarms"))
        self.server.config.install_signal_handlers = False  # type: ignore[attr-defined]
        http = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="inbox-http")
        self._threads.append(http)
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._finish()

    # --- `neuron inbox` -----------------------------------------------------------------------

    def run(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM, the processor in a worker process. Uvicorn
        serves from a thread, so these signals are ours: uvicorn would re-raise them once stopped,
        ending the process before the worker's last landing."""
        spawn = multiprocessing.get_context("spawn")
        self._worker_stop = spawn.Event()
        self._worker = spawn.Process(
            target=worker_main, args=(self.settings, os.getpid(), self._worker_stop, self.publish_alarms),
            name="inbox-worker", daemon=False,
        )  # fmt: skip
        self._worker.start()
        watermarks = threading.Thread(target=self._watermarks, name="inbox-watermark")
        http = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="inbox-http")
        self._threads = [watermarks, http]
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, lambda *_: setattr(self.server, "should_exit", True))
        log.info("carrier inbox: listening on %s", self.url)
        try:
            for t in self._threads:
                t.start()
            while http.is_alive():
                http.join(0.5)
                if not self._worker.is_alive() and not self.server.should_exit:
                    log.error("carrier inbox: the worker process ended (exit code %s); stopping", self._worker.exitcode)
                    self.server.should_exit = True
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self._finish()

    def _watermarks(self) -> None:
        """The landing watermark, written here where the writers' in-flight stamps are known."""
        root, interval = landing_root(self.settings), self.config.land_interval_ms / 1000
        while not self._stop.wait(interval):
            try:
                write_watermark(self.store.files, root, self.store.safe_through_us())
            except Exception as exc:  # a missed watermark only delays windows
                log.warning("carrier inbox: could not write the landing watermark (%s)", type(exc).__name__)

    def _finish(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=30)
        self.store.close()  # every push in flight is committed (or refused) before the worker's last step
        if self._worker is not None and self._worker_stop is not None:
            self._worker_stop.set()
            self._worker.join(timeout=60)
            write_watermark(self.store.files, landing_root(self.settings), self.store.safe_through_us())
        if self._processor is not None:
            self._processor.close()
        self.sock.close()


def backlog(files: InboxFiles) -> int:
    """Pushes kept but not yet processed."""
    state = connect(files.state_path, files.synchronous)
    try:
        progress = dict(state.execute("SELECT name, value FROM progress").fetchall())
    finally:
        state.close()
    total = 0
    for shard, path in enumerate(files.paths):
        conn = connect(path, files.synchronous)
        try:
            seen = progress.get(Processor._processed(shard), 0)
            total += conn.execute("SELECT count(*) FROM pushes WHERE seq > ?", (seen,)).fetchone()[0]
        finally:
            conn.close()
    return int(total)


def worker_main(settings: Settings, parent_pid: int, stop: ProcessEvent, publish_alarms: bool) -> None:
    """The inbox's worker process: the processor and the alarm publisher, until asked to stop or
    orphaned (the receiver was killed: a restarted inbox starts a worker of its own)."""
    from kernel.logging import setup_logging

    setup_logging()
    # Ctrl-C and `neuron up`'s SIGTERM reach the whole process group: the receiver decides when this
    # worker stops (after its last pushes are committed), or it notices it was orphaned.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    config = inbox_settings(settings)
    files = InboxFiles.at(settings.state_path / config.db_file, config.sqlite_synchronous, config.writers)
    keys = _keys(settings)
    processor = _processor(settings, files, keys, None)
    stats_path = files.state_path.parent / STATS_FILE

    def publish_stats() -> None:
        tmp = stats_path.with_name(f".{STATS_FILE}.tmp")
        tmp.write_text(json.dumps(asdict(processor.stats)), encoding="utf-8")
        os.replace(tmp, stats_path)

    processor.on_landed = publish_stats  # type: ignore[method-assign]
    local = threading.Event()
    threads = [threading.Thread(target=processor.run, args=(local,), name="inbox-processor")]
    if publish_alarms:
        publisher = _publisher(settings, files, keys, processor.outbox_ready)
        threads.append(threading.Thread(target=publisher.run, args=(local,), name="inbox-alarms"))
    for t in threads:
        t.start()
    while not local.is_set():
        if stop.wait(0.2) or os.getppid() != parent_pid:
            local.set()
    for t in threads:
        t.join(timeout=60)
    publish_stats()
    processor.close()


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
