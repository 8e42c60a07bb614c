"""``import_file``: one file into the store, in one transaction, with a row-by-row report.

All-or-nothing by default: any bad row and the transaction is rolled back, so the store is exactly as
before and the report says what to fix. With ``partial=True`` the good rows are kept. Re-importing a file
adds nothing twice: every incident carries its source reference (the station's case number, or for UNODC
IDS a fingerprint of the row), and references already in the store from an earlier import are counted as
already present rather than written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError

from narcotrack.domain.ids import uuid7
from narcotrack.domain.vocab import norm
from narcotrack.errors import ImportRejected, InvalidInput, StoreError
from narcotrack.ingest import duplicates, formats, ids_format, narcotrack_format, pipeline
from narcotrack.ingest.readers import open_table
from narcotrack.ingest.records import BIT, COMPARED, Chunk, Context, I, S
from narcotrack.ingest.report import DUPLICATE, ERROR, ImportReport, Issue
from narcotrack.ingest.writer import Stored, StoreWriter, own_reference_checks
from narcotrack.store.schema import MARKINGS, ImportBatch, Organisation, utcnow

Progress = Callable[[int, int | None], None]
# (reporting organisation id, marking, distribution) of a new incident -> None when the importing user may
# record it, else (the incident field at fault: 'reporting_org_id', 'marking' or 'distribution'; the
# reason). Lets the web upload apply the sharing policy row by row.
Authorise = Callable[[str, str, str], tuple[str, str] | None]
_COMPARED_IDX = [(name, I[name], BIT[name]) for name in COMPARED]


@dataclass(frozen=True)
class PartnerSource:
    """An IDS file sent by a partner: its seizures are the partner's, shared here as the partner asked."""

    org_code: str
    marking: str = "GREEN"
    distribution: str = "domestic"

    def __post_init__(self) -> None:
        if self.marking not in MARKINGS:
            raise InvalidInput(f"unknown marking {self.marking!r}: choose one of {', '.join(MARKINGS)}")
        if self.distribution not in ("owner", "domestic", "partners"):
            raise InvalidInput(f"unknown distribution {self.distribution!r}: choose owner, domestic or partners")

    def context(self, orgs: dict[str, tuple[str, str]]) -> dict[str, str]:
        return {"owner_code": orgs[norm(self.org_code)][1], "marking": self.marking,
                "distribution": self.distribution}


def import_file(
    engine: Engine,
    path: Path | str,
    *,
    fmt: str = "auto",
    partial: bool = False,
    org_code: str | None = None,
    user_id: str | None = None,
    progress: Progress | None = None,
    parallel: bool | None = None,
    chunk_rows: int = 5000,
    server_safe: bool = False,
    authorise: Authorise | None = None,
    partner: PartnerSource | None = None,
) -> ImportReport:
    """Import a CSV, CSV.GZ or XLSX file in narcotrack's template or UNODC's IDS format.

    ``fmt`` is 'auto', 'narcotrack' or 'ids'. ``org_code`` is the reporting organisation for rows that
    name none, and is recorded as the importing organisation. ``progress(done_bytes, total_bytes)`` is
    called as the file is read. ``parallel`` forces (True) or forbids (False) validating in a worker
    process; by default large files use one. ``server_safe`` is for a long-running server: no worker
    process, the garbage collector left running and SQLite's foreign-key checks left on, so nothing
    process- or connection-wide changes while other requests run. ``authorise`` rejects, row by row, new
    incidents the importing user may not record (see ``Authorise``). ``partner`` stores the seizures of
    an IDS file as that partner's, under its marking and distribution (by default they are UNODC's). Raises ``ImportRejected`` (with the
    report) when rows are bad and ``partial`` is False, ``InvalidInput`` when the file cannot be read.
    """
    path = Path(path)
    started = time.perf_counter()
    report = ImportReport(file_name=path.name, partial=partial)
    with open_table(path, formats.accept(fmt)) as table:
        report.fmt = formats.detect(table.header, fmt, path.name)
        header, kind, total = table.header, table.kind, table.total_bytes
    if partner is not None and report.fmt != "ids":
        raise InvalidInput("a partner can be named only for IDS files; a partner's STIX bundle names its owner itself")
    if report.fmt == "ids":
        positions = ids_format.map_header(header, report)
    else:
        positions = narcotrack_format.map_header(header, report, org_given=bool(org_code))
    report.sha256 = _sha256(path)
    use_worker = pipeline.want_parallel(path, kind) if parallel is None else parallel
    if server_safe:
        use_worker = False
    try:
        with (
            contextlib.nullcontext() if server_safe else pipeline.gc_paused(),
            engine.connect() as conn,
            contextlib.nullcontext(False) if server_safe else own_reference_checks(conn) as checks_off,
            conn.begin() as trans,
        ):
            _run(
                conn,
                path,
                report,
                header,
                positions,
                org_code=org_code,
                user_id=user_id,
                progress=progress,
                parallel=use_worker,
                chunk_rows=chunk_rows,
                total=total,
                check_places=checks_off,
                authorise=authorise,
                partner=partner,
            )
            report.seconds = time.perf_counter() - started
            if report.rows_rejected and not partial:
                trans.rollback()
                raise ImportRejected(
                    f"{path.name}: {report.rows_rejected:,} of {report.rows_read:,} rows have errors, "
                    f"so nothing was imported. Fix them, or import with --partial to keep the "
                    f"{report.rows_read - report.rows_rejected:,} good rows.",
                    report,
                )
            report.committed = True
    except DBAPIError as exc:
        raise StoreError(f"the store refused the import of {path.name}: {_db_reason(exc)}") from exc
    return report


def _run(
    conn: Connection,
    path: Path,
    report: ImportReport,
    header: list[str],
    positions: dict[str, int],
    *,
    org_code: str | None,
    user_id: str | None,
    progress: Progress | None,
    parallel: bool,
    chunk_rows: int,
    total: int,
    check_places: bool,
    authorise: Authorise | None = None,
    partner: PartnerSource | None = None,
) -> None:
    orgs = _organisations(conn)
    if partner is not None and norm(partner.org_code) not in orgs:
        raise InvalidInput(f"unknown organisation code {partner.org_code!r}: add the partner first (narcotrack orgs)")
    importer_org = None
    if org_code:
        found = orgs.get(norm(org_code))
        if found is None:
            raise InvalidInput(
                f"unknown organisation code {org_code!r} (see the 'Allowed values' sheet of the template)"
            )
        importer_org, org_code = found
    report.previous_imports = [
        f"{when:%Y-%m-%d %H:%M}"
        for when in conn.scalars(
            select(ImportBatch.created_at)
            .where(ImportBatch.sha256 == report.sha256, ImportBatch.rows_imported > 0)
            .order_by(ImportBatch.created_at)
        )
    ]
    now = utcnow()
    batch_id = uuid7()
    report.batch_id = batch_id
    conn.execute(
        insert(ImportBatch).values(
            id=batch_id,
            file_name=path.name[:400],
            sha256=report.sha256,
            format=report.fmt,
            partial=report.partial,
            user_id=user_id,
            org_id=importer_org,
            created_at=now,
            updated_at=now,
            version=1,
        )
    )
    writer = StoreWriter(conn, batch_id, check_places=check_places)
    stamp = now.isoformat(sep=" ") if writer.pg else now.strftime("%Y-%m-%d %H:%M:%S.%f")
    ctx = Context(batch_id=batch_id, stamp=stamp, orgs=orgs, org_code=org_code, chunk_rows=chunk_rows,
                  **(partner.context(orgs) if partner is not None else {}))
    columns = (
        ids_format.columns_for_messages()
        if report.fmt == "ids"
        else narcotrack_format.columns_for_messages(header, positions)
    )
    if report.fmt == "ids":
        columns["reporting_org_id"] = ""
    else:
        columns["reporting_org_id"] = (
            header[positions["reporting_org"]] if "reporting_org" in positions else ""
        )
    settle = _Settler(writer, report, formats.SOURCES[report.fmt], formats.MERGE[report.fmt], columns)
    if authorise is not None:
        settle.authorise = authorise
        settle.org_codes = {oid: code for oid, code in orgs.values()}
    for chunk in pipeline.chunks(path, report.fmt, positions, ctx, parallel=parallel):
        settle(chunk)
        if progress is not None:
            progress(chunk.bytes_done, total)
    quantity_column = "AMOUNT" if report.fmt == "ids" else header[positions["quantity"]]
    _flag_duplicates(writer, report, quantity_column)
    writer.close()
    conn.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id)
        .values(
            rows_read=report.rows_read,
            rows_imported=report.rows_imported,
            rows_skipped_existing=report.rows_already_present,
            rows_rejected=report.rows_rejected,
        )
    )
    if progress is not None:
        progress(total, total)


class _Settler:
    """Decides, chunk by chunk, what is new, what is already stored and what continues an earlier case."""

    def __init__(
        self, writer: StoreWriter, report: ImportReport, source: str, merge: bool, columns: dict[str, str]
    ) -> None:
        self.writer, self.report, self.source, self.merge = writer, report, source, merge
        self.columns = columns
        self.authorise: Authorise | None = None
        self.org_codes: dict[str, str] = {}

    def __call__(self, chunk: Chunk) -> None:
        report = self.report
        report.rows_read += chunk.rows_read
        report.rows_rejected += chunk.rows_rejected
        report.rows_with_warnings += chunk.rows_warned
        report.extend(chunk.issues)
        stored = self.writer.lookup(self.source, [g[0] for g in chunk.groups])
        refs_in_chunk = {g[0] for g in chunk.groups}
        incidents: list[tuple[Any, ...]] = []
        seizures: list[tuple[Any, ...]] = []
        dupkeys: list[tuple[Any, ...]] = []
        batch = self.writer.batch_id
        i_occ, i_place, i_drug, i_unit, i_qty, i_kg = (
            I["occurred_on"],
            I["place_id"],
            S["drug"],
            S["unit"],
            S["quantity"],
            S["mass_kg"],
        )
        for ref, values, missing, place_key, rows in chunk.groups:
            hit = stored.get(ref)
            if hit is not None and hit.batch_id != batch:
                report.rows_already_present += len(rows)
                continue
            if hit is not None and not self.merge:
                values = self._renamed(ref, values, refs_in_chunk)
                hit = None
            if hit is not None:
                rows, incident_id, occurred, place_id, place_key = self._continue(ref, values, rows, hit)
                rows = [(r, m, (s[0], incident_id, *s[2:])) for r, m, s in rows]
            else:
                if missing:
                    self._reject(
                        rows,
                        [
                            Issue(
                                r,
                                column,
                                "",
                                "missing",
                                ERROR,
                                f"the first row of case {ref.split(':', 1)[-1]} must give it",
                            )
                            for r, _m, _s in rows
                            for column in missing
                        ],
                    )
                    continue
                if self.authorise is not None and self._refused(values, rows):
                    continue
                incidents.append(values)
                occurred, place_id = values[i_occ], values[i_place]
            # The duplicate key is Python's hash of (date, place, drug): stable within this process, which
            # is all it needs to be; a collision (one in 2**64) could at worst flag one seizure too many.
            key = (occurred, place_id, place_key)
            for row, _mask, seizure in rows:
                seizures.append(seizure)
                if occurred is not None:
                    dupkeys.append(
                        (
                            hash((key, seizure[i_drug])),
                            row,
                            seizure[0],
                            seizure[i_unit],
                            seizure[i_qty],
                            seizure[i_kg],
                        )
                    )
        n_inc, written = self.writer.write(incidents, seizures, dupkeys)
        report.incidents_created += n_inc
        report.seizures_created += len(written)
        report.rows_imported += len(written)
        report.rows_already_present += len(seizures) - len(written)
        report.mass_kg += sum(s[i_kg] or 0.0 for s in written)

    def _renamed(self, ref: str, values: tuple[Any, ...], taken: set[str]) -> tuple[Any, ...]:
        """An IDS row identical to one in an earlier chunk: give it the next free '#n' reference."""
        base, n = ref.split("#", 1)[0], 2
        while True:
            candidate = f"{base}#{n}"
            if candidate not in taken and not self.writer.lookup(self.source, [candidate]):
                taken.add(candidate)
                out = list(values)
                out[I["source_ref"]] = candidate
                return tuple(out)
            n += 1

    def _continue(self, ref: str, values: tuple[Any, ...], rows: list[Any], hit: Stored) -> tuple[Any, ...]:
        """Rows of a case begun in an earlier chunk: check them against it, fill what it left blank."""
        conflicts = 0
        given = 0  # fields some row of this group filled in (the others hold defaults)
        for _row, mask, _seizure in rows:
            given |= mask
        for name, idx, bit in _COMPARED_IDX:
            new = values[idx]
            have = getattr(hit, name)
            if new is None or not given & bit:
                continue
            if have in (None, ""):
                self.writer.fill_incident(hit.id, name, new)
                if name == "place_text":
                    hit = hit._replace(place_text=new)
                continue
            if have != new:
                conflicts |= bit
        kept = []
        for row, mask, seizure in rows:
            bad = [name for name, _idx, bit in _COMPARED_IDX if mask & conflicts & bit]
            if bad:
                self._reject(
                    [(row, mask, seizure)],
                    [
                        Issue(
                            row,
                            self.columns.get(name, name),
                            str(values[I[name]]),
                            "differs from an earlier row of the same case",
                            ERROR,
                            f"case {ref.split(':', 1)[-1]} has {getattr(hit, name)}",
                        )
                        for name in bad
                    ],
                )
            else:
                kept.append((row, mask, seizure))
        return kept, hit.id, hit.occurred_on, hit.place_id, norm(hit.place_text)

    def _refused(self, values: tuple[Any, ...], rows: list[Any]) -> bool:
        """Reject the rows of a new incident that the importing user may not record; True if refused."""
        assert self.authorise is not None
        refused = self.authorise(
            values[I["reporting_org_id"]], values[I["marking"]], values[I["distribution"]]
        )
        if refused is None:
            return False
        field, reason = refused
        value = values[I[field]]
        shown = self.org_codes.get(value, value) if field == "reporting_org_id" else value
        column = self.columns.get(field, field)
        self._reject(rows, [Issue(r, column, str(shown or ""), reason, ERROR) for r, _m, _s in rows])
        return True

    def _reject(self, rows: list[Any], issues: list[Issue]) -> None:
        self.report.extend(issues)
        self.report.rows_rejected += len(rows)


def _flag_duplicates(writer: StoreWriter, report: ImportReport, column: str) -> None:
    pairs: list[tuple[str, str]] = []
    for group in writer.duplicate_groups():
        for original, dup, why in duplicates.find(group):
            pairs.append((original.seizure_id, dup.seizure_id))
            report.add(
                Issue(
                    dup.row,
                    column,
                    f"{dup.quantity:g} {dup.unit}",
                    "likely duplicate of an earlier row",
                    DUPLICATE,
                    f"row {original.row} ({original.quantity:g} {original.unit}): {why}",
                )
            )
            if len(pairs) >= 5000:
                writer.flag_duplicates(pairs)
                report.duplicates_flagged += len(pairs)
                pairs = []
    writer.flag_duplicates(pairs)
    report.duplicates_flagged += len(pairs)


def _organisations(conn: Connection) -> dict[str, tuple[str, str]]:
    """Every organisation by normalised code and names -> (id, code)."""
    rows = conn.execute(
        select(Organisation.id, Organisation.code, Organisation.name_en, Organisation.name_km)
    ).all()
    out: dict[str, tuple[str, str]] = {norm(code): (oid, code) for oid, code, _en, _km in rows}
    for oid, code, name_en, name_km in rows:  # codes first: a name never shadows a code
        for name in (name_en, name_km):
            if name:
                out.setdefault(norm(name), (oid, code))
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _db_reason(exc: DBAPIError) -> str:
    text = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    if "locked" in text or "busy" in text:
        return "the database is busy with another write; try again in a moment"
    return text
