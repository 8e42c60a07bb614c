"""The import formats narcotrack reads, and how a file's header tells which one it is."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from narcotrack.errors import InvalidInput
from narcotrack.ingest import columns, ids_format, narcotrack_format
from narcotrack.ingest.readers import open_table
from narcotrack.ingest.records import Chunk, Context

FORMATS = ("narcotrack", "ids")
SOURCES = {"narcotrack": narcotrack_format.SOURCE, "ids": ids_format.SOURCE}
MERGE = {"narcotrack": True, "ids": False}  # rows with the same reference are one incident
MIN_TEMPLATE_COLUMNS = 3


def accept(fmt: str) -> Callable[[list[str]], bool]:
    """Whether a header row belongs to ``fmt`` ('auto': to any format)."""

    def any_format(header: list[str]) -> bool:
        return ids_format.looks_like_ids(header) or columns.score(header) >= MIN_TEMPLATE_COLUMNS

    if fmt == "ids":
        return ids_format.looks_like_ids
    if fmt == "narcotrack":
        return lambda header: columns.score(header) >= MIN_TEMPLATE_COLUMNS
    return any_format


def detect(header: list[str], fmt: str, file_name: str) -> str:
    """The format of a file from its header row; ``fmt`` other than 'auto' is checked, not trusted blindly."""
    if fmt not in ("auto", *FORMATS):
        raise InvalidInput(f"unknown import format {fmt!r}: choose auto, narcotrack or ids")
    is_ids = ids_format.looks_like_ids(header)
    template_score = columns.score(header)
    if fmt == "auto":
        if is_ids:
            return "ids"
        if template_score >= MIN_TEMPLATE_COLUMNS:
            return "narcotrack"
        shown = ", ".join(repr(h) for h in header[:8]) + (" ..." if len(header) > 8 else "")
        raise InvalidInput(
            f"{file_name}: not a narcotrack template nor a UNODC IDS file (its header is {shown}). "
            "Start from `narcotrack template`, or give --format"
        )
    if fmt == "ids" and not ids_format.score(header):
        raise InvalidInput(f"{file_name}: no UNODC IDS columns (COUNTRY, DRUG_NAME, AMOUNT...) in the header")
    if fmt == "narcotrack" and template_score == 0:
        raise InvalidInput(
            f"{file_name}: no narcotrack template columns in the header; start from `narcotrack template`"
        )
    return fmt


def produce(path: Path, fmt: str, positions: dict[str, int], ctx: Context) -> Iterator[Chunk]:
    """Read and validate the file, chunk by chunk (runs in the importer or in a worker process)."""
    validate = ids_format.validate if fmt == "ids" else narcotrack_format.validate
    with open_table(path, accept(fmt)) as table:
        yield from validate(table, positions, ctx)
