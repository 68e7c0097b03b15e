"""Running the relay: as `neuron relay` (until SIGTERM/SIGINT) or in a background thread.

python -m relay.run     # the relay with settings from the environment (NEURON_*)
"""

from __future__ import annotations

import signal
import sys
import threading
from types import TracebackType

from neuron.settings import Settings
from relay.destinations import wait_for
from relay.service import Clock, Relay, RelayStats
from relay.settings import RelaySettings

# The relay hands each alarm across threads (network → worker → publisher → network); with
# CPython's default 5 ms switch interval every hand-off under load can cost up to 5 ms.
SWITCH_INTERVAL_SECONDS = 0.0005


def run_relay(settings: Settings, stop_event: threading.Event | None = None) -> RelayStats:
    """Run the relay until `stop_event` is set (or, without one, until SIGTERM/SIGINT)."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)  # the relay's own process (`neuron relay`)
    stop = stop_event or threading.Event()
    if stop_event is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    return Relay(settings).run(stop)


class BackgroundRelay:
    """The relay in a daemon thread of this process (tests, benchmark, demo)."""

    def __init__(self, settings: Settings, config: RelaySettings | None = None, clock: Clock | None = None) -> None:
        self.relay = Relay(settings, config, clock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="neuron-relay", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.relay.run(self._stop)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    @property
    def stats(self) -> RelayStats:
        return self.relay.stats

    def start(self, timeout: float = 15.0) -> BackgroundRelay:
        self._thread.start()
        if not self.relay.wait_connected(timeout):
            raise TimeoutError("the relay could not connect to the community broker")
        return self

    def wait_until(self, condition: object, timeout: float = 30.0) -> bool:
        def check() -> bool:
            if self.error is not None:
                raise RuntimeError("the relay stopped with an error") from self.error
            return bool(condition(self.stats))  # type: ignore[operator]

        return wait_for(check, timeout)

    def stop(self, timeout: float = 30.0) -> RelayStats:
        self._stop.set()
        self._thread.join(timeout)
        if self.error is not None:
            raise RuntimeError("the relay stopped with an error") from self.error
        return self.stats

    def __enter__(self) -> BackgroundRelay:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(30)


def main() -> None:
    from neuron.logging import setup_logging
    from neuron.settings import load_settings

    setup_logging()
    run_relay(load_settings())


if __name__ == "__main__":
    main()
