"""Streaming a partition to disk on the consumer's side: bounded memory, verified, atomic.

The body is written to a temporary file beside `dest` while it is hashed; only when the
hash matches the signed Content-Digest and the file matches its signed manifest (sha256,
size, rows, columns, feed, consumer, partition, version) is it renamed into place.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import requests

from api.verify import PartitionDownload, check_partition
from kernel.errors import IntegrityError, RetriableError

CHUNK = 1 << 20


def download_to(
    response: requests.Response,
    digest: bytes,
    dest: Path,
    feed: str,
    consumer: str,
    jwks: dict[str, Any],
    expected: tuple[str, int] | None = None,
) -> PartitionDownload:
    """Write the verified body of a partition response to `dest`; on any failure nothing is left there.

    `expected` is the (partition key, version) the caller asked for, e.g. from the change log.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    hasher, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as file:
            try:
                for chunk in response.iter_content(CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    file.write(chunk)
            except requests.RequestException as exc:
                raise RetriableError(f"a partition of {feed} arrived incomplete ({type(exc).__name__})") from exc
            file.flush()
            os.fsync(file.fileno())
        if hasher.digest() != digest:
            raise IntegrityError(f"a partition of {feed} does not match the digest the hub signed")
        try:
            parquet = pq.ParquetFile(tmp)
        except pa.ArrowException as exc:
            raise IntegrityError(f"a partition of {feed} is not a readable Parquet file") from exc
        key, version, manifest, token = check_partition(
            response.headers, feed, consumer, jwks, hasher.hexdigest(), size, parquet
        )
        if expected is not None and (key, version) != expected:
            raise IntegrityError(f"the hub sent partition {key} v{version} of {feed} for another one")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return PartitionDownload(feed, key, version, b"", manifest, token, path=dest)
