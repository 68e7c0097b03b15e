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
WRITER_WATERMARK = "_watermark.{writer}.json"


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


def write_writer_watermark(root: Path, writer: str, landed_through_us: int, streams: Iterable[str]) -> None:
    """The watermark of another writer into the same landing (the carrier inbox): everything it
    accepted before `landed_through_us` for `streams` is landed. A window of one of those streams is
    complete only once both the collector and this writer are past its end."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    through = datetime.fromtimestamp(landed_through_us / 1_000_000, UTC)
    body = {"landed_through": through.isoformat(), "writer": writer, "streams": sorted(streams)}
    tmp = root / f".{WRITER_WATERMARK.format(writer=writer)}.tmp"
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, root / WRITER_WATERMARK.format(writer=writer))  # no fsync, as for the collector's


def writers_through(root: Path, stream: str) -> tuple[str, datetime] | None:
    """The least advanced other writer of `stream` and its watermark (None: there is none)."""
    found = []
    for path in root.glob(WRITER_WATERMARK.format(writer="*")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            continue
        if stream in body.get("streams", []):
            found.append((str(body.get("writer")), datetime.fromisoformat(body["landed_through"])))
    return min(found, key=lambda f: f[1]) if found else None


def require_landed_through(root: Path, until: datetime, wait_seconds: float = 0.0, stream: str | None = None) -> None:
    """Raise a retriable error unless everything received before `until` is landed (for `stream`,
    also by the other writers of that stream).

    Waits up to `wait_seconds` first: a run starting right at the window's end finds the
    collector a batch interval behind, which is not worth a retry.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        through = landed_through(root)
        other = writers_through(root, stream) if stream is not None else None
        if through is not None and through >= until and (other is None or other[1] >= until):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if other is not None and other[1] < until and through is not None and through >= until:
        raise RetriableError(
            f"landing: the {other[0]} has landed {stream} up to {other[1].isoformat()}, "
            f"not yet to the window end {until.isoformat()} (is `neuron {other[0]}` running?)"
        )
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
