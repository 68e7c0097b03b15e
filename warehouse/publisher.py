"""Publish feeds: per consumer, the policy applied to the mart rows, written as immutable,
deterministic Parquet partitions with signed manifests.

A partition is (community, period). Its bytes depend only on the mart rows and the
policy, so re-publishing unchanged data gives the same SHA-256 and no new version; a
change (late data, a new policy) writes version N+1 whose manifest names the one it
supersedes. Files are never overwritten: consumers can always verify what they hold.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select

from neuron.settings import Settings
from privacy.jws import sign_json
from privacy.keys import HubKeys
from privacy.policy import Policy
from schemas.contract import ARROW_TYPES
from schemas.feeds import Feed
from warehouse.control import LoadRecord, Partition, session_scope

log = logging.getLogger(__name__)

FEED_TYPES: dict[str, pa.DataType] = {**ARROW_TYPES, "date": pa.date32()}


@dataclass(frozen=True)
class Published:
    """One partition version written by this run."""

    consumer: str
    feed: str
    partition_key: str
    version: int
    rows: int
    sha256: str


def parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic Parquet: fixed options, no timestamps in the file's metadata."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", compression_level=3, use_dictionary=True)
    return buffer.getvalue()


def feed_watermark(settings: Settings, feed: Feed) -> datetime | None:
    """How far every source of the feed is loaded: the least of their loaded windows' ends."""
    ends = []
    with session_scope(settings.control_url) as session:
        for stream in feed.sources:
            end = session.scalar(
                select(func.max(LoadRecord.window_end)).where(
                    LoadRecord.stream == stream, LoadRecord.status == "loaded"
                )
            )
            if end is None:
                return None
            ends.append(end)
    return min(ends)


def _partition_key(feed: Feed, values: dict[str, Any]) -> str:
    return "/".join(f"{col}={values[col]}" for col in feed.partition_by)


def _feed_schema(feed: Feed, fields: list[str]) -> pa.Schema:
    by_name = {f.name: f for f in feed.fields}
    return pa.schema([pa.field(name, FEED_TYPES[by_name[name].type]) for name in fields])


def _mart_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchall()
    return bool(found[0][0])


def publish_feed(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    keys: HubKeys,
    feed: Feed,
    policies: dict[str, Policy],
    days: list[date] | None = None,
) -> list[Published]:
    """Publish the feed's partitions (all, or those of `days`) for every consumer granted it."""
    if not _mart_exists(con, feed.mart):
        log.info("feed %s: mart %s not built yet, nothing to publish", feed.name, feed.mart)
        return []
    where, params = "", []
    if days is not None:
        if not days:
            return []
        where = f"WHERE day IN ({', '.join('?' * len(days))})"
        params = [d.isoformat() for d in days]
    columns = ", ".join(dict.fromkeys([*feed.partition_by, *feed.field_names()]))
    order = ", ".join(feed.order_by)
    mart = con.sql(f"SELECT {columns} FROM {feed.mart} {where} ORDER BY {order}", params=params).to_arrow_table()
    watermark = feed_watermark(settings, feed)
    written: list[Published] = []
    for policy in sorted(policies.values(), key=lambda p: p.consumer):
        if not policy.grants(feed.name):
            continue
        fields = policy.published_fields(feed)
        schema = _feed_schema(feed, fields)
        for values, rows in _partitions(feed, mart):
            table = (
                rows.select(fields)
                .cast(schema)
                .replace_schema_metadata({"neuron.feed": feed.name, "neuron.consumer": policy.consumer})
            )
            result = _publish_partition(settings, keys, feed, policy, _partition_key(feed, values), table, watermark)
            if result is not None:
                written.append(result)
    return written


def _partitions(feed: Feed, mart: pa.Table) -> list[tuple[dict[str, Any], pa.Table]]:
    """Split the mart rows by the feed's partition columns (rows keep their order)."""
    if mart.num_rows == 0:
        return []
    keys = mart.select(feed.partition_by).to_pylist()
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(tuple(key.values()), []).append(i)
    out = []
    for key_values, indices in sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        out.append((dict(zip(feed.partition_by, key_values, strict=True)), mart.take(indices)))
    return out


def _publish_partition(
    settings: Settings,
    keys: HubKeys,
    feed: Feed,
    policy: Policy,
    partition_key: str,
    table: pa.Table,
    watermark: datetime | None,
) -> Published | None:
    data = parquet_bytes(table)
    digest = hashlib.sha256(data).hexdigest()
    with session_scope(settings.control_url) as session:
        latest = session.scalars(
            select(Partition)
            .where(
                Partition.consumer == policy.consumer,
                Partition.feed == feed.name,
                Partition.partition_key == partition_key,
            )
            .order_by(Partition.version.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.sha256 == digest:
            return None  # unchanged: same bytes, no new version
        version = 1 if latest is None else latest.version + 1
        relative = Path(policy.consumer) / feed.name / partition_key / f"v{version}.parquet"
        path = settings.lake_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        now = datetime.now(UTC)
        manifest = {
            "feed": feed.name,
            "feed_version": feed.version,
            "consumer": policy.consumer,
            "partition": partition_key,
            "version": version,
            "supersedes": None if latest is None else latest.version,
            "file": relative.as_posix(),
            "sha256": digest,
            "bytes": len(data),
            "rows": table.num_rows,
            "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
            "policy": {"name": policy.consumer, "version": policy.version},
            "policy_fingerprint": policy.fingerprint,
            "watermark": watermark.isoformat() if watermark else None,
            "published_at": now.isoformat(),
        }
        jws = sign_json(manifest, keys.active_signing_key)
        path.with_name(f"v{version}.manifest.jws").write_text(jws)
        session.add(
            Partition(
                consumer=policy.consumer,
                feed=feed.name,
                partition_key=partition_key,
                version=version,
                path=relative.as_posix(),
                sha256=digest,
                rows=table.num_rows,
                watermark=watermark,
                policy_fingerprint=policy.fingerprint,
                manifest_jws=jws,
                published_at=now,
            )
        )
    log.info("published %s v%d for %s (%d rows)", feed.name, version, policy.consumer, table.num_rows)
    return Published(policy.consumer, feed.name, partition_key, version, table.num_rows, digest)
