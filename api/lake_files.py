"""Reading published partition files: each checked once against the sha256 its manifest
signs, kept decoded within a memory budget while consumers page through it, and checked
against the caller's policy before anything of it is served."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kernel.errors import IntegrityError
from privacy.policy import Policy
from warehouse.models import Partition

log = logging.getLogger(__name__)


class VerifiedFiles:
    """Lake files whose SHA-256 matched their manifest, remembered by path and stat (size,
    mtime, ctime, inode): any write to a file changes its ctime, so it is hashed again."""

    def __init__(self, max_entries: int = 4096, chunk_size: int = 1 << 20) -> None:
        self.max_entries = max_entries
        self.chunk_size = chunk_size
        self._seen: OrderedDict[tuple[str, int, int, int, int, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, lake: Path, partition: Partition) -> Path:
        """The partition's file, checked against its sha256; IntegrityError otherwise."""
        root = lake.resolve()
        path = (root / partition.path).resolve()
        if not path.is_relative_to(root):
            raise IntegrityError(f"partition seq {partition.seq} of {partition.feed} points outside the lake")
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, partition.sha256)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return path
        hasher = hashlib.sha256()
        with open(path, "rb") as file:
            while chunk := file.read(self.chunk_size):
                hasher.update(chunk)
        if hasher.hexdigest() != partition.sha256:
            raise IntegrityError(f"partition seq {partition.seq} of {partition.feed} does not match its sha256")
        with self._lock:
            self._seen[key] = None
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
        return path


VERIFIED = VerifiedFiles()


def partition_path(lake: Path, partition: Partition) -> Path:
    """The partition's verified file."""
    return VERIFIED.path(lake, partition)


def within_policy(path: Path, granted: list[str], partition: Partition, policy: Policy | None = None) -> bool:
    """Whether every column of the file is one the caller's policy grants now and, given the
    policy in force, whether the partition was published under its treatment of the feed (a
    stricter rule for the same column withholds what the old rule let through until republished)."""
    if policy is not None and not policy.in_force_for(
        partition.feed, partition.treatment_fingerprint, partition.policy_fingerprint
    ):
        log.warning(
            "withheld %s %s v%d: published under a superseded treatment; re-publish it",
            partition.feed,
            partition.partition_key,
            partition.version,
        )
        return False
    extra = set(pq.read_schema(path).names) - set(granted)
    if extra:
        log.warning(
            "withheld %s %s v%d: %d column(s) no longer granted; re-publish it",
            partition.feed,
            partition.partition_key,
            partition.version,
            len(extra),
        )
    return not extra


class DecodedFiles:
    """Recently decoded partition files, within a budget of Arrow memory.

    A consumer pages through a partition in order: without this, each page would decode
    again the row groups its rows lie in, which is the whole file when the publisher wrote
    one row group. Keyed like `VerifiedFiles`, so a changed file is decoded afresh.
    """

    def __init__(self, budget_bytes: int = 256 << 20) -> None:
        self.budget = budget_bytes
        self._tables: OrderedDict[tuple[str, int, int, int], pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    def table(self, path: Path) -> pa.Table | None:
        """The whole file decoded, if it fits the budget (None: read row groups instead)."""
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        with self._lock:
            if key in self._tables:
                self._tables.move_to_end(key)
                return self._tables[key]
        table = pq.read_table(path)
        if table.nbytes > self.budget // 2:
            return None  # too large to keep: page by row groups
        with self._lock:
            self._tables[key] = table
            while sum(t.nbytes for t in self._tables.values()) > self.budget:
                self._tables.popitem(last=False)
        return table


DECODED = DecodedFiles()


def read_rows(path: Path, offset: int, count: int) -> pa.Table:
    """Rows [offset, offset + count) of a Parquet file: from the decoded cache, or decoding
    only the row groups they lie in."""
    cached = DECODED.table(path) if pq.read_metadata(path).num_rows > count else None
    if cached is not None:
        return cached.slice(offset, count)
    file = pq.ParquetFile(path)
    groups: list[int] = []
    first = start = 0
    for index in range(file.num_row_groups):
        rows = file.metadata.row_group(index).num_rows
        if start + rows > offset and start < offset + count:
            if not groups:
                first = start
            groups.append(index)
        start += rows
    if not groups:
        return file.schema_arrow.empty_table()
    return file.read_row_groups(groups).slice(offset - first, count)
