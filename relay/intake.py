"""The hand-off from paho's network threads to the relay's worker: a buffer taken in group commits.

The worker takes the buffer once it holds `limit` messages or its oldest message is `age`
seconds old. The first message into an empty buffer wakes the worker at once; without that
wake-up a lone alarm waited for the worker's idle poll, up to 50 ms. With `age` 0 (the
relay's default) this is natural batching: the worker takes at once whatever arrived while
it was busy with the previous group, so groups are as large as the load makes them and no
alarm waits for a group to fill.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Intake(Generic[T]):
    """A buffer of inbound items, each with its arrival (epoch seconds) given by `received`."""

    def __init__(self, received: Callable[[T], float], limit: int, age_seconds: float) -> None:
        self.received, self.limit, self.age = received, limit, age_seconds
        self.cond = threading.Condition()  # also guards what callers keep with the buffer
        self._items: list[T] = []

    def put(self, item: T) -> None:
        """From a network thread (the caller may already hold `cond`: it is re-entrant)."""
        with self.cond:
            self._items.append(item)
            if len(self._items) == 1 or len(self._items) >= self.limit:
                self.cond.notify()

    def take(self, stop: threading.Event, idle_seconds: float = 0.05) -> list[T]:
        """The buffered items once the group is due; an empty list after `idle_seconds` without any
        (the worker still wakes for deadlines and deletes), or at once when `stop` is set."""
        with self.cond:
            idle_until = time.monotonic() + idle_seconds
            while not stop.is_set() and len(self._items) < self.limit:
                if self._items:
                    remaining = self.received(self._items[0]) + self.age - time.time()
                else:
                    remaining = idle_until - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
            taken, self._items = self._items, []
        return taken

    def __len__(self) -> int:
        return len(self._items)
