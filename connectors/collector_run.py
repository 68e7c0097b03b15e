"""Running the collector: as `neuron collect` (until a signal) or in a background thread.

The background form serves tests and the demo: a private hub's collector in the same
process, started and stopped around what the simulated devices publish.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import TracebackType

from connectors.collector import Collector, CollectorStats
from connectors.mqtt import MqttSettings
from neuron.settings import Settings


def run_collector(
    settings: Settings, stop_event: threading.Event | None = None, config: MqttSettings | None = None
) -> CollectorStats:
    """Run the collector until `stop_event` is set (or, without one, until SIGTERM/SIGINT)."""
    stop = stop_event or threading.Event()
    if stop_event is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    return Collector(settings, config).run(stop)


class BackgroundCollector:
    """The collector in a daemon thread of this process."""

    def __init__(self, settings: Settings, config: MqttSettings | None = None) -> None:
        self.collector = Collector(settings, config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="neuron-collector", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.collector.run(self._stop)
        except BaseException as exc:  # surfaced by stop() and wait_until()
            self.error = exc

    @property
    def stats(self) -> CollectorStats:
        return self.collector.stats

    def start(self, timeout: float = 15.0, wait: bool = True) -> BackgroundCollector:
        """Start, and (unless told not to) wait until connected and subscribed."""
        self._thread.start()
        if wait and not self.collector.wait_connected(timeout):
            raise TimeoutError("the collector could not connect to the broker")
        return self

    def wait_until(self, condition: Callable[[CollectorStats], bool], timeout: float = 60.0) -> bool:
        """Poll the run's counts until `condition` holds (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise RuntimeError("the collector stopped with an error") from self.error
            if condition(self.stats):
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 30.0) -> CollectorStats:
        """Stop (landing and acknowledging what is buffered) and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout)
        if self.error is not None:
            raise RuntimeError("the collector stopped with an error") from self.error
        return self.stats

    def __enter__(self) -> BackgroundCollector:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(30)


def main() -> None:
    """`python -m connectors.collector_run`: the collector with settings from the environment.

    NEURON_MQTT_JSON may hold the MqttSettings as JSON until the hub's Settings carry them.
    """
    from neuron.logging import setup_logging
    from neuron.settings import load_settings

    setup_logging()
    raw = os.environ.get("NEURON_MQTT_JSON")
    config = MqttSettings.model_validate_json(raw) if raw else None
    run_collector(load_settings(), config=config)


if __name__ == "__main__":
    main()
