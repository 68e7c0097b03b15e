"""Running the cascade: as `neuron viid` (until SIGTERM/SIGINT) or in a background thread."""

from __future__ import annotations

import signal
import threading

from kernel.background import BackgroundService
from kernel.settings import Settings
from kernel.viid_settings import ViidSettings
from peers.viid.service import ViidService, ViidStats


def run_viid(settings: Settings, stop_event: threading.Event | None = None) -> ViidStats:
    """Run the lower platform until `stop_event` is set (or, without one, until SIGTERM/SIGINT)."""
    stop = stop_event or threading.Event()
    if stop_event is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    return ViidService(settings).run(stop)


class BackgroundViid(BackgroundService[ViidStats]):
    """The cascade in a daemon thread of this process (tests, benchmark, demo)."""

    def __init__(self, settings: Settings, config: ViidSettings | None = None) -> None:
        self.viid = ViidService(settings, config)
        super().__init__(self.viid, "VIID cascade")
