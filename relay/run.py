"""Running the relay: as `neuron relay` (until SIGTERM/SIGINT) or in a background thread.

python -m relay.run     # the relay with settings from the environment (NEURON_*)
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import sys
import threading

from kernel.background import BackgroundService
from kernel.logging import batch_log_lines, flush_logs
from kernel.relay_settings import RelaySettings
from kernel.settings import Settings
from relay.service import Clock, Relay, RelayStats

# The relay hands each alarm across threads (network → worker → publisher → network); with
# CPython's default 5 ms switch interval every hand-off under load can cost up to 5 ms.
SWITCH_INTERVAL_SECONDS = 0.0005


def run_relay(
    settings: Settings,
    stop_event: threading.Event | None = None,
    config: RelaySettings | None = None,
    as_shard: bool = False,
) -> RelayStats:
    """Run the relay until `stop_event` is set (or, without one, until SIGTERM/SIGINT); with
    `shards` > 1, one process per shard, supervised by this one (`as_shard`: this is one of them)."""
    config = config or settings.relay
    stop = stop_event or threading.Event()
    if stop_event is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    if config.shards > 1 and not as_shard:
        return _run_shards(settings, config, stop)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)  # the relay's own process (`neuron relay`)
    relay = Relay(settings, config)
    # Everything imported and built so far lives as long as the process. Frozen, the cyclic
    # collector no longer walks it: a full collection under load walked ~100,000 start-up
    # objects and held the GIL 27-63 ms, the relay's largest latency spikes (bench/RESULTS.md).
    gc.collect()
    gc.freeze()
    return relay.run(stop)


def lean_logging() -> None:
    """In the relay's own process: skip what log records collect and the hub's format never shows
    (the caller's file and line, thread and process names), as the logging HOWTO's "Optimization"
    suggests: the relay logs a line for every state change, hundreds a second under load."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    batch_log_lines()  # written once per group of alarms (the worker calls flush_logs)


def _shard_main(settings: Settings, config: RelaySettings) -> None:
    """A shard process: the relay for its share of the devices, until SIGTERM."""
    from kernel.logging import setup_logging

    setup_logging()
    lean_logging()
    run_relay(settings, config=config, as_shard=True)


def _run_shards(settings: Settings, config: RelaySettings, stop: threading.Event) -> RelayStats:
    """Start a process per shard (each its own GIL: a core each), stop them all on `stop`, and
    stop them all if one dies (the service manager restarts the relay; nothing acknowledged is lost)."""
    context = multiprocessing.get_context("spawn")
    shards = [
        context.Process(
            target=_shard_main,
            args=(settings, config.model_copy(update={"shard": k})),
            name=f"neuron-relay-shard-{k}",
        )
        for k in range(config.shards)
    ]
    for process in shards:
        process.start()
    failed = False
    while not stop.is_set() and not failed:
        stop.wait(0.5)
        flush_logs()
        failed = any(p.exitcode is not None for p in shards)
    for process in shards:
        if process.is_alive():
            process.terminate()  # SIGTERM: the shard drains its in-flight work
    for process in shards:
        process.join(config.drain_seconds + 30)
    if failed:
        raise RuntimeError("relay: a shard stopped unexpectedly; all shards stopped")
    return RelayStats()


class BackgroundRelay(BackgroundService[RelayStats]):
    """The relay in a daemon thread of this process (tests, benchmark, demo)."""

    def __init__(self, settings: Settings, config: RelaySettings | None = None, clock: Clock | None = None) -> None:
        self.relay = Relay(settings, config, clock)
        super().__init__(self.relay, "relay")


def main() -> None:
    from kernel.logging import setup_logging
    from kernel.settings import load_settings

    setup_logging()
    lean_logging()
    run_relay(load_settings())


if __name__ == "__main__":
    main()
