"""Publish feeds: per consumer, its sharing policy applied to the mart rows (privacy.view:
operators, consent, k-anonymity), written as immutable, deterministic Parquet partitions with
signed manifests; every publication, withholding and block is an entry in the audit log.

A partition is (community, period). Its bytes depend only on the mart rows and the
policy, so re-publishing unchanged data gives the same SHA-256 and no new version; a
change (late data, a new policy) writes version N+1 whose manifest names the one it
supersedes. Files are never overwritten: consumers can always verify what they hold.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from kernel.errors import ConfigError, PublishBlocked
from kernel.settings import Settings
from privacy.deid_report import deidentification_report
from privacy.disclosure import check_across_versions
from privacy.jws import sign_json
from privacy.keys import HubKeys
from privacy.policy import Policy
from privacy.view import ViewContext, Withheld, consumer_view, epoch_of
from schemas.feeds import Feed
from warehouse import lake
from warehouse.audit import append_audit
from warehouse.consent import consenting_households
from warehouse.control import session_scope
from warehouse.models import LoadRecord, Partition
from warehouse.recipients import recipients_by_policy

log = logging.getLogger(__name__)


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


# What a partition value may be, as it becomes a folder of the lake: no separator, no "..",
# nothing a shell or a URL would read twice (issue 16: no source value forms a path).
SAFE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _partition_key(feed: Feed, values: dict[str, Any]) -> str:
    parts = []
    for col in feed.partition_by:
        text = str(values[col])
        if not SAFE_VALUE.match(text) or ".." in text:
            raise PublishBlocked(f"{feed.name}: a value of partition column {col} is not a safe folder name")
        parts.append(f"{col}={text}")
    return "/".join(parts)


def publish_feed(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    keys: HubKeys,
    feed: Feed,
    policies: dict[str, Policy],
    days: list[date] | None = None,
) -> list[Published]:
    """Publish the feed's partitions (all, or those of `days`) for every consumer granted it.

    A partition a consumer cannot be given yet (no encryption key) is withheld and audited;
    one breaking k-anonymity is blocked: the rest is published, then PublishBlocked says why.
    """
    exists = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    if not con.execute(exists, [feed.mart]).fetchall()[0][0]:
        log.info("feed %s: mart %s not built yet, nothing to publish", feed.name, feed.mart)
        return []
    where, params = "", []
    if days is not None:
        if not days:
            return []
        # A monthly feed's mart carries its month's first day as `day`: a touched day
        # republishes its whole month, never a part of it.
        if "month" in feed.partition_by:
            days = sorted({d.replace(day=1) for d in days})
        where = f"WHERE day IN ({', '.join('?' * len(days))})"
        params = [d.isoformat() for d in days]
    # Every mart column: per-consumer columns (sealed values) ride along; the policy decides what leaves.
    query = f"SELECT * FROM {feed.mart} {where} ORDER BY {', '.join(feed.order_by)}"
    mart = con.sql(query, params=params).to_arrow_table()
    missing = set(feed.field_names()) - set(mart.column_names)
    if missing:
        raise ConfigError(f"feed {feed.name}: mart {feed.mart} lacks field(s) {', '.join(sorted(missing))}")
    watermark = feed_watermark(settings, feed)
    consenting = consenting_households(settings, feed.consent) if feed.consent else None
    consents = _in_home_consents(settings, feed)
    recipients = recipients_by_policy(settings)
    written: list[Published] = []
    blocked: list[str] = []
    for policy in sorted(policies.values(), key=lambda p: p.consumer):
        if not policy.grants(feed.name):
            continue
        period = policy.pseudonym_epoch or settings.pseudonym_epoch
        for values, rows in _partitions(feed, mart):
            key = _partition_key(feed, values)
            # The epoch is the data's (the partition's day or month), so a re-publish gives the same tokens.
            day = next((v for k in ("day", "month") if isinstance(v := values.get(k), date)), None)
            day = day or datetime.now(UTC).date()
            epoch = epoch_of(day, period)
            ctx = ViewContext(keys, epoch, consenting, settings.community_name, settings.timezone, recipients, consents)
            try:
                view = consumer_view(rows, feed, policy, ctx)
                held = _earlier_versions(settings, feed, policy, key)
                check_across_versions(feed, policy, view, held, policy.k_for(feed.name))
            except Withheld as exc:
                log.warning("withheld %s %s from %s: %s", feed.name, key, policy.consumer, exc)
                _audit_refusal(settings, feed, policy, key, "withheld", str(exc))
                continue
            except PublishBlocked as exc:
                log.error("blocked %s %s for %s: %s", feed.name, key, policy.consumer, exc)
                _audit_refusal(settings, feed, policy, key, "blocked", str(exc))
                blocked.append(f"{key}: {exc}")
                continue
            table = view.replace_schema_metadata({"neuron.feed": feed.name, "neuron.consumer": policy.consumer})
            result = _publish_partition(settings, keys, feed, policy, key, table, watermark)
            if result is not None:
                written.append(result)
    if blocked:
        raise PublishBlocked(f"{len(blocked)} partition(s) not published:\n" + "\n".join(blocked))
    return written


def _earlier_versions(settings: Settings, feed: Feed, policy: Policy, key: str) -> list[pa.Table]:
    """The versions of a partition this consumer already holds (aggregate feeds only: the
    disclosure check compares a new version's counts with them)."""
    if feed.kind != "aggregate":
        return []
    with session_scope(settings.control_url) as session:
        held = session.execute(
            select(Partition.path, Partition.sha256).where(
                Partition.consumer == policy.consumer, Partition.feed == feed.name, Partition.partition_key == key
            )
        ).all()
    return [
        _published_table(settings.lake_path / path, sha256)
        for path, sha256 in held
        if (settings.lake_path / path).exists()
    ]


@lru_cache(maxsize=512)
def _published_table(path: Path, sha256: str) -> pa.Table:
    """A published partition version, read once per process: its file is immutable (a change is a
    new version), and an hourly window republishing its day would read every earlier version
    again (bench window_costs). The recorded SHA-256 is part of the key, so a file recorded anew
    under the same path is read anew."""
    del sha256  # part of the cache key only
    return pq.read_table(path)


def _audit_refusal(settings: Settings, feed: Feed, policy: Policy, key: str, outcome: str, reason: str) -> None:
    with session_scope(settings.control_url) as session:
        append_audit(
            session,
            actor="hub",
            action="publish",
            outcome=outcome,
            feed=feed.name,
            policy_fingerprint=policy.fingerprint,
            detail={"consumer": policy.consumer, "partition": key, "reason": reason},
        )


def _in_home_consents(settings: Settings, feed: Feed) -> dict[str, frozenset[str]]:
    """The households that opted in, per consent function the feed's in-home rows fall under."""
    if feed.in_home is None or feed.in_home.by is None:
        return {}
    functions = {feed.in_home.function_of(c) for c in feed.in_home.categories}
    return {f: frozenset(consenting_households(settings, f)) for f in sorted(x for x in functions if x)}


def _partitions(feed: Feed, mart: pa.Table) -> list[tuple[dict[str, Any], pa.Table]]:
    """Split the mart rows by the feed's partition columns (rows keep their order).

    Grouped by Arrow, not row by row in Python: a row-level feed of ten communities' day has
    over a million rows, and a Python dict per row cost seconds and most of the peak memory
    (bench feeds_day). A partition whose rows are one run of the mart's order (the usual case:
    marts are ordered by community and time) is a zero-copy slice, not a copy; the Parquet
    bytes are the same either way.
    """
    if mart.num_rows == 0:
        return []
    rows = mart.select(feed.partition_by).append_column("_row", pa.array(range(mart.num_rows), pa.int64()))
    groups = rows.group_by(feed.partition_by, use_threads=False).aggregate([("_row", "list")])
    keys = groups.select(feed.partition_by).to_pylist()
    out = []
    for i in sorted(range(len(keys)), key=lambda g: tuple(str(v) for v in keys[g].values())):
        indices = groups.column("_row_list")[i].values
        indices = indices.take(pc.array_sort_indices(indices))
        first, count = indices[0].as_py(), len(indices)
        contiguous = indices[-1].as_py() - first + 1 == count  # sorted and distinct: one run
        out.append((keys[i], mart.slice(first, count) if contiguous else mart.take(indices)))
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
    hidden_files: list[Path] = []
    try:
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
            treatment = policy.treatment_fingerprint(feed.name)
            current = latest is not None and policy.in_force_for(
                feed.name, latest.treatment_fingerprint, latest.policy_fingerprint
            )
            if latest is not None and latest.sha256 == digest and current:
                return None  # unchanged: same bytes under the same treatment, no new version
            version = 1 if latest is None else latest.version + 1
            relative = Path(policy.consumer) / feed.name / partition_key / f"v{version}.parquet"
            path = settings.lake_path / relative
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
                "deidentification": deidentification_report(feed, policy, table),
            }
            jws = sign_json(manifest, keys.active_signing_key)
            # Hidden until recorded: a file a consumer can see always has its record and audit entry.
            hidden_files.append(lake.write_hidden(path, data))
            hidden_files.append(lake.write_hidden(lake.manifest_of(path), jws.encode()))
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
                    treatment_fingerprint=treatment,
                    manifest_jws=jws,
                    published_at=now,
                )
            )
            append_audit(
                session,
                actor="hub",
                action="publish",
                outcome="published",
                feed=feed.name,
                rows=table.num_rows,
                policy_fingerprint=policy.fingerprint,
                detail={
                    "consumer": policy.consumer,
                    "partition": partition_key,
                    "version": version,
                    "sha256": digest,
                },
                at=now,
            )
    except SQLAlchemyError as exc:
        # Nothing was recorded, so nothing may stay: the hidden files go too.
        for tmp in hidden_files:
            tmp.unlink(missing_ok=True)
        raise lake.control_error("cannot record a publication", exc) from None
    except BaseException:
        for tmp in hidden_files:
            tmp.unlink(missing_ok=True)
        raise
    # Recorded and audited: now the files may be seen (a crash here is finished by reconcile_lake).
    lake.reveal(path)
    lake.reveal(lake.manifest_of(path))
    log.info("published %s v%d for %s (%d rows)", feed.name, version, policy.consumer, table.num_rows)
    return Published(policy.consumer, feed.name, partition_key, version, table.num_rows, digest)
