"""What every source stream declares and yields.

A stream reads the records updated in a half-open window [since, until) and yields them
as Arrow record batches of *raw* columns: every contract field as the source sent it,
rendered as text, plus `_extra` naming fields the contract does not know. Typing,
checks and de-identification happen downstream against the contract, so a malformed
value becomes a quarantined row with a reason instead of a crashed extract.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from schemas.contract import EXTRA_COLUMN, Contract

if TYPE_CHECKING:
    from connectors.filedrop import DropLedger, DropSealer


@dataclass(frozen=True)
class SourceState:
    """What the runner hands the streams that keep state of their own (the store lies above
    the sources, so they never open it themselves). Cursors stay with the runner."""

    drop_ledger: DropLedger | None = None
    drop_sealer: DropSealer | None = None  # seals the drop folders' kept files (privacy.file_seal)


class Stream(Protocol):
    """A source stream: its contract and how to read a window of it."""

    name: str
    contract: Contract

    def extract(self, since: datetime, until: datetime) -> Iterator[pa.RecordBatch]:
        """Yield raw batches of the records updated in [since, until)."""
        ...


def raw_schema(contract: Contract) -> pa.Schema:
    """Every contract field as text, plus the names of unexpected fields."""
    fields = [pa.field(f.name, pa.string()) for f in contract.fields]
    return pa.schema([*fields, pa.field(EXTRA_COLUMN, pa.string())])


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def records_to_raw_batch(contract: Contract, records: Iterable[dict[str, Any]]) -> pa.RecordBatch:
    """Source records (JSON-like dicts) as one raw batch of the contract's fields."""
    names = [f.name for f in contract.fields]
    known = set(names)
    columns: dict[str, list[str | None]] = {n: [] for n in [*names, EXTRA_COLUMN]}
    for record in records:
        for name in names:
            columns[name].append(_as_text(record.get(name)))
        # Only the names of unexpected fields are kept: their values are unclassified
        # and could be identifiers.
        extra = sorted(set(record) - known)
        columns[EXTRA_COLUMN].append(",".join(extra) if extra else None)
    return pa.RecordBatch.from_pydict(columns, schema=raw_schema(contract))
