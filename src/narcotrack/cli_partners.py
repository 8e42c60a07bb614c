"""`narcotrack partners ...`: the partners' TAXII servers this node pulls from and pushes to.

The logic is in ``narcotrack.exchange.partners`` and ``narcotrack.exchange.federation``; these commands only read options, print reports and
map errors (through ``handle_errors``) to one line and an exit status.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from narcotrack.errors import InvalidInput

out = Console()
err = Console(stderr=True)
partners_app = typer.Typer(
    help="Federation with partner nodes: register a partner's TAXII 2.1 server, pull what it shares with "
    "this node, push this node's records to it. Guide: docs/exchange-federation.md.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

NameArg = Annotated[str, typer.Argument(help="The partner's name on this node, as given to `partners add`, e.g. th-oncb.")]
UserOpt = Annotated[str | None, typer.Option(
    "--user", "-u", help="Record this user (an account of this node) in the audit trail as having run it.")]
RetriesOpt = Annotated[int, typer.Option(
    min=0, max=10, help="How many times to retry a request when the connection drops, times out or the partner "
    "answers with a server error (waiting 1, 2, 4 ... seconds between tries).")]
PARTIAL_EXIT = 2


def _handled(func: Any) -> Any:
    from narcotrack.cli import handle_errors

    return handle_errors(func)


def _user_id(session: Session, username: str | None) -> str | None:
    from narcotrack.access.accounts import active_user

    return None if username is None else active_user(session, username).id


def _secret(token_env: str | None, token: str | None) -> str:
    if (token_env is None) == (token is None):
        raise InvalidInput("give the partner's credential once: --token-env VAR (preferred: the secret stays out "
                           "of the shell history) or --token VALUE")
    if token_env is not None:
        value = os.environ.get(token_env, "")
        if not value:
            raise InvalidInput(f"the environment variable {token_env} is not set or empty")
        return value
    return token or ""


@partners_app.command("add")
@_handled
def partners_add(
    name: NameArg,
    api_root: Annotated[str, typer.Option(
        "--api-root", help="The partner's TAXII 2.1 API root, e.g. https://th-node.example/taxii2/api/ for a "
        "narcotrack node or http://host:5000/trustgroup1/ for medallion.")],
    org: Annotated[str, typer.Option(
        "--org", help="The organisation the partner's node speaks for (code on this node), e.g. TH-ONCB. "
        "Pushes hold what this organisation may see.")],
    token_env: Annotated[str | None, typer.Option(
        "--token-env", help="Read the credential from this environment variable (preferred). An API token of an "
        "account the partner gave this node, or basic:USER:PASSWORD for HTTP Basic.")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help="The credential itself (ends up in the shell history: prefer --token-env).")] = None,
    distribution: Annotated[str, typer.Option(
        help="Who on this node sees the records pulled from this partner: owner, domestic or partners. Their "
        "TLP marking and owner stay the partner's.")] = "domestic",
    user: UserOpt = None,
) -> None:
    """Register a partner's TAXII 2.1 server, or change one already registered (same name).

    The credential is stored sealed under this node's credential key (NARCOTRACK_CREDENTIAL_KEY or
    credential.key in the data folder) and never printed; `partners list` shows only its kind.
    Adding a partner fetches nothing: run `narcotrack partners pull NAME` next.
    """
    from narcotrack.cli import _engine
    from narcotrack.exchange.partners import add_partner
    from narcotrack.store.db import session_scope

    secret = _secret(token_env, token)
    with session_scope(_engine()) as session:
        partner, created = add_partner(session, name, api_root, org, secret, distribution,
                                       user_id=_user_id(session, user))
    verb = "added" if created else "updated"
    out.print(f"partner {partner.name} {verb}: {partner.api_root} for {partner.org_code} "
              f"({partner.auth_kind} credential; pulled records shared {partner.distribution})", highlight=False)


@partners_app.command("list")
@_handled
def partners_list(
    removed: Annotated[bool, typer.Option("--removed", help="Also list partners that were removed.")] = False,
) -> None:
    """List the partners: address, organisation, kind of credential and how far each collection was pulled
    (the cursor a pull resumes from) and pushed."""
    from narcotrack.cli import _engine
    from narcotrack.exchange.partners import list_partners

    with Session(_engine()) as session:
        infos = list_partners(session, include_removed=removed)
    if not infos:
        out.print("no partners yet: add one with narcotrack partners add")
        return
    for info in infos:
        p = info.partner
        state = "" if p.active else " [removed]"
        out.print(f"{p.name}{state}  {p.org_code}  {p.api_root}  credential: {p.auth_kind}  "
                  f"pulled records shared: {p.distribution}", highlight=False, markup=False, soft_wrap=True)
        for c in info.cursors:
            parts = []
            if c.added_after:
                parts.append(f"pulled up to {c.added_after} ({c.objects:,} objects)")
            if c.pushed_until:
                parts.append(f"pushed up to {c.pushed_until}")
            out.print(f"  collection {c.collection_id}: " + ("; ".join(parts) or "nothing yet"),
                      highlight=False, markup=False, soft_wrap=True)


@partners_app.command("pull")
@_handled
def partners_pull(
    name: NameArg,
    collection: Annotated[list[str] | None, typer.Option(
        "--collection", "-c", help="Only this collection (id or title; repeatable). Default: every collection "
        "the partner lets this node read (of a narcotrack node, 'Everything shared with you').")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Objects asked for per page.")] = 500,
    retries: RetriesOpt = 3,
    user: UserOpt = None,
) -> None:
    """Fetch what the partner shares with this node and store it, from where the last pull stopped.

    Each page is stored as it arrives and the cursor saved after it, so a pull cut by a dropped connection
    resumes without loss or duplicates when run again. Objects already held are updated only when the
    partner's copy is newer. Objects of types narcotrack does not store (indicators, malware, ...) are
    counted and left out. Exit status 0 when everything was stored, 2 when some objects were not (the
    report lists them), 10 when the partner cannot be reached.
    """
    from narcotrack.cli import _engine
    from narcotrack.exchange.federation import pull
    from narcotrack.exchange.partners import get_partner

    engine = _engine()
    with Session(engine) as session:
        partner = get_partner(session, name)
        user_id = _user_id(session, user)
    report = pull(engine, partner, user_id=user_id, limit=limit, collections=collection, retries=retries)
    out.print(report.to_text(), highlight=False, markup=False, soft_wrap=True)
    if any(c.problems for c in report.collections):
        raise typer.Exit(PARTIAL_EXIT)


@partners_app.command("push")
@_handled
def partners_push(
    name: NameArg,
    collection: Annotated[str | None, typer.Option(
        "--collection", "-c", help="The collection to write to (id or title). Default: the first one the "
        "partner lets this node write to (of a narcotrack node, its Inbox).")] = None,
    retries: RetriesOpt = 3,
    user: UserOpt = None,
) -> None:
    """Send the partner this node's own records that its organisation may see, changed since the last push.

    Only records owned by this node's own (domestic) organisations are sent, never what came from other
    partners; RED never leaves. Persons are named only where the agreement shares identities. The partner
    decides per object and its refusals are listed. Exit status 0 when all were accepted, 2 when some were
    refused, 10 when the partner cannot be reached.
    """
    from narcotrack.cli import _engine
    from narcotrack.exchange.federation import push
    from narcotrack.exchange.partners import get_partner

    engine = _engine()
    with Session(engine) as session:
        partner = get_partner(session, name)
        user_id = _user_id(session, user)
    report = push(engine, partner, user_id=user_id, collection=collection, retries=retries)
    out.print(report.to_text(), highlight=False, markup=False, soft_wrap=True)
    if report.failures:
        raise typer.Exit(PARTIAL_EXIT)


@partners_app.command("remove")
@_handled
def partners_remove(name: NameArg, user: UserOpt = None) -> None:
    """Stop pulling from and pushing to a partner, and erase its stored credential.

    Records pulled from it stay, with their provenance; `partners add` with the same name brings it back
    and the pulls resume from the old cursor.
    """
    from narcotrack.cli import _engine
    from narcotrack.exchange.partners import remove_partner
    from narcotrack.store.db import session_scope

    with session_scope(_engine()) as session:
        remove_partner(session, name, user_id=_user_id(session, user))
    out.print(f"partner {name} removed; its records and cursors are kept", highlight=False)
