"""Record formats: which ones a feed is offered in, and how a page of rows is rendered.

`ndjson` and `csv` are pages of rows; `parquet` is a whole published partition file, as
signed in its manifest. Standard formats (FIWARE NGSI-LD, GA/T 1400 VIID) are known names
that a feed offers once it declares them (a `standards` list in its definition) and a
renderer is registered for them with `register_format`; until then asking for one is a
406 naming the formats the feed is offered in.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from kernel.errors import Refused
from schemas.feeds import Feed

FormatName = Literal["ndjson", "csv", "parquet", "ngsi-ld", "viid"]
BUILT_IN = ("ndjson", "csv", "parquet")

Rows = list[dict[str, Any]]
Renderer = Callable[[list[pa.Table], list[str], Feed], bytes]  # a page's tables (one per partition)


class NotOffered(Refused):
    """The feed is not offered in the format asked for; the message names those it is offered in."""


@dataclass(frozen=True)
class RecordFormat:
    """A way of serving records: a media type, and a page renderer (None: whole partition files)."""

    name: str
    media_type: str
    render: Renderer | None
    standard: bool = False


def json_value(value: Any) -> Any:
    """A value JSON cannot hold natively, as the API renders it (ISO 8601, base64, seconds)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def ndjson(rows: Rows) -> bytes:
    """Rows as newline-delimited JSON (UTF-8, ISO 8601 dates and timestamps)."""
    lines = (json.dumps(row, default=json_value, ensure_ascii=False, separators=(",", ":")) for row in rows)
    return "".join(line + "\n" for line in lines).encode()


_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C; ensure_ascii=False's


def _iso(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Dates and UTC or naive timestamps as `isoformat` writes them, computed by Arrow; None
    for the temporal types this does not cover (they go through Python's isoformat)."""
    kind = column.type
    if pa.types.is_date(kind):
        return pc.cast(column, pa.string())
    if not pa.types.is_timestamp(kind) or kind.unit == "ns" or kind.tz not in (None, "UTC", "+00:00"):
        return None
    # Floored to the second (as isoformat splits it, before 1970 too), then the microseconds.
    whole = pc.cast(pc.floor_temporal(column, unit="second"), pa.timestamp("s", tz=kind.tz))
    base = pc.strftime(whole, format="%Y-%m-%dT%H:%M:%S")
    ticks = pc.cast(pc.cast(column, pa.timestamp("us", tz=kind.tz)), pa.int64())
    micros = pc.subtract(ticks, pc.multiply(pc.cast(whole, pa.int64()), 1_000_000))
    padded = pc.utf8_lpad(pc.cast(micros, pa.string()), width=6, padding="0")
    fraction = pc.if_else(pc.equal(micros, 0), "", pc.binary_join_element_wise(".", padded, ""))
    return pc.binary_join_element_wise(base, fraction, "" if kind.tz is None else "+00:00", "")


def _json_tokens(column: pa.ChunkedArray) -> list[str]:
    """Each value of a column as the JSON text `ndjson` would write for it."""
    kind = column.type
    if pa.types.is_integer(kind):
        return [v if v is not None else "null" for v in pc.cast(column, pa.string()).to_pylist()]
    iso = _iso(column) if pa.types.is_temporal(kind) else None
    if iso is not None:  # ISO 8601 text never needs escaping: just quotes
        return ["null" if v is None else f'"{v}"' for v in iso.to_pylist()]
    values = column.to_pylist()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return [_encode_string(v) if v is not None else "null" for v in values]
    if pa.types.is_boolean(kind):
        return ["null" if v is None else "true" if v else "false" for v in values]
    if pa.types.is_floating(kind):
        return [repr(v) if v is not None and math.isfinite(v) else "null" for v in values]
    if pa.types.is_temporal(kind):
        return [_encode_string(json_value(v)) if v is not None else "null" for v in values]
    dump = json.JSONEncoder(default=json_value, ensure_ascii=False, separators=(",", ":")).encode
    return [dump(v) for v in values]


def ndjson_tables(tables: list[pa.Table]) -> bytes:
    """Tables as newline-delimited JSON, byte for byte what `ndjson` writes for their rows,
    built a column at a time (several times faster than a dict per row)."""
    out: list[str] = []
    for table in tables:
        if not table.num_rows:
            continue
        keys = [_encode_string(name).replace("%", "%%") for name in table.column_names]
        template = "{" + ",".join(f"{key}:%s" for key in keys) + "}\n"
        columns = [_json_tokens(column) for column in table.columns]
        out.extend(template % values for values in zip(*columns, strict=True))
    return "".join(out).encode()


# OWASP "CSV Injection": a text cell a spreadsheet would read as a formula is prefixed with a
# single quote (numbers are written as numbers and never need it). Issue 17.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    cell = value if isinstance(value, str | int | float | bool) else json_value(value)
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def csv_text(rows: Rows, fields: list[str]) -> bytes:
    """Rows as CSV (RFC 4180, UTF-8, header line; values rendered as in ndjson, null as empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_csv_cell(row.get(name)) for name in fields])
    return out.getvalue().encode()


def _rows(tables: list[pa.Table]) -> Rows:
    # JSON and CSV have no NaN or infinity: a non-finite reading becomes null.
    return [
        {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
        for table in tables
        for row in table.to_pylist()
    ]


FORMATS: dict[str, RecordFormat] = {
    "ndjson": RecordFormat("ndjson", "application/x-ndjson", lambda tables, fields, feed: ndjson_tables(tables)),
    "csv": RecordFormat("csv", "text/csv; charset=utf-8", lambda tables, fields, feed: csv_text(_rows(tables), fields)),
    "parquet": RecordFormat("parquet", "application/vnd.apache.parquet", None),
    "ngsi-ld": RecordFormat("ngsi-ld", "application/ld+json", None, standard=True),
    "viid": RecordFormat("viid", "application/json", None, standard=True),
}


def register_format(record_format: RecordFormat) -> None:
    """Add (or replace) a format's renderer: how the standard formats plug in."""
    FORMATS[record_format.name] = record_format


def offered_formats(feed: Feed) -> list[str]:
    """The formats a feed is served in: the built-in ones, then its declared standards with a renderer."""
    declared = [str(name) for name in getattr(feed, "standards", None) or []]
    declared += [n for n, f in FORMATS.items() if feed.name in getattr(f, "feeds", ()) and n not in declared]
    return [*BUILT_IN, *(n for n in declared if n in FORMATS and FORMATS[n].standard and FORMATS[n].render)]


def format_for(feed: Feed, name: str) -> RecordFormat:
    """The format to serve `feed` in; NotOffered (a 406) when the feed is not offered in it."""
    offered = offered_formats(feed)
    if name not in offered:
        raise NotOffered(f"feed {feed.name} is not offered as {name}; it is offered as {', '.join(offered)}")
    return FORMATS[name]
