"""A long-running service (the collector, the relay) in a daemon thread of this process.

Tests, benchmarks and the demo run a private hub's service beside what they drive,
start it, wait on its counts, and stop it: the same life cycle for every service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

StatsT = TypeVar("StatsT")
StatsT_co = TypeVar("StatsT_co", covariant=True)


class Service(Protocol[StatsT_co]):
    """What a service offers to be run in the background."""

    @property
    def stats(self) -> StatsT_co: ...

    def run(self, stop: threading.Event) -> object: ...

    def wait_connected(self, timeout: float) -> bool: ...


class BackgroundService(Generic[StatsT]):
    """Run `service` in a daemon thread; an error it dies of is raised by stop() and wait_until()."""

    def __init__(self, service: Service[StatsT], name: str) -> None:
        self.service = service
        self.name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"neuron-{name}", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.service.run(self._stop)
        except BaseException as exc:  # surfaced by stop() and wait_until()
            self.error = exc

    @property
    def stats(self) -> StatsT:
        return self.service.stats

    def start(self, timeout: float = 15.0, wait: bool = True) -> Self:
        """Start, and (unless told not to) wait until connected and subscribed."""
        self._thread.start()
        if wait and not self.service.wait_connected(timeout):
            raise TimeoutError(f"the {self.name} could not connect to the broker")
        return self

    def _raise_error(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the {self.name} stopped with an error") from self.error

    def wait_until(self, condition: Callable[[StatsT], bool], timeout: float = 60.0) -> bool:
        """Poll the run's counts until `condition` holds (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_error()
            if condition(self.stats):
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 30.0) -> StatsT:
        """Stop (the service drains what it holds) and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout)
        self._raise_error()
        return self.stats

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(30)
