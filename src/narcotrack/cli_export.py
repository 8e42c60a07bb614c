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


class Caller:
    """Whom an export is for: the principal the policy decides by, and who is audited for it."""

    def __init__(self, session: Session, *, user: str | None, partner: str | None) -> None:
        from narcotrack.access.policy import check_may_export, principal_for
        from narcotrack.store.schema import Organisation, User

        if (user is None) == (partner is None):
            raise InvalidInput("say whom the export is for: give --user NAME or --partner ORG_CODE (one of them)")
        self.user_id: str | None = None
        if user is not None:
            row = session.scalar(select(User).where(User.username == user))
            if row is None or not row.active:
                raise InvalidInput(f"no active user named {user!r}")
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
