"""Reading one dropped vendor file: CSV (encoding detected and verified) or XLSX.

Chinese vendors export CSV in GBK (GB18030's subset) or UTF-8, with or without a BOM,
and never say which. We try, in order: the BOM's codec; strict UTF-8; strict GB18030;
then charset-normalizer's best guess. A candidate counts only if it decodes every byte
and the header row then carries the stream's required headers, so a wrong guess cannot
pass silently as mojibake. The winning encoding is recorded. A file no candidate reads,
or whose rows do not match its header (a cut last line), fails with a reason that names
line numbers and field counts, never a value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kernel.errors import RecordError

BOMS = [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")]
MAX_CHAOS = 0.2  # charset-normalizer's mess ratio above which its guess is not trusted


class DropFileError(RecordError):
    """The file cannot be loaded; the message is the reason shown beside it in failed/."""


@dataclass
class DropTable:
    """A dropped file's header and rows, as text, and how it was decoded."""

    headers: list[str]
    rows: list[list[str | None]]
    encoding: str

    def records(self) -> Iterator[dict[str, str | None]]:
        """Each row as {header: cell}."""
        for row in self.rows:
            yield dict(zip(self.headers, row, strict=True))


def read_drop_file(name: str, data: bytes, required: set[str]) -> DropTable:
    """Parse one dropped file (by its extension) and check it has the `required` headers."""
    if not data:
        raise DropFileError("the file is empty")
    if name.lower().endswith(".xlsx"):
        table = read_xlsx(data)
        _check_headers(table.headers, required, "xlsx")
        return table
    return read_csv(data, required)


def _candidates(data: bytes) -> Iterator[tuple[str, str | None, str]]:
    """(encoding, text or None, why not) for each way of decoding `data`, best first."""
    for bom, codec in BOMS:
        if data.startswith(bom):
            yield _strict(data, codec, f"{codec} (byte-order mark)")
            return
    yield _strict(data, "utf-8", "utf-8")
    yield _strict(data, "gb18030", "gb18030")
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.chaos > MAX_CHAOS:
        yield "charset-normalizer", None, "no confident guess"
    else:
        yield _strict(data, best.encoding, f"{best.encoding} (detected by charset-normalizer)")


def _strict(data: bytes, codec: str, label: str) -> tuple[str, str | None, str]:
    try:
        return label, data.decode(codec), ""
    except UnicodeDecodeError as exc:
        reason = str(exc.reason)
        if exc.end >= len(data) and ("end of data" in reason or "incomplete" in reason):
            return label, None, "ends inside a character (truncated?)"
        return label, None, f"invalid byte at offset {exc.start}"


def read_csv(data: bytes, required: set[str]) -> DropTable:
    """Decode (see the module doc) and parse a CSV file."""
    tried = []
    for label, text, why in _candidates(data):
        if text is None:
            tried.append(f"{label}: {why}")
            continue
        headers, rows = _parse_csv(text)
        missing = sorted(required - set(headers))
        if missing:
            tried.append(f"{label}: header lacks {', '.join(missing)}")
            continue
        return DropTable(headers, rows, label)
    raise DropFileError("cannot decode with the expected headers; tried " + "; ".join(tried))


def _parse_csv(text: str) -> tuple[list[str], list[list[str | None]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        lines = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise DropFileError(f"malformed CSV near line {reader.line_num}: {exc}") from None
    if not lines:
        return [], []
    headers = [h.strip() for h in lines[0][1]]
    rows: list[list[str | None]] = []
    for index, (line, row) in enumerate(lines[1:], start=1):
        if len(row) != len(headers):
            last = index == len(lines) - 1 and not text.endswith(("\n", "\r"))
            if last:
                raise DropFileError(f"truncated: the last line ({line}) is cut, {len(row)} of {len(headers)} fields")
            raise DropFileError(f"line {line} has {len(row)} fields, the header {len(headers)}")
        # Vendors prefix long numbers with a tab or quote so Excel keeps them as text.
        rows.append([cell.strip().lstrip("'") or None for cell in row])
    return headers, rows


def read_xlsx(data: bytes) -> DropTable:
    """The first worksheet of an XLSX workbook: first non-empty row is the header."""
    import zipfile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise DropFileError(f"not a complete XLSX workbook ({type(exc).__name__}; truncated?)") from None
    try:
        sheet = workbook.worksheets[0]
        lines = [row for row in sheet.iter_rows(values_only=True) if any(c is not None for c in row)]
    finally:
        workbook.close()
    if not lines:
        return DropTable([], [], "xlsx")
    headers = [str(h).strip() if h is not None else "" for h in lines[0]]
    while headers and not headers[-1]:
        headers.pop()
    rows: list[list[str | None]] = []
    for number, row in enumerate(lines[1:], start=2):
        cells = [_cell_text(c) for c in row]
        if any(cells[len(headers) :]):
            raise DropFileError(f"row {number} has cells beyond the header's {len(headers)} columns")
        rows.append((cells + [None] * len(headers))[: len(headers)])
    return DropTable(headers, rows, "xlsx")


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _check_headers(headers: list[str], required: set[str], label: str) -> None:
    missing = sorted(required - set(headers))
    if missing:
        raise DropFileError(f"{label}: header lacks {', '.join(missing)}")
