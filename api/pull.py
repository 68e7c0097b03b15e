"""`neuron pull`: an incremental, resumable, verified copy of one feed into a folder.

It follows the feed's change log (`changes?since=`) and downloads each new partition
version by id, streamed to disk. Layout (the same as the standalone consumer kit's,
clients/python):

    out_dir/<feed>/<partition key>/part-0.parquet                 the dataset: Hive layout
    out_dir/.neuron-pull/<feed>.json                              cursor, versions, schema
    out_dir/.neuron-pull/<feed>/<partition key>/v<N>.parquet      the file as the hub signed it
    out_dir/.neuron-pull/<feed>/<partition key>/v<N>.jws          its signed manifest

The partition keys are `name=value` folders (community_id=…/day=…), so the feed's folder is
one dataset that pandas, pyarrow.dataset, DuckDB and polars read directly: its files leave
out the partition columns (readers take them from the folder names and cannot merge them
with the same columns inside the files) and keep the types of the feed's first partition.
The hub's own bytes are kept, hidden from readers, as evidence against the manifest.

Each file is written atomically and only then the cursor, so a pull interrupted anywhere
(killed, even) resumes after the last stored partition and at worst fetches that one
again. Nothing that fails verification is written (the client raises first).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from api.client import HubClient
from kernel.errors import ConfigError, IntegrityError

STATE_DIR = ".neuron-pull"
DATASET_FILE = "part-0.parquet"


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
    # A leading "." would also hide a folder from dataset readers.
    if any(p in {"", ".", ".."} or "\\" in p or "\x00" in p or p.startswith(".") for p in parts):
        raise IntegrityError("a partition key from the hub is not a safe relative path")
    return parts


def _check_feed_name(feed: str) -> None:
    if feed in {"", ".", "..", STATE_DIR} or "/" in feed or "\\" in feed:
        raise ConfigError(f"{feed!r} is not a feed name")


def partition_path(out_dir: Path, feed: str, partition_key: str) -> Path:
    """Where the dataset file of a partition of a feed is stored under `out_dir`."""
    _check_feed_name(feed)
    return out_dir.joinpath(feed, *_segments(partition_key), DATASET_FILE)


def original_path(out_dir: Path, feed: str, partition_key: str, version: int) -> Path:
    """Where the hub's own file of a partition version is kept under `out_dir`."""
    _check_feed_name(feed)
    return out_dir.joinpath(STATE_DIR, feed, *_segments(partition_key), f"v{version}.parquet")


def _dataset_table(original: Path, partition_key: str, state: dict[str, Any]) -> pa.Table:
    """The hub's rows without the partition columns, in the types the feed's first partition fixed."""
    table = pq.read_table(original)
    hive = [s.split("=", 1)[0] for s in _segments(partition_key) if "=" in s]
    table = table.drop_columns([c for c in hive if c in table.column_names]).replace_schema_metadata(None)
    if not state.get("schema"):
        state["schema"] = base64.b64encode(table.schema.serialize().to_pybytes()).decode()
        return table
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(state["schema"])))
    if sorted(table.column_names) != sorted(schema.names):
        raise ConfigError(
            f"partition {partition_key} of the feed has other columns than before; pull into a new folder"
        )
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ConfigError(f"partition {partition_key} has a column of another type than before") from exc


def _write_dataset_file(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


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
                original = original_path(out_dir, feed, key, version)
                download = client.download_partition(feed, str(change["id"]), original, expected=(key, version))
                _write_atomic(original.with_suffix(".jws"), download.manifest_jws.encode())
                _write_dataset_file(partition_path(out_dir, feed, key), _dataset_table(original, key, state))
                previous = state["versions"].get(key)
                if previous is not None and previous != version:  # superseded: only the newest is evidence
                    old = original_path(out_dir, feed, key, previous)
                    old.unlink(missing_ok=True)
                    old.with_suffix(".jws").unlink(missing_ok=True)
                state["versions"][key] = version
                result.partitions.append(f"{key}@v{version}")
                result.rows += download.rows
                if progress is not None:
                    progress(f"{key}@v{version}", download.rows)
            state["cursor"] = str(change["cursor"])
            _save(state_path, state)
    result.cursor = state["cursor"]
    return result
