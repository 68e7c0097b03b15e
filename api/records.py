"""Serving published partitions: the change cursor, the latest versions, the rows.

Only the control database and the Parquet files under the lake are read, never the
DuckDB warehouse (it is locked while pipelines write). A consumer follows publications
in `seq` order; a partition version that a newer version of the same partition has
superseded is skipped. Every file is checked against the sha256 its manifest signs (once
per process and file, see `VerifiedFiles`), and a file with a column the caller's policy
does not grant now (the policy was narrowed after publication) is withheld: serving stops
before it, without moving the cursor past it, until the partition is re-published.
Pages read only the row groups they need, so memory follows the page, not the partition.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from api.lake_files import partition_path, read_rows, within_policy
from privacy.jws import canonical_json
from privacy.keys import b64u, b64u_decode
from privacy.policy import Policy
from warehouse.models import Partition

log = logging.getLogger(__name__)

CURSOR_MAX_LENGTH = 200
CURSOR_PATTERN = "^[A-Za-z0-9_-]*$"  # base64url: what cursors and partition ids are made of
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
    """Rows for one response, one Arrow table per partition they come from, and where the
    consumer goes next. (Tables, not dicts: formats render columns far faster than rows.)"""

    chunks: list[pa.Table]
    next_cursor: Cursor
    served: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(chunk.num_rows for chunk in self.chunks)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts, a non-finite reading as None (JSON has no NaN)."""
        return [_jsonable(row) for chunk in self.chunks for row in chunk.to_pylist()]


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
    session: Session,
    lake: Path,
    consumer: str,
    feed: str,
    granted: list[str],
    cursor: Cursor,
    limit: int,
    policy: Policy | None = None,
) -> Page:
    """Up to `limit` rows from `cursor` on, crossing partitions in seq order."""
    page, count = Page(chunks=[], next_cursor=cursor), 0
    for partition in latest_versions(session, consumer, feed, cursor.seq):
        if count >= limit:
            break
        path = partition_path(lake, partition)
        if not within_policy(path, granted, partition, policy):
            break
        offset = cursor.offset if partition.seq == cursor.seq else 0
        chunk = read_rows(path, offset, limit - count)
        if chunk.num_rows:
            page.chunks.append(chunk)
        count += chunk.num_rows
        end = offset + chunk.num_rows
        done = end >= partition.rows
        page.next_cursor = Cursor(partition.seq + 1, 0) if done else Cursor(partition.seq, end)
        if chunk.num_rows:
            page.served.append(served_entry(partition, chunk.num_rows))
    return page


def next_partition(
    session: Session,
    lake: Path,
    consumer: str,
    feed: str,
    granted: list[str],
    cursor: Cursor,
    policy: Policy | None = None,
) -> tuple[Partition, Path] | None:
    """The next partition version to hand over whole, or None when caught up (or withheld)."""
    for partition in latest_versions(session, consumer, feed, cursor.seq):
        path = partition_path(lake, partition)
        return (partition, path) if within_policy(path, granted, partition, policy) else None
    return None


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN or infinity: a non-finite reading becomes null.
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
