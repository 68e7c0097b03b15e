"""Logging for the hub: plain lines with the logger's name; noisy libraries turned down.

No log line carries a data value: the code logs counts, ids and names, and errors are
built the same way (kernel/errors.py).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

QUIET = ("great_expectations", "alembic", "urllib3", "httpx", "uvicorn.access", "amqtt")


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test runners and CLIs swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once; later calls only adjust the level."""
    root = logging.getLogger()
    if not any(isinstance(h, _CurrentStderr) for h in root.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


class _BatchedStderr(_CurrentStderr):
    """Formats each record as it is logged, but writes the lines to stderr together: whenever
    `flush_logs()` is called, once 200 lines wait, or at once for a warning or worse.

    For a process that logs a line per event at hundreds of events a second (the relay): one
    write per group of lines instead of a write and a flush per line (~60 µs each here).
    """

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
            if record.levelno >= logging.WARNING or len(self._lines) >= 200:
                self.flush()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._lines:
                text = "\n".join(self._lines) + "\n"
                self._lines = []
                self.stream.write(text)
                self.stream.flush()


def batch_log_lines() -> None:
    """In a process of its own that calls `flush_logs()` regularly: write log lines in groups."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is _CurrentStderr:
            batched = _BatchedStderr()
            batched.setFormatter(handler.formatter)
            root.removeHandler(handler)
            root.addHandler(batched)


def flush_logs() -> None:
    """Write out what the root logger's handlers hold."""
    for handler in logging.getLogger().handlers:
        handler.flush()
