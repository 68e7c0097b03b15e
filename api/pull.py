"""`neuron pull`: an incremental, resumable, verified copy of one feed into a folder.

It follows the feed's change log (`changes?since=`) and downloads each new partition
version by id, streamed to disk. Layout: `out_dir/<feed>/<partition_key>.parquet` (a newer
version replaces the file) and `out_dir/.neuron-pull/<feed>.json`, which holds the cursor.
Each partition file is written atomically and only then the cursor, so a pull interrupted
anywhere (killed, even) resumes after the last stored partition and at worst fetches that
one again. Nothing that fails verification is written (the client raises first).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.client import HubClient
from kernel.errors import ConfigError, IntegrityError

STATE_DIR = ".neuron-pull"


@dataclass
class PullResult:
    """What one pull stored: partition versions written, their rows, the cursor reached."""

    feed: str
    partitions: list[str] = field(default_factory=list)  # "<partition_key>@v<version>"
    rows: int = 0
    cursor: str | None = None


def _segments(text: str) -> list[str]:
    # A partition key becomes a relative path: no segment may climb out of the feed's folder.
    parts = text.split("/")
    if any(p in {"", ".", ".."} or "\\" in p or "\x00" in p for p in parts):
        raise IntegrityError("a partition key from the hub is not a safe relative path")
    return parts


def _check_feed_name(feed: str) -> None:
    if feed in {"", ".", "..", STATE_DIR} or "/" in feed or "\\" in feed:
        raise ConfigError(f"{feed!r} is not a feed name")


def partition_path(out_dir: Path, feed: str, partition_key: str) -> Path:
    """Where a partition of a feed is stored under `out_dir`."""
    _check_feed_name(feed)
    *folders, last = _segments(partition_key)
    return out_dir.joinpath(feed, *folders, f"{last}.parquet")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load_state(path: Path, feed: str) -> dict[str, Any]:
    if not path.exists():
        return {"feed": feed, "cursor": None, "versions": {}}
    try:
        state = json.loads(path.read_text())
        if state["feed"] != feed or not isinstance(state["versions"], dict):
            raise ValueError
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a pull state of {feed}; move it away to start over") from exc
    return state  # type: ignore[no-any-return]


def _save(path: Path, state: dict[str, Any]) -> None:
    _write_atomic(path, json.dumps(state, indent=1, sort_keys=True).encode())


def pull_feed(
    client: HubClient, feed: str, out_dir: Path, progress: Callable[[str, int], None] | None = None
) -> PullResult:
    """Fetch every partition version published after the stored cursor; resumable.

    `progress` is told each partition version stored ("<key>@v<version>", rows).
    """
    out_dir = Path(out_dir)
    _check_feed_name(feed)
    state_path = out_dir / STATE_DIR / f"{feed}.json"
    state = _load_state(state_path, feed)
    result = PullResult(feed=feed, cursor=state["cursor"])
    while True:
        changes, _ = client.changes(feed, state["cursor"])
        if not changes:
            break
        for change in changes:
            key, version = str(change["partition"]), int(change["version"])
            # Versions only grow; an older one arriving late must not replace a newer file.
            if version >= state["versions"].get(key, 0):
                dest = partition_path(out_dir, feed, key)
                download = client.download_partition(feed, str(change["id"]), dest, expected=(key, version))
                state["versions"][key] = version
                result.partitions.append(f"{key}@v{version}")
                result.rows += download.rows
                if progress is not None:
                    progress(f"{key}@v{version}", download.rows)
            state["cursor"] = str(change["cursor"])
            _save(state_path, state)
    result.cursor = state["cursor"]
    return result
