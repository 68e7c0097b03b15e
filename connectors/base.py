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
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from schemas.contract import EXTRA_COLUMN, PROBLEM_COLUMN, Contract

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


@dataclass(frozen=True)
class Unreadable:
    """A source record the hub could not read as an object (a payload that is not JSON): it is
    quarantined with `reason`, carrying only the fields the hub itself knows, never the bytes."""

    reason: str
    known: dict[str, Any] = field(default_factory=dict)


def raw_schema(contract: Contract) -> pa.Schema:
    """Every contract field as text, plus the names of unexpected fields and a record's problem."""
    fields = [pa.field(f.name, pa.string()) for f in contract.fields]
    return pa.schema([*fields, pa.field(EXTRA_COLUMN, pa.string()), pa.field(PROBLEM_COLUMN, pa.string())])


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray, memoryview)):
        # A driver's undecoded text or a BLOB: text only if it is UTF-8 (else a reason, below).
        return bytes(value).decode("utf-8")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _field_text(name: str, value: Any) -> tuple[str | None, str | None]:
    """(text, problem) of one value: a value that cannot become UTF-8 text is a problem of its
    field, not a crash of the batch (a lone surrogate from `\\ud800` in JSON, absurd nesting)."""
    try:
        text = _as_text(value)
        if text is not None:
            text.encode("utf-8")
    except UnicodeError:
        return None, f"{name}: is not valid UTF-8 text"
    except (RecursionError, ValueError, TypeError):  # TypeError: bytes or a set inside a list
        return None, f"{name}: is not a plain value"
    return text, None


def records_to_raw_batch(contract: Contract, records: Iterable[Any]) -> pa.RecordBatch:
    """Source records (JSON-like dicts) as one raw batch of the contract's fields.

    A record that is not an object (a vendor's page holding a bare string) or an `Unreadable`
    becomes a row with its problem set, so it is quarantined with a reason, never a crash.
    """
    names = [f.name for f in contract.fields]
    known = set(names)
    columns: dict[str, list[str | None]] = {n: [] for n in [*names, EXTRA_COLUMN, PROBLEM_COLUMN]}
    for record in records:
        problem: str | None = None
        if isinstance(record, Unreadable):
            problem, record = record.reason, record.known
        elif not isinstance(record, dict):
            problem, record = "record: is not a JSON object", {}
        for name in names:
            text, trouble = _field_text(name, record.get(name))
            columns[name].append(text)
            problem = problem or trouble
        # Only the names of unexpected fields are kept: their values are unclassified
        # and could be identifiers (and the names themselves are cut short and made text).
        extra = sorted(_name_text(k) for k in set(record) - known)
        columns[EXTRA_COLUMN].append(",".join(extra)[:1000] if extra else None)
        columns[PROBLEM_COLUMN].append(problem)
    return pa.RecordBatch.from_pydict(columns, schema=raw_schema(contract))


def _name_text(name: Any) -> str:
    return str(name)[:100].encode("utf-8", "replace").decode("utf-8")
