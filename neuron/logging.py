"""Logging for the hub: plain lines with the logger's name; noisy libraries turned down.

No log line carries a data value: the code logs counts, ids and names, and errors are
built the same way (neuron/errors.py).
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
