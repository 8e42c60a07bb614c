"""`narcotrack export ...`: write what a user or a partner may see in an exchange format.

Every export is made for someone: ``--user`` (an account of this node) or ``--partner`` (an
organisation code, read with a liaison's rights), so what a file holds is what the sharing policy lets
that caller see, never the whole store. Every export is audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session

from narcotrack.errors import InvalidInput

out = Console()
export_app = typer.Typer(
    help="Export records in exchange formats (STIX 2.1, UNODC IDS and ARQ), holding only what the user or "
    "partner it is run for may see.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

UserOpt = Annotated[str | None, typer.Option("--user", "-u", help="Export with this user's rights, e.g. analyst.")]
PartnerOpt = Annotated[
    str | None,
    typer.Option("--partner", "-p", help="Export what this partner organisation may see, e.g. TH-ONCB."),
]


WithUnodcOpt = Annotated[bool, typer.Option(
    "--with-unodc", help="Also include the rows imported from UNODC's own IDS data (owner UNODC-IDS); "
    "left out by default, since UNODC has them and its questionnaire would count them twice.")]


def _unodc_owner(session: Session, include: bool) -> str | None:
    from narcotrack.ingest.ids_format import ORG_CODE
    from narcotrack.store.schema import Organisation

    return None if include else session.scalar(select(Organisation.id).where(Organisation.code == ORG_CODE))


class Caller:
    """Whom an export is for: the principal the policy decides by, and who is audited for it."""

    def __init__(self, session: Session, *, user: str | None, partner: str | None) -> None:
        from narcotrack.access.accounts import active_user
        from narcotrack.access.policy import check_may_export, principal_for
        from narcotrack.store.schema import Organisation

        if (user is None) == (partner is None):
            raise InvalidInput("say whom the export is for: give --user NAME or --partner ORG_CODE (one of them)")
        self.user_id: str | None = None
        if user is not None:
            row = active_user(session, user)
            self.user_id, self.org_id, role = row.id, row.org_id, row.role
        else:
            org = session.scalar(select(Organisation).where(Organisation.code == partner))
            if org is None:
                raise InvalidInput(f"no organisation with code {partner!r}")
            self.org_id, role = org.id, "liaison"
        self.principal = principal_for(session, org_id=self.org_id, role=role, user_id=self.user_id)
        self.for_partner = partner
        check_may_export(self.principal)

    def audit(self, session: Session, fmt: str, detail: dict[str, Any]) -> None:
        from narcotrack.access.audit import record_event

        record_event(session.connection(), "export", user_id=self.user_id, org_id=self.org_id,
                     detail={"format": fmt, "via": "cli", "partner": self.for_partner, **detail})


def _handled(func: Any) -> Any:
    from narcotrack.cli import handle_errors

    return handle_errors(func)


def _since(value: str | None) -> Any:
    import datetime as dt

    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"--since {value!r} is not a date or timestamp (e.g. 2026-11-30 or 2026-11-30T08:00:00Z)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@export_app.command("stix")
@_handled
def export_stix(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Where to write the STIX 2.1 bundle (JSON).")],
    user: UserOpt = None,
    partner: PartnerOpt = None,
    since: Annotated[
        str | None, typer.Option(help="Only records changed after this UTC date or time (an incremental feed).")
    ] = None,
) -> None:
    """Write a STIX 2.1 bundle of the persons, operations and incidents the user or partner may see.

    Incidents carry their seizures and arrests in narcotrack's published extension; organisations become
    identities, places locations, operations groupings, persons individual identities (named in full only
    where the sharing agreement allows it, otherwise under the partner's pseudonym). RED records are never
    exported. The same data always gives the same ids and the same file.
    """
    from narcotrack.cli import _engine
    from narcotrack.config import get_settings
    from narcotrack.exchange.stix_export import StixExporter, write_bundle

    engine = _engine()
    with Session(engine) as session:
        caller = Caller(session, user=user, partner=partner)
        exporter = StixExporter(session.connection(), caller.principal, get_settings().pseudonym_key_bytes(),
                                since=_since(since))
        tmp = out_file.with_name(out_file.name + ".part")
        with tmp.open("w", encoding="utf-8") as fh:
            written = write_bundle(exporter.objects(), fh)
        tmp.replace(out_file)
        stats = exporter.stats
        if stats.persons_full:
            from narcotrack.access.audit import record_event

            record_event(session.connection(), "read_person_identity", user_id=caller.user_id, org_id=caller.org_id,
                         record_type="person", detail={"persons": stats.persons_full, "via": "export stix"})
        caller.audit(session, "stix", {"file": out_file.name, "objects": written, "since": since,
                                       "by_type": dict(sorted(stats.by_type.items()))})
        session.commit()
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.by_type.items()))
    out.print(f"Wrote {written} STIX objects to {out_file} ({counts}).")


def _day(value: str | None, option: str) -> Any:
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{option} {value!r} is not a date: write it as YYYY-MM-DD, e.g. 2025-01-31") from exc


@export_app.command("ids")
@_handled
def export_ids(
    out_file: Annotated[
        Path,
        typer.Option("--out", "-o", help="Where to write the rows: FILE.csv or FILE.csv.gz (';'-separated, as "
                     "UNODC publishes IDS data) or FILE.xlsx."),
    ],
    user: UserOpt = None,
    partner: PartnerOpt = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="Only seizures on or after this day (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Only seizures on or before this day (YYYY-MM-DD).")
    ] = None,
    with_unodc: WithUnodcOpt = False,
) -> None:
    """Write the seizures the user or partner may see as a UNODC Individual Drug Seizures (IDS) file.

    One row per seizure, in the 16 columns of UNODC's IDS data (COUNTRY, SEIZURE_DATE, DRUG_NAME, AMOUNT,
    DRUG_UNIT, ...) and with the terms UNODC uses, so that UNODC, or `narcotrack import FILE --format ids`
    on a partner's node, reads it back. IDS has no columns for persons, arrests, narratives or markings:
    none of them is in the file. RED records are never exported. With --from or --to, incidents without
    a date are left out. Mapping and limits: docs/exchange-unodc.md.
    """
    from narcotrack.cli import _engine
    from narcotrack.exchange.unodc import IdsStats, ids_rows, write_ids

    start, end = _day(date_from, "--from"), _day(date_to, "--to")
    if start and end and start > end:
        raise InvalidInput(f"--from {date_from} is after --to {date_to}")
    engine = _engine()
    with Session(engine) as session:
        caller = Caller(session, user=user, partner=partner)
        stats = IdsStats()
        written = write_ids(out_file, ids_rows(session.connection(), caller.principal, date_from=start,
                                               date_to=end, stats=stats,
                                               skip_owner=_unodc_owner(session, with_unodc)))
        caller.audit(session, "ids", {"file": out_file.name, "rows": written, "incidents": len(stats.incidents),
                                      "from": date_from, "to": date_to, "with_unodc": with_unodc,
                                      "by_drug": dict(sorted(stats.by_drug.items()))})
        session.commit()
    out.print(f"Wrote {written} IDS rows ({written} seizures of {len(stats.incidents)} incidents) to {out_file}.")


@export_app.command("arq")
@_handled
def export_arq(
    out_file: Annotated[
        Path,
        typer.Option("--out", "-o", help="Where to write the table: FILE.csv, FILE.xlsx or FILE.json (a list of "
                     "records, like UNODC's own seizure data)."),
    ],
    user: UserOpt = None,
    partner: PartnerOpt = None,
    year: Annotated[
        int | None, typer.Option("--year", min=1950, max=9999, help="Only this year, e.g. 2025 (default: every year).")
    ] = None,
    with_unodc: WithUnodcOpt = False,
) -> None:
    """Write annual seizure totals of what the user or partner may see, as for UNODC's Annual Report
    Questionnaire (ARQ).

    One row per year, country, drug and unit: number of cases (incidents), number of seizures, total
    quantity in that unit and total kilograms, under the column names of UNODC's published ARQ seizure
    data (Country/Territory, Drug group, DrugSubGroup, Drug, Year, Kilograms ...). RED records are never
    counted; seizures without a date have no year and are left out (the summary says how many). Mapping
    and limits: docs/exchange-unodc.md.
    """
    from narcotrack.cli import _engine
    from narcotrack.exchange.unodc import arq_counts, arq_rows, write_arq

    engine = _engine()
    with Session(engine) as session:
        caller = Caller(session, user=user, partner=partner)
        conn = session.connection()
        skip = _unodc_owner(session, with_unodc)
        rows = arq_rows(conn, caller.principal, year=year, skip_owner=skip)
        counts = arq_counts(conn, caller.principal, year=year, skip_owner=skip)
        written = write_arq(out_file, rows)
        caller.audit(session, "arq", {"file": out_file.name, "rows": written, "year": year,
                                      "with_unodc": with_unodc, **counts})
        session.commit()
    years = sorted({r["Year"] for r in rows})
    span = "no dated seizures" if not years else str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}"
    drugs = len({r["Drug code"] for r in rows})
    undated = counts["undated_seizures"]
    note = f"; {undated} undated seizures left out" if undated else ""
    out.print(f"Wrote {written} ARQ rows ({span}: {drugs} drugs, {counts['seizures']} seizures of "
              f"{counts['incidents']} incidents{note}) to {out_file}.")
