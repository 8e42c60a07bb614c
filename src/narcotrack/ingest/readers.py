"""Streaming readers for CSV, gzip-compressed CSV and XLSX files.

Rows are yielded one at a time with the row number a person sees in a spreadsheet (header = row 1), so
memory stays flat however large the file is. The kind of file is told from its first bytes, not its
name, because uploads often arrive under temporary names. Every way a file can be unreadable becomes an
``InvalidInput`` with a sentence a user can act on.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from narcotrack.errors import InvalidInput

csv.field_size_limit(1 << 24)  # long narratives are legitimate; the default 128 KiB is not enough
HEADER_SEARCH_ROWS = 10
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls / .doc


@dataclass
class Table:
    """One sheet of data: its header and an iterator over ``(row_number, cells)``."""

    name: str
    kind: str  # "csv" | "gzip" (compressed CSV) | "xlsx"
    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    total_bytes: int
    sheet: str = ""
    delimiter: str = ","
    _done: Callable[[], int] = field(default=lambda: 0, repr=False)
    _close: Callable[[], None] = field(default=lambda: None, repr=False)

    def bytes_done(self) -> int:
        """How far into the file (in bytes on disk) reading has got, for progress bars."""
        return min(self._done(), self.total_bytes)

    def close(self) -> None:
        self._close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sniff_kind(path: Path) -> str:
    """'gzip', 'xlsx' or 'csv' from the file's first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZIP_MAGIC):
        return "xlsx"
    if head.startswith(_OLE_MAGIC):
        raise InvalidInput(
            f"{path.name} is an old Excel (.xls) file: save it as .xlsx or as CSV UTF-8 and import that"
        )
    return "csv"


def open_table(path: Path, accept: Callable[[list[str]], bool] | None = None) -> Table:
    """Open ``path`` for streaming. For workbooks, the first sheet whose header ``accept`` likes is used."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    kind = sniff_kind(path)
    if kind == "xlsx":
        return _open_xlsx(path, accept)
    return _open_csv(path, compressed=kind == "gzip")


def _clean_header(cells: list[Any]) -> list[str]:
    header = ["" if c is None else str(c).strip() for c in cells]
    while header and not header[-1]:
        header.pop()
    return header


def _blank(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


# -- CSV ------------------------------------------------------------------------------------------
def _open_csv(path: Path, *, compressed: bool) -> Table:
    raw = open(path, "rb")  # noqa: SIM115 - closed by Table.close
    total = path.stat().st_size
    stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")

    def close() -> None:
        text.close()
        raw.close()

    try:
        row_no = 0
        first = ""
        while not first.strip():
            first = _guarded(text.readline, path, row_no + 1)
            row_no += 1
            if first == "":
                close()
                raise InvalidInput(f"{path.name} is empty: it has no header row")
        delimiter = max((",", ";", "\t"), key=first.count) if any(d in first for d in ",;\t") else ","
        reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
        header = _clean_header(_guarded(lambda: next(reader), path, row_no))
        header_row = row_no
    except BaseException:
        close()
        raise

    def rows() -> Iterator[tuple[int, list[Any]]]:
        n = header_row
        try:
            for record in reader:
                n += 1
                if record and (record[0].strip() or "".join(record).strip()):
                    yield n, record
        except _READ_ERRORS as exc:
            raise _unreadable(exc, path, n + 1) from exc

    return Table(
        path.name,
        "gzip" if compressed else "csv",
        header,
        rows(),
        total,
        delimiter=delimiter,
        _done=raw.tell,
        _close=close,
    )


_READ_ERRORS = (UnicodeDecodeError, csv.Error, EOFError, zlib.error, OSError)


def _guarded(read: Callable[[], Any], path: Path, row: int) -> Any:
    try:
        return read()
    except _READ_ERRORS as exc:
        raise _unreadable(exc, path, row) from exc


def _unreadable(exc: BaseException, path: Path, row: int) -> InvalidInput:
    """The ways a text file can be broken, as messages for people."""
    if isinstance(exc, UnicodeDecodeError):
        return InvalidInput(
            f"{path.name}, row {row}: the file is not UTF-8 text ({exc.reason}). In Excel "
            "choose 'Save as' > 'CSV UTF-8', or import the .xlsx itself"
        )
    if isinstance(exc, csv.Error):
        return InvalidInput(f"{path.name}, row {row}: not a readable CSV file ({exc})")
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return InvalidInput(f"{path.name}: the compressed file is damaged or incomplete ({exc})")
    return InvalidInput(f"cannot read {path.name}: {exc}")


# -- XLSX -----------------------------------------------------------------------------------------
def _open_xlsx(path: Path, accept: Callable[[list[str]], bool] | None) -> Table:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise InvalidInput(f"{path.name} is not a readable .xlsx workbook ({exc})") from exc
    total = path.stat().st_size
    chosen = None
    try:
        for ws in wb.worksheets:
            found = _xlsx_header(ws, accept)
            if found is None:
                continue
            if chosen is None:
                chosen = (ws, *found)
            if accept is None or accept(found[0]):
                chosen = (ws, *found)
                break
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        wb.close()
        raise InvalidInput(f"{path.name} is not a readable .xlsx workbook ({exc})") from exc
    if chosen is None:
        wb.close()
        raise InvalidInput(f"{path.name} has no sheet with a header row")
    ws, header, header_row = chosen
    max_row = ws.max_row or 0
    progress = {"row": header_row}

    def rows() -> Iterator[tuple[int, list[Any]]]:
        width = len(header)
        try:
            for n, cells in enumerate(
                ws.iter_rows(min_row=header_row + 1, values_only=True), start=header_row + 1
            ):
                progress["row"] = n
                values = list(cells[:width])
                if len(values) < width:
                    values.extend([None] * (width - len(values)))
                if not _blank(values):
                    yield n, values
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise InvalidInput(
                f"{path.name}: the workbook is damaged near row {progress['row']} ({exc})"
            ) from exc

    def done() -> int:
        return int(total * progress["row"] / max_row) if max_row else 0

    return Table(path.name, "xlsx", header, rows(), total, sheet=str(ws.title), _done=done, _close=wb.close)


def _xlsx_header(ws: Any, accept: Callable[[list[str]], bool] | None) -> tuple[list[str], int] | None:
    """The header row: the first of the top rows that ``accept`` likes (a title row above it is allowed),
    else the first row that is not blank."""
    first = None
    for n, cells in enumerate(ws.iter_rows(max_row=HEADER_SEARCH_ROWS, values_only=True), start=1):
        if _blank(list(cells)):
            continue
        header = _clean_header(list(cells))
        if accept is None or accept(header):
            return header, n
        first = first or (header, n)
    return first
