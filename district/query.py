"""District questions across communities, in DuckDB over the Iceberg tables.

Engines (the same SQL, the same results; the test checks they agree):
- `arrow`: pyiceberg plans the scan and reads it to Arrow; DuckDB queries the Arrow tables.
- `files`: DuckDB reads the Parquet data files the table's current snapshot lists. Exact for
  the district's tables because they never hold delete files (every replacement rewrites
  whole files: copy-on-write), so the current data files are the table.
- `iceberg`: DuckDB's own iceberg extension (`iceberg_scan` of the table's metadata file),
  where it is installed; DuckDB downloads extensions on first use, which an offline machine
  cannot (this one answers "Failed to download extension"), so it is never the default.

Means are taken over DECIMAL values: a float sum depends on the order rows arrive in, which
differs between engines, and a mean on a rounding boundary would then round both ways.

Each query sees the tables by name (`env_air_quality_hourly`, `safety_alarms`, …) and
`communities` (community_id, subdistrict: from the district's config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import duckdb
import pyarrow as pa

from district.config import DistrictSettings
from district.lake import Lake
from kernel.errors import ConfigError

Engine = Literal["arrow", "files", "iceberg"]


@dataclass(frozen=True)
class Question:
    description: str
    tables: tuple[str, ...]
    sql: str


QUESTIONS: dict[str, Question] = {
    "air_quality_by_hour": Question(
        "PM2.5, PM10 and noise across communities, hour by hour (UTC)",
        ("env_air_quality_hourly",),
        """
        SELECT hour_start,
               count(DISTINCT community_id) AS communities,
               count(*) AS stations,
               round(avg(pm25_avg::DECIMAL(18, 3)), 1)::DOUBLE AS pm25_avg,
               max(pm25_max) AS pm25_max,
               round(avg(pm10_avg::DECIMAL(18, 3)), 1)::DOUBLE AS pm10_avg,
               round(avg(noise_laeq_db::DECIMAL(18, 3)), 1)::DOUBLE AS noise_laeq_db
        FROM env_air_quality_hourly
        GROUP BY hour_start
        ORDER BY hour_start
        """,
    ),
    "alarm_response_by_subdistrict": Question(
        "Alarms and how fast they were acknowledged, by subdistrict",
        ("safety_alarms",),
        """
        SELECT coalesce(c.subdistrict, '(not in config)') AS subdistrict,
               count(DISTINCT a.community_id) AS communities,
               count(*) AS alarms,
               count(a.response_seconds) AS acknowledged,
               round(avg(a.response_seconds), 1) AS mean_response_s,
               quantile_cont(a.response_seconds, 0.5) AS median_response_s,
               quantile_cont(a.response_seconds, 0.9) AS p90_response_s,
               count(*) FILTER (WHERE a.escalated) AS escalated
        FROM safety_alarms a LEFT JOIN communities c USING (community_id)
        GROUP BY 1
        ORDER BY 1
        """,
    ),
    "holdings": Question(
        "What the district holds: communities, partitions and rows per table",
        (),
        "",  # built from the tables present
    ),
}


def _communities(settings: DistrictSettings) -> pa.Table:
    hubs = settings.hubs
    return pa.table(
        {"community_id": [h.community_id for h in hubs], "subdistrict": [h.subdistrict or None for h in hubs]},
        schema=pa.schema([("community_id", pa.string()), ("subdistrict", pa.string())]),
    )


def connect(
    settings: DistrictSettings, lake: Lake, engine: Engine = "arrow", tables: list[str] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the district's tables (all, or those named) as views."""
    con = duckdb.connect()
    con.register("communities", _communities(settings))
    present = lake.tables()
    if engine == "iceberg":
        try:
            con.execute("LOAD iceberg")
        except duckdb.Error as exc:
            raise ConfigError(
                "DuckDB's iceberg extension is not installed and cannot be downloaded here; use --engine arrow or files"
            ) from exc
    for name in tables if tables is not None else present:
        if name not in present:
            raise ConfigError(f"the district holds no table {name} yet; run `neuron district gather` first")
        table = lake.catalog.load_table(f"{settings.namespace}.{name}")
        if engine == "arrow":
            con.register(name, table.scan().to_arrow())
        elif engine == "files":
            tasks = list(table.scan().plan_files())
            if any(task.delete_files for task in tasks):
                raise ConfigError(f"table {name} has delete files; use --engine arrow")
            if tasks:
                local = [task.file.file_path.removeprefix("file://") for task in tasks]
                con.read_parquet(local, union_by_name=True).create_view(name)
            else:
                con.register(name, table.schema().as_arrow().empty_table())
        else:
            location = table.metadata_location.replace("'", "''")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM iceberg_scan('{location}')")
    return con


def holdings_sql(tables: list[str]) -> str:
    parts = [
        f"SELECT '{name}' AS table_name, count(DISTINCT community_id) AS communities, count(*) AS row_count FROM {name}"
        for name in tables
    ]
    return " UNION ALL ".join(parts) + " ORDER BY table_name" if parts else "SELECT NULL AS table_name WHERE false"


def run_question(settings: DistrictSettings, name: str, engine: Engine = "arrow", lake: Lake | None = None) -> pa.Table:
    """The answer to a named question as an Arrow table."""
    if name not in QUESTIONS:
        raise ConfigError(f"no question {name!r}; ask one of: {', '.join(QUESTIONS)}")
    lake = lake or Lake(settings)
    question = QUESTIONS[name]
    if name == "holdings":
        tables = lake.tables()
        con = connect(settings, lake, engine, tables)
        return con.sql(holdings_sql(tables)).to_arrow_table()
    con = connect(settings, lake, engine, list(question.tables))
    return con.sql(question.sql).to_arrow_table()


def run_sql(settings: DistrictSettings, sql: str, engine: Engine = "arrow", lake: Lake | None = None) -> pa.Table:
    """Any read-only SQL over every table of the district (and `communities`)."""
    lake = lake or Lake(settings)
    return connect(settings, lake, engine).sql(sql).to_arrow_table()
