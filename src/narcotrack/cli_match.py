"""`narcotrack match ...`: find the persons two nodes both hold without either sending a name.

Both nodes agree on a secret outside narcotrack (handed over in person, as an agreement's annex). Each
runs ``match encode`` for the other, swaps the file, and one of them (or both) runs ``match compare``.
What each learns is the list of matched pairs of pseudonyms; ``--user`` on ``compare`` turns this node's
pseudonyms back into its own person ids, for a user allowed to see them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session

from narcotrack.errors import InvalidInput

out = Console()
match_app = typer.Typer(
    help="Privacy-preserving person matching with a partner node: encode persons as Bloom-filter CLKs under "
    "a shared secret, swap the files, compare them; only matched pseudonyms are revealed.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

SecretEnv = Annotated[str, typer.Option(
    "--secret-env", help="Name of the environment variable holding the secret shared with the partner "
    "(at least 16 characters; read from the environment so that it stays out of shell history).")]
UserOpt = Annotated[str, typer.Option("--user", "-u", help="Encode with this user's rights, e.g. analyst.")]
PartnerOpt = Annotated[str, typer.Option(
    "--partner", "-p", help="The partner organisation the file is for, e.g. TH-ONCB: the pseudonyms are the "
    "ones this partner already receives in STIX exports.")]


def _handled(func: Any) -> Any:
    from narcotrack.cli import handle_errors

    return handle_errors(func)


def _secret(env: str) -> bytes:
    value = os.environ.get(env, "")
    if len(value) < 16:
        raise InvalidInput(f"set the shared secret in the environment variable {env} (at least 16 characters)")
    return value.encode()


def _org(session: Session, code: str) -> tuple[str, str]:
    from narcotrack.store.schema import Organisation

    org = session.scalar(select(Organisation).where(Organisation.code == code))
    if org is None:
        raise InvalidInput(f"no organisation with code {code!r}")
    return org.id, org.code


@match_app.command("encode")
@_handled
def match_encode(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Where to write the encodings (JSON).")],
    user: UserOpt,
    partner: PartnerOpt,
    secret_env: SecretEnv = "NARCOTRACK_MATCH_SECRET",
) -> None:
    """Encode the persons the user sees with their identity in full, for one partner.

    Each person's Latin-script name, date (or year) of birth and sex become a 1,024-bit CLK keyed by the
    shared secret; the file holds the CLKs, keyed block labels and the partner's pseudonyms, and no name
    or date. Persons seen only under a pseudonym, or with no Latin-script name, are left out. Audited as
    an export and as a read of identity.
    """
    from narcotrack.access.audit import record_event
    from narcotrack.cli import _engine
    from narcotrack.cli_export import Caller
    from narcotrack.config import get_settings
    from narcotrack.exchange import pprl, pprl_files

    secret = _secret(secret_env)
    with Session(_engine()) as session:
        caller = Caller(session, user=user, partner=None)
        partner_id, partner_code = _org(session, partner)
        node = _org_code(session, caller.org_id)
        enc = pprl.encode_persons(session, caller.principal, secret,
                                  pseudonym_key=get_settings().pseudonym_key_bytes(), agreement=partner_id)
        tmp = out_file.with_name(out_file.name + ".part")
        with tmp.open("w", encoding="utf-8") as fh:
            written = pprl_files.write(fh, enc, node=node, partner=partner_code)
        tmp.replace(out_file)
        record_event(session.connection(), "read_person_identity", user_id=caller.user_id, org_id=caller.org_id,
                     record_type="person", detail={"persons": written, "via": "match encode"})
        caller.audit(session, "clk", {"file": out_file.name, "persons": written, "for": partner_code})
        session.commit()
    out.print(f"Wrote the encodings of {written} persons for {partner_code} to {out_file}.")


def _org_code(session: Session, org_id: str) -> str:
    from narcotrack.store.schema import Organisation

    org = session.get(Organisation, org_id)
    return org.code if org is not None else ""


@match_app.command("compare")
@_handled
def match_compare(
    ours: Annotated[Path, typer.Argument(help="This node's encoding file (from match encode).")],
    theirs: Annotated[Path, typer.Argument(help="The partner's encoding file.")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Where to write the matched pairs (CSV).")],
    threshold: Annotated[float, typer.Option(
        help="Lowest Dice coefficient that counts as the same person (0.85 gave the best F1 on test data).")]
    = 0.85,
    user: Annotated[str | None, typer.Option(
        "--user", "-u", help="Also name this node's person id for each match, with this user's rights "
        "(audited); without it the file holds pseudonyms only.")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Compare every pair instead of only pairs sharing a block label (slower, a little "
        "more recall).")] = False,
) -> None:
    """Compare two encoding files and write the matched pairs: our pseudonym, theirs, and the Dice score.

    Matching is one to one, best pair first. Both files must come from the same schema and secret;
    files from different secrets simply match nothing.
    """
    from narcotrack.exchange import pprl_files

    a, b = pprl_files.read(ours), pprl_files.read(theirs)
    pairs = pprl_files.compare(a, b, threshold, blocked=not full)
    header: tuple[str, ...] = ("our_pseudonym", "their_pseudonym", "dice")
    rows: list[tuple[object, ...]] = list(pairs)
    if user is not None:
        rows, header = _resolve(pairs, user, a.partner), (*header, "our_person_id")
    tmp = out_file.with_name(out_file.name + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        pprl_files.write_pairs(fh, rows, header)
    tmp.replace(out_file)
    out.print(f"{len(pairs)} matches between {len(a.encodings.pseudonyms)} persons of {a.node or ours.name} "
              f"and {len(b.encodings.pseudonyms)} of {b.node or theirs.name}, written to {out_file}.")


def _resolve(pairs: list[tuple[str, str, float]], user: str, partner_code: str) -> list[tuple[object, ...]]:
    """Our pseudonyms back to our person ids, for the persons the user may see in full."""
    from narcotrack.access.audit import record_event
    from narcotrack.access.policy import full_identity_filter, pseudonym, visible_filter
    from narcotrack.cli import _engine
    from narcotrack.cli_export import Caller
    from narcotrack.config import get_settings
    from narcotrack.store.schema import Person

    key = get_settings().pseudonym_key_bytes()
    with Session(_engine()) as session:
        caller = Caller(session, user=user, partner=None)
        partner_id, _ = _org(session, partner_code)
        table = Person.__table__
        ids = session.scalars(select(Person.id).where(visible_filter(caller.principal, table),
                                                      full_identity_filter(caller.principal, table))).all()
        back = {pseudonym(key, partner_id, str(i)): str(i) for i in ids}
        resolved = [back.get(p[0], "") for p in pairs]
        rows: list[tuple[object, ...]] = [(*p, r) for p, r in zip(pairs, resolved, strict=True)]
        found = sorted(r for r in resolved if r)
        record_event(session.connection(), "read_person_identity", user_id=caller.user_id, org_id=caller.org_id,
                     record_type="person", detail={"persons": len(found), "via": "match compare",
                                                   "partner": partner_code, "ids": found[:1000]})
        session.commit()
    return rows
