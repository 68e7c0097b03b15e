"""The WeChat platform 「音乐之声」's backend database, simulated into a real database.

`PlatformSimulator` writes the platform's tables for a community, one day at a time,
into any SQLAlchemy URL (a SQLite file, MariaDB, PostgreSQL) — the same rows whatever
the database, deterministic from the seed. It keeps the tables in memory as well, so a
test can ask what a window of a table should hold (`expected`) and which rows carry an
injected fault (`fault_log`). Several communities share one database (every key starts
with `community_id`), which is how benchmarks scale it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import MetaData, Table, and_, bindparam, create_engine
from sqlalchemy.engine import Engine

from simulator.community import Community
from simulator.platform_activity import PlatformDay, Row, Tables
from simulator.platform_faults import PlatformFaults, inject
from simulator.platform_schema import DRIFTS, KEYS, apply_drift, create_schema

TZ = ZoneInfo("Asia/Shanghai")
FIRST_DAY = date(2026, 11, 1)  # the platform went live; the community's ages are as of this day


class PlatformSimulator:
    """A community's platform database, written day by day."""

    def __init__(
        self,
        community: Community | None = None,
        faults: PlatformFaults | None = None,
        first_day: date = FIRST_DAY,
    ) -> None:
        self.community = community or Community()
        self.faults = faults if faults is not None else PlatformFaults()
        self.first_day = first_day
        self.tables: Tables = {name: {} for name in KEYS}
        self.days_written = 0
        self.drifted: set[str] = set()
        self._unionids: set[str] = set()

    @property
    def next_day(self) -> date:
        return self.first_day + timedelta(days=self.days_written)

    def engine(self, url: str) -> Engine:
        """A writable engine on the platform database (the simulator is the platform)."""
        return create_engine(url, pool_pre_ping=True)

    def write_days(self, url: str, days: int = 1) -> None:
        """Create the schema if needed and write the next `days` days of activity."""
        engine = self.engine(url)
        try:
            create_schema(engine)
            for _ in range(days):
                self._write_day(engine)
        finally:
            engine.dispose()

    def drift(self, url: str, kind: str) -> None:
        """Apply one of the vendor's schema changes (platform_schema.DRIFTS) from now on."""
        engine = self.engine(url)
        try:
            apply_drift(engine, kind)
        finally:
            engine.dispose()
        self.drifted.add(kind)

    # --- what the tests compare against ------------------------------------------------------

    def expected(self, table: str, since: datetime, until: datetime) -> list[Row]:
        """The rows of `table` whose current version was updated in [since, until)."""
        rows = [r for r in self.tables[table].values() if since <= r["updated_at"].replace(tzinfo=TZ) < until]
        return sorted(rows, key=lambda r: (r["updated_at"], r["community_id"], r[KEYS[table]]))

    @property
    def fault_log(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(table, id) -> (fault kind, field) for every row whose current version is faulty."""
        return {(t, k): r["_fault"] for t, rows in self.tables.items() for k, r in rows.items() if "_fault" in r}

    def ballot_receipts(self) -> dict[str, str]:
        """The receipt each ballot's voter holds, by ballot id (the current version of each ballot)."""
        return {k: v["_receipt"] for k, v in sorted(self.tables["votes"].items()) if "_receipt" in v}

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The UTC bounds of one local day."""
        start = datetime.combine(day, datetime.min.time(), TZ)
        return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)

    def ground_truth(self) -> dict[str, list[str]]:
        """Every direct identifier the platform holds, including the faulty and drifted ones."""
        truth = {k: set(v) for k, v in self.community.ground_truth().items()}
        for field, kind in (("name", "names"), ("id_number", "id_numbers"), ("phone", "phones"), ("openid", "openids")):
            truth[kind] |= {r[field] for r in self.tables["residents"].values()}
        truth["addresses"] |= {h["address"] for h in self.tables["households"].values()}
        truth["trade_nos"] = {p["trade_no"] for p in self.tables["fee_payments"].values() if p["trade_no"]}
        truth["unionids"] = set(self._unionids)
        # Receipts are the voters' secrets: only their commitments may reach the hub.
        truth["ballot_receipts"] = {v["_receipt"] for v in self.tables["votes"].values() if "_receipt" in v}
        # The platform's own keys single people and flats out too (its tables are joined on them).
        truth["resident_ids"] = set(self.tables["residents"])
        truth["household_ids"] = set(self.tables["households"])
        return {k: sorted(v) for k, v in sorted(truth.items())}

    # --- writing -------------------------------------------------------------------------------

    def _write_day(self, engine: Engine) -> None:
        day = self.next_day
        builder = PlatformDay(self.community, self.tables, day, self.first_day, self.community.seed)
        rng = Random(f"{self.community.seed}:{self.community.community_id}:{day.isoformat()}:faults")
        final: dict[tuple[str, str], Row] = {}
        for table, row in inject(rng, self.faults, builder.writes()):
            final[(table, row[KEYS[table]])] = row  # the day's last version of each row
        by_table: dict[str, tuple[list[Row], list[Row]]] = {}
        for (table, key), row in final.items():
            inserts, updates = by_table.setdefault(table, ([], []))
            (updates if key in self.tables[table] else inserts).append(row)
        with engine.begin() as conn:
            for table, (inserts, updates) in sorted(by_table.items()):
                live = Table(table, MetaData(), autoload_with=conn)
                key = KEYS[table]
                if inserts:
                    conn.execute(live.insert(), [self._shape(table, r) for r in inserts])
                if updates:
                    where = and_(live.c.community_id == bindparam("_cid"), live.c[key] == bindparam("_key"))
                    params = [{**self._shape(table, r), "_cid": r["community_id"], "_key": r[key]} for r in updates]
                    conn.execute(live.update().where(where), params)
        for (table, key), row in final.items():
            self.tables[table][key] = row
        self.days_written += 1

    def _shape(self, table: str, row: Row) -> dict[str, Any]:
        """A row as the live (possibly drifted) schema takes it; hidden markers left out."""
        out = {k: v for k, v in row.items() if not k.startswith("_")}
        if table == DRIFTS["added_column"] and "added_column" in self.drifted:
            unionid = "o6_bm" + Random(f"{out['resident_id']}:unionid").choice("ABCDEFGH") + out["openid"][5:]
            self._unionids.add(unionid)
            out["unionid"] = unionid
        if table == DRIFTS["renamed_column"] and "renamed_column" in self.drifted:
            out["content"] = out.pop("description")
        if table == DRIFTS["changed_type"] and "changed_type" in self.drifted and out["hours"] is not None:
            out["hours"] = f"{out['hours']:g}小时"
        return out
