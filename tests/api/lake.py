"""What the publisher would have written: small Parquet partitions of one feed, their
signed manifests and their rows in the control database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kernel.settings import Settings
from privacy.jws import sign_json
from privacy.keys import SigningKey
from privacy.policy import load_policies
from schemas.contract import ARROW_TYPES
from schemas.feeds import load_feeds
from warehouse.control import session_scope
from warehouse.models import Partition

FEED = "traffic.vehicle_flow_hourly"
COMMUNITY = "music-square"
ARROW = {**ARROW_TYPES, "date": pa.date32()}


@dataclass(frozen=True)
class Published:
    """One partition version the fixture published, with the rows it holds."""

    seq: int
    consumer: str
    partition_key: str
    version: int
    rows: list[dict[str, Any]]


def flow_rows(day: date, version: int, count: int) -> list[dict[str, Any]]:
    """Hourly gate counts; the version is visible in the numbers, so stale rows are recognisable."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return [
        {
            "community_id": COMMUNITY,
            "day": day,
            "gate_code": f"G{hour % 2 + 1}",
            "hour_start": start + timedelta(hours=hour),
            "entries": 1000 * version + hour,
            "exits": 900 * version + hour,
            "resident_entries": 10 + hour,
            "visitor_entries": 3,
            "new_energy_entries": hour % 4,
            "charges_fen": 500 * hour,
        }
        for hour in range(count)
    ]


def as_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as the API renders them: dates and timestamps in ISO 8601."""
    return [{k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()} for row in rows]


def publish(
    settings: Settings,
    key: SigningKey,
    consumer: str,
    day: date,
    version: int,
    count: int,
    fields: list[str] | None = None,
) -> Published:
    """What the publisher does: a Parquet file of the granted fields, its signed manifest, a row.

    `fields` overrides the policy's fields (to publish what a narrowed policy no longer grants).
    """
    feed = load_feeds()[FEED]
    policy = load_policies(settings.policies_dir)[consumer]
    fields = fields or policy.published_fields(feed)
    types = {f.name: ARROW[f.type] for f in feed.fields}
    schema = pa.schema([(name, types[name]) for name in fields])
    rows = [{name: row[name] for name in fields} for row in flow_rows(day, version, count)]
    partition_key = f"community_id={COMMUNITY}/day={day.isoformat()}"
    watermark = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=count)
    table = pa.Table.from_pylist(rows, schema=schema)
    treatment = policy.treatment_fingerprint(FEED)
    seq = publish_table(
        settings, key, consumer, FEED, partition_key, version, table, watermark, policy.fingerprint, treatment
    )
    return Published(seq, consumer, partition_key, version, rows)


def publish_table(
    settings: Settings,
    key: SigningKey,
    consumer: str,
    feed: str,
    partition_key: str,
    version: int,
    table: pa.Table,
    watermark: datetime | None = None,
    policy_fingerprint: str = "sha256:test",
    treatment_fingerprint: str | None = None,
) -> int:
    """Write one partition version of any feed (file, signed manifest, control-DB row); its seq."""
    relative = f"{consumer}/{feed}/{partition_key}/v{version}.parquet"
    path = settings.lake_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    data = path.read_bytes()
    manifest = {
        "feed": feed,
        "consumer": consumer,
        "partition": partition_key,
        "version": version,
        "supersedes": version - 1 if version > 1 else None,
        "file": relative,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "rows": table.num_rows,
        "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
        "policy_fingerprint": policy_fingerprint,
        "watermark": watermark.isoformat() if watermark else None,
        "published_at": datetime.now(UTC).isoformat(),
    }
    with session_scope(settings.control_url) as session:
        partition = Partition(
            consumer=consumer,
            feed=feed,
            partition_key=partition_key,
            version=version,
            path=relative,
            sha256=manifest["sha256"],
            rows=table.num_rows,
            watermark=watermark,
            policy_fingerprint=policy_fingerprint,
            treatment_fingerprint=treatment_fingerprint,
            manifest_jws=sign_json(manifest, key),
        )
        session.add(partition)
        session.flush()
        return partition.seq
