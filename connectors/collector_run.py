"""Running the collector: as `neuron collect` (until a signal) or in a background thread.

The background form serves tests and the demo: a private hub's collector in the same
process, started and stopped around what the simulated devices publish.
"""

from __future__ import annotations

import os
import signal
import threading

from connectors.collector import Collector, CollectorStats
from kernel.background import BackgroundService
from kernel.mqtt_settings import MqttSettings
from kernel.settings import Settings


def run_collector(
    settings: Settings, stop_event: threading.Event | None = None, config: MqttSettings | None = None
) -> CollectorStats:
    """Run the collector until `stop_event` is set (or, without one, until SIGTERM/SIGINT)."""
    stop = stop_event or threading.Event()
    if stop_event is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    return Collector(settings, config).run(stop)


class BackgroundCollector(BackgroundService[CollectorStats]):
    """The collector in a daemon thread of this process."""

    def __init__(self, settings: Settings, config: MqttSettings | None = None) -> None:
        self.collector = Collector(settings, config)
        super().__init__(self.collector, "collector")


def main() -> None:
    """`python -m connectors.collector_run`: the collector with settings from the environment.

    NEURON_MQTT_JSON may hold the MqttSettings as JSON until the hub's Settings carry them.
    """
    from kernel.logging import setup_logging
    from kernel.settings import load_settings

    setup_logging()
    raw = os.environ.get("NEURON_MQTT_JSON")
    config = MqttSettings.model_validate_json(raw) if raw else None
    run_collector(load_settings(), config=config)


if __name__ == "__main__":
    main()
