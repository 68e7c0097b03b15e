"""Logging for the hub: plain lines with the logger's name; noisy libraries turned down.

No log line carries a data value: the code logs counts, ids and names, and errors are
built the same way (neuron/errors.py).
"""

from __future__ import annotations

import logging

QUIET = ("great_expectations", "alembic", "urllib3", "httpx", "uvicorn.access", "amqtt")


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once; later calls only adjust the level."""
    root = logging.getLogger()
    if not any(getattr(h, "_neuron", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._neuron = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
