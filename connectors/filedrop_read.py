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

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from kernel.errors import RecordError

BOMS = [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")]
# How a newline ends the file in each codec (a BOM codec's bytes without the BOM).
_NEWLINE_CODEC = {"utf-8-sig": "utf-8", "utf-16": "utf-16-le"}
MAX_CHAOS = 0.2  # charset-normalizer's mess ratio above which its guess is not trusted
SAMPLE_BYTES = 1024 * 1024  # what charset-normalizer sees of a file: its guess is then verified whole
CHUNK_BYTES = 256 * 1024  # files are read in chunks this size: a 200 MB export never sits in memory
MAX_XLSX_BYTES = 32 * 1024 * 1024  # a workbook is unzipped in memory; vendors' daily exports are far smaller

# A file is bytes (tests, small drops) or a path (the drop folder: read in chunks, twice —
# once to check every line before the file is accepted, once to load it).
Source = bytes | Path


class DropFileError(RecordError):
    """The file cannot be loaded; the message is the reason shown beside it in failed/."""


class DropRows:
    """A checked file's rows, read again from the file each time they are iterated."""

    def __init__(self, source: Source, codec: str, width: int, count: int) -> None:
        self.source, self.codec, self.width, self.count = source, codec, width, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[list[str | None]]:
        with _text(self.source, self.codec) as text:
            rows = (row for row in csv.reader(text, strict=True) if row)
            next(rows, None)  # the header
            for row in rows:
                # Vendors prefix long numbers with a tab or quote so Excel keeps them as text.
                yield [cell.strip().lstrip("'") or None for cell in row]

    def __getitem__(self, index: int) -> list[str | None]:
        for i, row in enumerate(self):
            if i == index:
                return row
        raise IndexError(index)


@dataclass
class DropTable:
    """A dropped file's header and rows, as text, and how it was decoded."""

    headers: list[str]
    rows: DropRows | list[list[str | None]]
    encoding: str

    def records(self) -> Iterator[dict[str, str | None]]:
        """Each row as {header: cell}."""
        for row in self.rows:
            yield dict(zip(self.headers, row, strict=True))

    def moved_to(self, path: Path) -> DropTable:
        """The same table, read from where its file was moved."""
        if isinstance(self.rows, DropRows) and isinstance(self.rows.source, Path):
            rows = DropRows(path, self.rows.codec, self.rows.width, self.rows.count)
            return DropTable(self.headers, rows, self.encoding)
        return self


def _size(source: Source) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


def _binary(source: Source) -> IO[bytes]:
    return io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")


def _text(source: Source, codec: str) -> IO[str]:
    return io.TextIOWrapper(_binary(source), encoding=codec, errors="strict", newline="")


def _head(source: Source, n: int) -> bytes:
    with _binary(source) as f:
        return f.read(n)


def _tail(source: Source, n: int) -> bytes:
    with _binary(source) as f:
        f.seek(max(0, _size(source) - n))
        return f.read()


def read_drop_file(name: str, data: Source, required: set[str], max_bytes: int | None = None) -> DropTable:
    """Parse one dropped file (by its extension) and check it has the `required` headers.

    Nothing over `max_bytes` is read at all; a CSV is read in chunks (its rows are read
    again, lazily, when they are loaded), so memory does not grow with the file.
    """
    size = _size(data)
    if not size:
        raise DropFileError("the file is empty")
    if max_bytes is not None and size > max_bytes:
        raise DropFileError(f"the file is {size} bytes, over the {max_bytes}-byte limit")
    if name.lower().endswith(".xlsx"):
        if size > MAX_XLSX_BYTES:
            raise DropFileError(f"the workbook is {size} bytes, over the {MAX_XLSX_BYTES}-byte limit for XLSX")
        table = read_xlsx(data if isinstance(data, bytes) else data.read_bytes())
        _check_headers(table.headers, required, "xlsx")
        return table
    return read_csv(data, required)


def _candidates(data: Source) -> Iterator[tuple[str, str | None, str]]:
    """(label, codec or None, why not) for each way of decoding `data`, best first."""
    head = _head(data, 4)
    for bom, codec in BOMS:
        if head.startswith(bom):
            yield _strict(data, codec, f"{codec} (byte-order mark)")
            return
    yield _strict(data, "utf-8", "utf-8")
    yield _strict(data, "gb18030", "gb18030")
    from charset_normalizer import from_bytes

    best = from_bytes(_head(data, SAMPLE_BYTES)).best()
    if best is None or best.chaos > MAX_CHAOS:
        yield "charset-normalizer", None, "no confident guess"
    else:
        yield _strict(data, best.encoding, f"{best.encoding} (detected by charset-normalizer)")


def _strict(data: Source, codec: str, label: str) -> tuple[str, str | None, str]:
    """Whether every byte of the file decodes in `codec`, checked a chunk at a time."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    offset = 0
    with _binary(data) as f:
        while chunk := f.read(CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return label, None, f"invalid byte at offset {offset + max(exc.start, 0)}"
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return label, None, "ends inside a character (truncated?)"
    return label, codec, ""


def read_csv(data: Source, required: set[str]) -> DropTable:
    """Decode (see the module doc) and check a CSV file; its rows are read when iterated."""
    tried = []
    for label, codec, why in _candidates(data):
        if codec is None:
            tried.append(f"{label}: {why}")
            continue
        headers, count = _scan_csv(data, codec)
        missing = sorted(required - set(headers))
        if missing:
            tried.append(f"{label}: header lacks {', '.join(missing)}")
            continue
        return DropTable(headers, DropRows(data, codec, len(headers), count), label)
    raise DropFileError("cannot decode with the expected headers; tried " + "; ".join(tried))


def _ends_with_newline(data: Source, codec: str) -> bool:
    newline_codec = _NEWLINE_CODEC.get(codec, codec)
    if codec == "utf-16" and _head(data, 2) == b"\xfe\xff":
        newline_codec = "utf-16-be"
    tail = _tail(data, 4)
    return any(tail.endswith(nl.encode(newline_codec)) for nl in ("\n", "\r"))


def _scan_csv(data: Source, codec: str) -> tuple[list[str], int]:
    """The header and the number of rows, every line checked, no row kept."""
    headers: list[str] | None = None
    count = 0
    pending: tuple[int, int] | None = None  # (line, fields) of a row whose field count is wrong
    with _text(data, codec) as text:
        reader = csv.reader(text, strict=True)
        try:
            for row in reader:
                if not row:
                    continue
                if headers is None:
                    headers = [h.strip() for h in row]
                    continue
                if pending is not None:  # a wrong row that is not the last one
                    raise DropFileError(f"line {pending[0]} has {pending[1]} fields, the header {len(headers)}")
                if len(row) != len(headers):
                    pending = (reader.line_num, len(row))
                    continue
                count += 1
        except csv.Error as exc:
            raise DropFileError(f"malformed CSV near line {reader.line_num}: {exc}") from None
    if headers is None:
        return [], 0
    if pending is not None:
        if not _ends_with_newline(data, codec):
            raise DropFileError(
                f"truncated: the last line ({pending[0]}) is cut, {pending[1]} of {len(headers)} fields"
            )
        raise DropFileError(f"line {pending[0]} has {pending[1]} fields, the header {len(headers)}")
    return headers, count


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
