"""The district's Iceberg lake: one table per feed, partitioned by community and day (or month).

Exactly once: every commit writes, in its snapshot summary, the ledger of the partition
versions it holds (`neuron.partitions`: JSON [[hub, partition, version, sha256], …]). Before
committing, the committer reads the ledger of every snapshot of the table and leaves out
what is already held, so replaying a run, or a partition a killed run had committed, is a
no-op. A newer version of a partition replaces its predecessor in the same commit (an
overwrite filtered on community and day: Iceberg's delete and append land as one atomic
catalog update). One committer per table at a time (district.locks).

Snapshots are never expired: the ledger lives in their summaries (docs/district.md says what
expiring them would take).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import And, BooleanExpression, EqualTo, Or
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform, MonthTransform

from district.config import DistrictSettings
from district.locks import committer_lock
from kernel.errors import IntegrityError

log = logging.getLogger(__name__)

LEDGER = "neuron.partitions"
COMPACTION = "neuron.compaction"
FEED = "neuron.feed"  # the table property naming the feed (table names lose the feed's dots)
COMMUNITY = "community_id"
TIME_COLUMNS = ("day", "month")
# Appends merge small manifests as they go, so the manifest list stays short without a rewrite.
TABLE_PROPERTIES = {
    "commit.manifest-merge.enabled": "true",
    "commit.manifest.min-count-to-merge": "16",
    "write.parquet.compression-codec": "zstd",
}


@dataclass(frozen=True)
class Held:
    """What the district holds of one hub's partition: its version and SHA-256."""

    version: int
    sha256: str


@dataclass(frozen=True)
class Verified:
    """One partition version that passed every check, ready to commit."""

    hub: str
    feed: str
    partition_key: str
    version: int
    sha256: str
    rows: pa.Table

    @property
    def values(self) -> dict[str, str]:
        return parse_partition_key(self.partition_key)


@dataclass
class CommitResult:
    """What one commit to one table did."""

    feed: str
    committed: list[Verified] = field(default_factory=list)
    replaced: int = 0  # partitions whose predecessor this commit superseded
    already_held: int = 0
    snapshot_id: int | None = None


def parse_partition_key(key: str) -> dict[str, str]:
    """`community_id=x/day=2026-11-20` as a dict; IntegrityError unless community and one time column."""
    values: dict[str, str] = {}
    for part in key.split("/"):
        name, sep, value = part.partition("=")
        if not sep or not name or not value or name in values:
            raise IntegrityError("a partition key from the hub is not community and day or month")
        values[name] = value
    times = [c for c in TIME_COLUMNS if c in values]
    if set(values) != {COMMUNITY, *times} or len(times) != 1:
        raise IntegrityError("a partition key from the hub is not community and day or month")
    try:
        date.fromisoformat(values[times[0]])
    except ValueError as exc:
        raise IntegrityError("a partition key's day or month is not an ISO date") from exc
    return values


def time_column(key: str) -> str:
    return next(c for c in TIME_COLUMNS if c in parse_partition_key(key))


def table_name(feed: str) -> str:
    """The Iceberg table of a feed: `env.air_quality_hourly` → `env_air_quality_hourly`."""
    return feed.replace(".", "_").replace("-", "_")


def open_catalog(settings: DistrictSettings) -> Catalog:
    """The district's SQL catalog (SQLite under its home, or PostgreSQL) and warehouse."""
    settings.home_path.mkdir(parents=True, exist_ok=True)
    properties = {"uri": settings.catalog_url, "warehouse": settings.warehouse_location}
    catalog = SqlCatalog(settings.name, **{**properties, **settings.catalog_properties})
    catalog.create_namespace_if_not_exists(settings.namespace)
    return catalog


def ledger_entries(table: Table) -> Iterable[tuple[str, str, int, str]]:
    """Every (hub, partition, version, sha256) recorded in the table's snapshots, oldest first."""
    for snapshot in table.snapshots():
        summary = snapshot.summary
        text = summary.additional_properties.get(LEDGER) if summary is not None else None
        if text:
            for hub, key, version, sha in json.loads(text):
                yield str(hub), str(key), int(version), str(sha)


def ledger(table: Table) -> dict[tuple[str, str], Held]:
    """The newest version of each (hub, partition) the table has committed."""
    held: dict[tuple[str, str], Held] = {}
    for hub, key, version, sha in ledger_entries(table):
        if (hub, key) not in held or held[(hub, key)].version < version:
            held[(hub, key)] = Held(version, sha)
    return held


class Lake:
    """The district's tables in one catalog."""

    def __init__(self, settings: DistrictSettings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or open_catalog(settings)

    def identifier(self, feed: str) -> str:
        return f"{self.settings.namespace}.{table_name(feed)}"

    def load(self, feed: str) -> Table | None:
        try:
            return self.catalog.load_table(self.identifier(feed))
        except NoSuchTableError:
            return None

    def tables(self) -> list[str]:
        """The names of the district's tables (feed names with dots as underscores)."""
        return sorted(ident[-1] for ident in self.catalog.list_tables(self.settings.namespace))

    def feeds(self) -> dict[str, str]:
        """Feed name → table name, for every table of the district."""
        found = {}
        for name in self.tables():
            table = self.catalog.load_table(f"{self.settings.namespace}.{name}")
            found[table.properties.get(FEED, name)] = name
        return found

    def held(self, feed: str) -> dict[tuple[str, str], Held]:
        table = self.load(feed)
        return {} if table is None else ledger(table)

    def ledgers(self) -> dict[str, dict[tuple[str, str], Held]]:
        """Every table's ledger, by table name."""
        return {name: ledger(self.catalog.load_table(f"{self.settings.namespace}.{name}")) for name in self.tables()}

    def _create(self, feed: str, schema: pa.Schema, time: str) -> Table:
        # Field ids are assigned by the catalog; the spec needs them, so create, then set the spec.
        table = self.catalog.create_table_if_not_exists(
            self.identifier(feed), schema=_nullable(schema), properties={**TABLE_PROPERTIES, FEED: feed}
        )
        if table.spec().is_unpartitioned():
            monthly = time == "month" or self.settings.partition_granularity == "month"
            transform: MonthTransform | DayTransform = MonthTransform() if monthly else DayTransform()
            with table.update_spec() as update:
                update.add_identity(COMMUNITY)
                update.add_field(time, transform, f"{time}_{'month' if monthly else 'day'}")
            table = self.catalog.load_table(self.identifier(feed))
        return table

    def commit(self, feed: str, batch: list[Verified], run: str = "") -> CommitResult:
        """Commit the batch's new partition versions to the feed's table, exactly once."""
        result = CommitResult(feed)
        if not batch:
            return result
        time = time_column(batch[0].partition_key)
        with committer_lock(self.settings, self.identifier(feed)):
            table = self.load(feed) or self._create(feed, batch[0].rows.schema, time)
            held = ledger(table)
            newest: dict[tuple[str, str], Verified] = {}
            for item in batch:
                key = (item.hub, item.partition_key)
                before = held.get(key)
                if before is not None and before.version == item.version and before.sha256 != item.sha256:
                    raise IntegrityError(
                        f"hub {item.hub} served {feed} partition {item.partition_key} v{item.version} with other "
                        "bytes than the district committed before"
                    )
                if before is not None and before.version >= item.version:
                    result.already_held += 1
                    continue
                if key not in newest or newest[key].version < item.version:
                    newest[key] = item
            fresh = list(newest.values())
            if not fresh:
                return result
            table = self._evolve(table, [item.rows.schema for item in fresh])
            target = table.schema().as_arrow()
            data = pa.concat_tables([_conform(item.rows, target) for item in fresh])
            entries = [[item.hub, item.partition_key, item.version, item.sha256] for item in fresh]
            properties = {LEDGER: json.dumps(entries, separators=(",", ":"))}
            if run:
                properties["neuron.run"] = run
            replaced = [item for item in fresh if (item.hub, item.partition_key) in held]
            with table.transaction() as tx:
                if replaced:
                    tx.overwrite(data, overwrite_filter=_partitions_filter(replaced), snapshot_properties=properties)
                else:
                    tx.append(data, snapshot_properties=properties)
            table = table.refresh()
            result.committed, result.replaced = fresh, len(replaced)
            current = table.current_snapshot()
            result.snapshot_id = current.snapshot_id if current is not None else None
        log.info("%s: committed %d partition version(s), %d replaced", feed, len(fresh), len(replaced))
        return result

    def _evolve(self, table: Table, schemas: list[pa.Schema]) -> Table:
        """Add columns a hub publishes that the table lacks (hubs' policies may grant more fields)."""
        known = set(table.schema().column_names)
        extra = [s for s in schemas if set(s.names) - known]
        if not extra:
            return table
        with table.update_schema() as update:
            for schema in extra:
                update.union_by_name(_nullable(schema))
        return table.refresh()

    def compact(self, feed: str) -> tuple[int, int]:
        """Rewrite every Iceberg partition held in more than one data file as one file.

        Returns (files before, files after). The rewrite is an overwrite of exactly those
        partitions with their own rows, recorded as a compaction (no ledger entry).
        """
        with committer_lock(self.settings, self.identifier(feed)):
            table = self.load(feed)
            if table is None or table.current_snapshot() is None:
                return 0, 0
            files = table.inspect.files().select(["partition"]).to_pylist()
            before = len(files)
            counts: dict[tuple[Any, ...], int] = {}
            for row in files:
                part = tuple(sorted(row["partition"].items()))
                counts[part] = counts.get(part, 0) + 1
            crowded = [p for p, n in counts.items() if n > 1]
            if not crowded:
                return before, before
            spec = table.spec()
            names = {f.name: table.schema().find_column_name(f.source_id) for f in spec.fields}
            filters = []
            for members in crowded:
                filters.append(_partition_value_filter(dict(members), names, spec))
            where = reduce(Or, filters) if len(filters) > 1 else filters[0]
            rows = table.scan(row_filter=where).to_arrow()
            with table.transaction() as tx:
                tx.overwrite(rows, overwrite_filter=where, snapshot_properties={COMPACTION: str(len(crowded))})
            table = table.refresh()
            return before, len(table.inspect.files())


def _partition_value_filter(
    part: dict[str, Any], names: dict[str, str | None], spec: PartitionSpec
) -> BooleanExpression:
    """Rows of one Iceberg partition (identity community, day or month of the time column)."""
    from datetime import timedelta

    clauses: list[BooleanExpression] = []
    for field_ in spec.fields:
        source = names[field_.name]
        value = part[field_.name]
        if isinstance(field_.transform, IdentityTransform):
            clauses.append(_predicate(EqualTo, str(source), value))
        elif isinstance(field_.transform, DayTransform):
            day = date(1970, 1, 1) + timedelta(days=int(value))
            clauses.append(_predicate(EqualTo, str(source), day.isoformat()))
        else:  # month: months since 1970-01
            from pyiceberg.expressions import GreaterThanOrEqual, LessThan

            first = date(1970 + int(value) // 12, int(value) % 12 + 1, 1)
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            clauses.append(_predicate(GreaterThanOrEqual, str(source), first.isoformat()))
            clauses.append(_predicate(LessThan, str(source), following.isoformat()))
    return reduce(And, clauses)


def _predicate(kind: Callable[..., BooleanExpression], column: str, value: str) -> BooleanExpression:
    # Called through Callable: pydantic's mypy plugin reads the model's fields, not pyiceberg's own
    # (term, literal) __init__.
    return kind(column, value)


def _partitions_filter(items: list[Verified]) -> BooleanExpression:
    clauses: list[BooleanExpression] = []
    for item in items:
        values = item.values
        time = next(c for c in TIME_COLUMNS if c in values)
        clauses.append(And(_predicate(EqualTo, COMMUNITY, values[COMMUNITY]), _predicate(EqualTo, time, values[time])))
    return reduce(Or, clauses) if len(clauses) > 1 else clauses[0]


def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema])


def _conform(rows: pa.Table, target: pa.Schema) -> pa.Table:
    """The rows in the table's column order and types; columns the hub does not grant are null."""
    columns = []
    for field_ in target:
        if field_.name in rows.column_names:
            columns.append(rows.column(field_.name).cast(field_.type))
        else:
            columns.append(pa.nulls(rows.num_rows, field_.type))
    return pa.Table.from_arrays(columns, schema=target)
