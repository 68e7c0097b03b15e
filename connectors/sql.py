"""The SQL database connector family: read-only, incremental by updated time, keyset-paged.

A source table is read for the half-open window [since, until) of its cursor column
(`updated_at`), ordered by (cursor, primary key), in pages of at most `batch_size` rows.
Each page starts strictly after the last (cursor, key) it has seen, so rows that share
one timestamp across a page boundary are neither skipped nor read twice (paging with
OFFSET, or with a bare `updated_at > last`, would double or lose them).

The connection cannot write: SQLite is opened with `mode=ro`, PostgreSQL sessions start
with `default_transaction_read_only`, MariaDB/MySQL sessions are `READ ONLY`. The whole
window is read in one repeatable-read transaction, so a row the platform updates while
we page is seen once, in one version, and comes again in the window of its new time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, MetaData, Table, and_, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoSuchTableError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import DateTime

from kernel.errors import ConfigError, FatalError, RetriableError
from kernel.settings import SqlSource

# Declared with the hub's settings (kernel/settings.py); re-exported for the family's users.
__all__ = ["SqlSource"]


def reflect_table(conn: Connection, name: str, schema: str | None = None) -> Table:
    """The table as the database has it now (so added or renamed columns are seen)."""
    try:
        return Table(name, MetaData(), autoload_with=conn, schema=schema)
    except NoSuchTableError:
        raise FatalError(f"SQL source: table {name!r} does not exist") from None


def after_key(columns: list[Column[Any]], values: tuple[Any, ...]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the lexicographic order of `columns` (the keyset).

    Spelled out as ORs rather than a row-value comparison: every dialect plans it the same.
    """
    terms = []
    for i, column in enumerate(columns):
        equal = [c == v for c, v in zip(columns[:i], values[:i], strict=True)]
        terms.append(and_(*equal, column > values[i]))
    return or_(*terms)


def _bound(ts: datetime, column: Column[Any], tz: ZoneInfo) -> datetime:
    """A window bound in the column's own terms: naive local time unless it stores a zone."""
    if ts.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    if isinstance(column.type, DateTime) and column.type.timezone:
        return ts
    return ts.astimezone(tz).replace(tzinfo=None)


def render_value(value: Any, tz: ZoneInfo) -> Any:
    """A database value as the raw batch wants it: timestamps with their UTC offset."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        # Binary columns (photos, scans) are never ingested; a contract has no such field.
        return None
    return value


def read_window(
    engine: Engine,
    table_name: str,
    cursor_field: str,
    since: datetime,
    until: datetime,
    batch_size: int,
    tz: ZoneInfo,
    schema: str | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Yield pages of the rows with since <= cursor < until, ordered by (cursor, key)."""
    try:
        with engine.connect() as conn, conn.begin():
            table = reflect_table(conn, table_name, schema)
            if cursor_field not in table.c:
                raise FatalError(f"SQL source: table {table_name!r} has no cursor column {cursor_field!r}")
            keys = list(table.primary_key.columns)
            if not keys:
                raise ConfigError(f"SQL source: table {table_name!r} has no primary key to page by")
            cursor = table.c[cursor_field]
            order = [cursor, *[k for k in keys if k is not cursor]]
            window = and_(cursor >= _bound(since, cursor, tz), cursor < _bound(until, cursor, tz))
            last: tuple[Any, ...] | None = None
            while True:
                query = select(table).where(window)
                if last is not None:
                    query = query.where(after_key(order, last))
                rows = conn.execute(query.order_by(*order).limit(batch_size)).mappings().all()
                if not rows:
                    return
                last = tuple(rows[-1][c.name] for c in order)
                yield [_render_row(row, tz) for row in rows]
                if len(rows) < batch_size:
                    return
    except OperationalError as exc:
        # Connection refused, lost, or timed out: the next attempt may succeed.
        raise RetriableError(f"SQL source: database unavailable reading {table_name!r} ({type(exc).__name__})") from exc
    except SQLAlchemyError as exc:
        raise FatalError(f"SQL source: reading {table_name!r} failed ({type(exc).__name__})") from exc


def _render_row(row: Mapping[Any, Any], tz: ZoneInfo) -> dict[str, Any]:
    return {name: render_value(value, tz) for name, value in row.items()}
