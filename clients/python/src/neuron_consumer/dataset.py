"""The pulled folder: one Hive-partitioned Parquet dataset per feed, plus the evidence.

    <out>/<feed>/community_id=<c>/day=<d>/part-0.parquet      the dataset (pandas, pyarrow.dataset,
                                                             DuckDB and polars read <out>/<feed> directly)
    <out>/.neuron-pull/<feed>.json                           cursor, versions, the feed's schema
    <out>/.neuron-pull/<feed>/<partition key>/v<N>.parquet   the file exactly as the hub signed it
    <out>/.neuron-pull/<feed>/<partition key>/v<N>.jws       its signed manifest

Why two files per partition: the hub's files carry their partition columns (`community_id`,
`day`) inside, and a reader that also derives them from `name=value` folders fails to merge
the two (pyarrow: "Unable to merge ... incompatible types"). The dataset file therefore
holds every other column, cast to the types the feed's first partition fixed, and the
partition values live only in the path, as Hive layout has it. The hub's own bytes are
kept beside it, hidden from readers (paths starting with "." are skipped), so `verify`
can check every partition against its signed manifest at any time.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from neuron_consumer.errors import ConsumerError, IntegrityError

STATE_DIR = ".neuron-pull"
PART = "part-0.parquet"


def check_feed_name(feed: str) -> None:
    if feed in {"", ".", "..", STATE_DIR} or "/" in feed or "\\" in feed or feed.startswith("."):
        raise ConsumerError(f"{feed!r} is not a feed name")


def segments(partition_key: str) -> list[str]:
    """A partition key as relative path segments; IntegrityError if one could climb out."""
    parts = partition_key.split("/")
    if any(p in {"", ".", ".."} or "\\" in p or "\x00" in p or p.startswith(".") for p in parts):
        raise IntegrityError("a partition key from the hub is not a safe relative path")
    return parts


def hive_columns(partition_key: str) -> dict[str, str]:
    """The `name=value` segments of a partition key."""
    return dict(s.split("=", 1) for s in segments(partition_key) if "=" in s)


def dataset_path(out: Path, feed: str, partition_key: str) -> Path:
    return out.joinpath(feed, *segments(partition_key), PART)


def original_path(out: Path, feed: str, partition_key: str, version: int) -> Path:
    return out.joinpath(STATE_DIR, feed, *segments(partition_key), f"v{version}.parquet")


def state_path(out: Path, feed: str) -> Path:
    return out / STATE_DIR / f"{feed}.json"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_state(out: Path, feed: str) -> dict[str, Any]:
    path = state_path(out, feed)
    if not path.exists():
        return {"feed": feed, "consumer": None, "cursor": None, "versions": {}, "schema": None}
    try:
        state = json.loads(path.read_text())
        if state["feed"] != feed or not isinstance(state["versions"], dict):
            raise ValueError
    except (ValueError, KeyError, TypeError) as exc:
        raise ConsumerError(f"{path} is not a pull state of {feed}; move it away to start over") from exc
    return state  # type: ignore[no-any-return]


def save_state(out: Path, state: dict[str, Any]) -> None:
    write_atomic(state_path(out, state["feed"]), json.dumps(state, indent=1, sort_keys=True).encode())


def _schema(state: dict[str, Any]) -> pa.Schema | None:
    stored = state.get("schema")
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(stored))) if stored else None


def dataset_table(original: Path, partition_key: str, state: dict[str, Any]) -> pa.Table:
    """The rows of a hub file as the dataset stores them: without the partition columns, in
    the feed's fixed types (set by the first partition, recorded in `state`)."""
    table = pq.read_table(original)
    table = table.drop_columns([c for c in hive_columns(partition_key) if c in table.column_names])
    schema = _schema(state)
    if schema is None:
        state["schema"] = base64.b64encode(table.schema.remove_metadata().serialize().to_pybytes()).decode()
        return table.replace_schema_metadata(None)
    if sorted(table.column_names) != sorted(schema.names):
        raise ConsumerError(
            f"partition {partition_key} has other columns than the ones already pulled (the feed changed);"
            " pull it into a new folder"
        )
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ConsumerError(f"partition {partition_key} has a column of another type than before: {exc}") from exc


def write_dataset_file(out: Path, feed: str, partition_key: str, original: Path, state: dict[str, Any]) -> None:
    path = dataset_path(out, feed, partition_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(dataset_table(original, partition_key, state), tmp)
    os.replace(tmp, path)
