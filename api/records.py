"""Serving published partitions: the change cursor, the latest versions, the rows.

Only the control database and the Parquet files under the lake are read, never the
DuckDB warehouse (it is locked while pipelines write). A consumer follows publications
in `seq` order; a partition version that a newer version of the same partition has
superseded is skipped. Every file is checked against the sha256 its manifest signs, and a
file with a column the caller's policy does not grant now (the policy was narrowed after
publication) is withheld: serving stops before it, without moving the cursor past it, until
the partition is re-published.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from neuron.errors import IntegrityError
from privacy.jws import canonical_json
from privacy.keys import b64u, b64u_decode
from warehouse.control import Partition

log = logging.getLogger(__name__)

CURSOR_MAX_LENGTH = 200
SCAN_BATCH = 100


@dataclass(frozen=True)
class Cursor:
    """A position in a consumer's feed: publications before `seq` done, `offset` rows of `seq` done."""

    seq: int = 0
    offset: int = 0

    def encode(self) -> str:
        """The opaque form handed to consumers: base64url of canonical JSON."""
        return b64u(canonical_json({"seq": self.seq, "offset": self.offset}))

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        """Parse an opaque cursor (None or empty: the beginning); ValueError if invalid."""
        if not text:
            return cls()
        try:
            if len(text) > CURSOR_MAX_LENGTH:
                raise ValueError
            value = json.loads(b64u_decode(text))
            seq, offset = value["seq"], value["offset"]
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError("invalid cursor") from exc
        if set(value) != {"seq", "offset"} or not all(type(n) is int and n >= 0 for n in (seq, offset)):
            raise ValueError("invalid cursor")
        return cls(seq, offset)


@dataclass
class Page:
    """Rows for one ndjson response and where the consumer goes next."""

    rows: list[dict[str, Any]]
    next_cursor: Cursor
    served: list[dict[str, Any]] = field(default_factory=list)


def latest_versions(session: Session, consumer: str, feed: str, from_seq: int) -> Iterator[Partition]:
    """The consumer's partition versions from `from_seq` on, in seq order, superseded ones skipped."""
    newer = aliased(Partition)
    superseded = exists().where(
        newer.consumer == Partition.consumer,
        newer.feed == Partition.feed,
        newer.partition_key == Partition.partition_key,
        newer.version > Partition.version,
    )
    while True:
        query = (
            select(Partition)
            .where(Partition.consumer == consumer, Partition.feed == feed, Partition.seq >= from_seq)
            .where(~superseded)
            .order_by(Partition.seq)
            .limit(SCAN_BATCH)
        )
        batch = session.execute(query).scalars().all()
        yield from batch
        if len(batch) < SCAN_BATCH:
            return
        from_seq = batch[-1].seq + 1


def partition_bytes(lake: Path, partition: Partition) -> bytes:
    """The partition's file, checked against the sha256 recorded (and signed) at publication."""
    root = lake.resolve()
    path = (root / partition.path).resolve()
    if not path.is_relative_to(root):
        raise IntegrityError(f"partition seq {partition.seq} of {partition.feed} points outside the lake")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != partition.sha256:
        raise IntegrityError(f"partition seq {partition.seq} of {partition.feed} does not match its sha256")
    return data


def within_policy(data: bytes, granted: list[str], partition: Partition) -> bool:
    """Whether every column of the file is one the caller's policy grants now."""
    extra = set(pq.read_schema(pa.BufferReader(data)).names) - set(granted)
    if extra:
        log.warning(
            "withheld %s %s v%d: %d column(s) no longer granted; re-publish it",
            partition.feed,
            partition.partition_key,
            partition.version,
            len(extra),
        )
    return not extra


def served_entry(partition: Partition, rows: int) -> dict[str, Any]:
    """How the audit log names a served partition."""
    return {
        "seq": partition.seq,
        "partition": partition.partition_key,
        "version": partition.version,
        "rows": rows,
        "policy_fingerprint": partition.policy_fingerprint,
    }


def read_page(
    session: Session, lake: Path, consumer: str, feed: str, granted: list[str], cursor: Cursor, limit: int
) -> Page:
    """Up to `limit` rows from `cursor` on, crossing partitions in seq order."""
    page = Page(rows=[], next_cursor=cursor)
    for partition in latest_versions(session, consumer, feed, cursor.seq):
        if len(page.rows) >= limit:
            break
        data = partition_bytes(lake, partition)
        if not within_policy(data, granted, partition):
            break
        table = pq.read_table(pa.BufferReader(data))
        offset = cursor.offset if partition.seq == cursor.seq else 0
        chunk = table.slice(offset, limit - len(page.rows))
        page.rows.extend(_jsonable(row) for row in chunk.to_pylist())
        end = offset + chunk.num_rows
        done = end >= table.num_rows
        page.next_cursor = Cursor(partition.seq + 1, 0) if done else Cursor(partition.seq, end)
        if chunk.num_rows:
            page.served.append(served_entry(partition, chunk.num_rows))
    return page


def next_partition(
    session: Session, lake: Path, consumer: str, feed: str, granted: list[str], cursor: Cursor
) -> tuple[Partition, bytes] | None:
    """The next partition version to hand over whole, or None when caught up (or withheld)."""
    for partition in latest_versions(session, consumer, feed, cursor.seq):
        data = partition_bytes(lake, partition)
        return (partition, data) if within_policy(data, granted, partition) else None
    return None


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN or infinity: a non-finite reading becomes null.
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    """Rows as newline-delimited JSON (UTF-8, ISO 8601 dates and timestamps)."""
    lines = (json.dumps(row, default=_json_value, ensure_ascii=False, separators=(",", ":")) for row in rows)
    return "".join(line + "\n" for line in lines).encode()
