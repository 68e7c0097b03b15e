"""What the collector has landed: the watermark that makes a window complete, and the
msg_ids landed lately, which recognise redeliveries.

`_watermark.json` says up to which receive time everything received has been landed: a
window that ends after it may still be missing messages held in the collector's buffer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from kernel.errors import RetriableError

WATERMARK = "_watermark.json"


def write_watermark(root: Path, landed_through_us: int, client_id: str) -> None:
    """Record that everything received before `landed_through_us` is landed."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    through = datetime.fromtimestamp(landed_through_us / 1_000_000, UTC)
    body = {"landed_through": through.isoformat(), "client_id": client_id}
    tmp = root / f".{WATERMARK}.tmp"
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.chmod(tmp, 0o600)
    # No fsync: a watermark lost in a power cut only moves back, which delays windows, never loses data.
    os.replace(tmp, root / WATERMARK)


def landed_through(root: Path) -> datetime | None:
    """The collector's watermark (None: it has never run here)."""
    try:
        body = json.loads((root / WATERMARK).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return datetime.fromisoformat(body["landed_through"])


def require_landed_through(root: Path, until: datetime, wait_seconds: float = 0.0) -> None:
    """Raise a retriable error unless everything received before `until` is landed.

    Waits up to `wait_seconds` first: a run starting right at the window's end finds the
    collector a batch interval behind, which is not worth a retry.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        through = landed_through(root)
        if through is not None and through >= until:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if through is None:
        raise RetriableError("MQTT landing: no collector has run for this hub yet (is `neuron collect` running?)")
    raise RetriableError(
        f"MQTT landing: the collector has landed messages up to {through.isoformat()}, "
        f"not yet to the window end {until.isoformat()} (is `neuron collect` running?)"
    )


class RecentlyLanded:
    """The msg_ids landed in about the last `lookback_seconds`: two generations, so lookups
    are O(1) and memory stays bounded by the lookback whatever the run's length."""

    def __init__(self, lookback_seconds: float) -> None:
        self.lookback = lookback_seconds
        self._current: set[str] = set()
        self._previous: set[str] = set()
        self._rotated = time.monotonic()

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._current or msg_id in self._previous

    def add(self, msg_ids: Iterable[str]) -> None:
        """Remember msg_ids just landed."""
        if time.monotonic() - self._rotated > self.lookback:
            self._previous, self._current, self._rotated = self._current, set(), time.monotonic()
        self._current.update(msg_ids)
