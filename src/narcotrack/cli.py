"""The `narcotrack` command line.

Errors raised on purpose (``narcotrack.errors``) are turned into a one-line message and an exit code
here, in one place; anything else prints a short notice instead of a traceback unless NARCOTRACK_DEBUG=1.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError

from narcotrack import __version__
from narcotrack.config import Settings
from narcotrack.errors import ImportRejected, NarcotrackError, StoreError

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True)
out = Console()

app = typer.Typer(
    name="narcotrack",
    help="narcotrack: record drug seizures, arrests and operations once, share them as their owner "
    "chooses, and turn them into evidence for policy. The store is a SQLite file in ./data unless "
    "NARCOTRACK_DATABASE_URL names another (e.g. postgresql://user@host/db).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",  # joins the docstrings' wrapped lines into paragraphs
)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True, rich_markup_mode="markdown")
app.add_typer(users_app, name="users")
audit_app = typer.Typer(help="Check the audit log.", no_args_is_help=True, rich_markup_mode="markdown")
app.add_typer(audit_app, name="audit")


def handle_errors(func: F) -> F:
    """Map narcotrack errors to a message on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ImportRejected as exc:
            if exc.report is not None:
                err.print(_report_text(exc.report), markup=False, highlight=False)
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except NarcotrackError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except OperationalError as exc:
            err.print(
                f"[red]error:[/red] the store could not be reached or answered with an error: {exc.orig}",
                highlight=False,
            )
            raise typer.Exit(StoreError.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted; nothing was committed by the interrupted step")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit, typer.TyperException):
            raise  # click reports a bad option itself, with the usage line and exit status 2
        except Exception as exc:
            if os.environ.get("NARCOTRACK_DEBUG") == "1":
                raise
            err.print(
                f"[red]internal error:[/red] {type(exc).__name__}: {exc}\n"
                "This is a bug in narcotrack. Run again with NARCOTRACK_DEBUG=1 to see the details.",
                highlight=False,
            )
            raise typer.Exit(70) from None

    return wrapper  # type: ignore[return-value]


def _report_text(report: Any) -> str:
    render = getattr(report, "to_text", None)
    return str(render()) if callable(render) else str(report)


def _engine(url: str | None = None) -> Any:
    from narcotrack.store.db import make_engine

    return make_engine(url)


def _version(value: bool) -> None:
    if value:
        out.print(f"narcotrack {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Shared options."""


@app.command()
@handle_errors
def init() -> None:
    """Create the store (or upgrade it to the current schema) and load the gazetteer and organisations.

    Safe to run again: existing data is kept. Runs on the store named by NARCOTRACK_DATABASE_URL, or on
    ./data/narcotrack.sqlite.
    """
    from narcotrack.store.repo import init_store

    engine = _engine()
    seeded = init_store(engine)
    out.print(
        f"store ready at {engine.url.render_as_string(hide_password=True)} "
        f"({seeded['places']} places and {seeded['organisations']} organisations added)"
    )


@app.command("import")
@handle_errors
def import_(
    file: Annotated[
        Path, typer.Argument(help="CSV, CSV.GZ or XLSX file, or a STIX 2.1 bundle (.json).", show_default=False)
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="auto (a .json file is a STIX bundle; otherwise detect from the header), narcotrack "
            "(the template of `narcotrack template`), ids (UNODC Individual "
            "Drug Seizures) or stix (a STIX 2.1 bundle from a partner node).",
        ),
    ] = "auto",
    partial: Annotated[
        bool,
        typer.Option(
            "--partial",
            help="Import the good rows even when some rows are "
            "bad. Without it a file with any bad row changes nothing.",
        ),
    ] = False,
    org: Annotated[
        str | None,
        typer.Option(
            "--org", help="Code of the reporting organisation for rows that do not name one, e.g. KH-PP-12."
        ),
    ] = None,
    errors_csv: Annotated[
        Path | None,
        typer.Option(
            "--errors-csv", help="Also write every row error to this CSV file (row, column, value, reason)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    distribution: Annotated[
        str | None,
        typer.Option(
            help="Share the imported records this widely here (owner, domestic or partners): for a STIX "
            "bundle instead of as the partner marked them; for an IDS file from --partner, by default domestic."
        ),
    ] = None,
    partner: Annotated[
        str | None,
        typer.Option(
            "--partner",
            help="IDS files only: the code of the partner that sent the file, e.g. TH-ONCB. Its seizures "
            "are stored as that partner's (owner and reporting organisation) instead of UNODC's.",
        ),
    ] = None,
    marking: Annotated[
        str | None,
        typer.Option(help="IDS files from --partner only: the TLP marking to keep them under (default GREEN)."),
    ] = None,
) -> None:
    """Import seizures from a spreadsheet, or a partner's STIX 2.1 bundle, checking every row first.

    Every bad row is reported with its row number, column, value and the reason. By default the import is
    all-or-nothing: if any row is bad, nothing is stored and the command exits with status 2. Importing
    the same file again adds nothing twice. Seizures in the file that look like the same seizure reported
    twice (same date, place and drug, equivalent amount in another unit) are flagged, not merged.

    A STIX bundle (from `narcotrack export stix` on a partner's node) keeps the partner's ids, owner and
    TLP marking; an object already held is updated only when the partner's copy is newer. An IDS file
    from a partner (`--format ids --partner TH-ONCB`) is stored as that partner's seizures.
    """
    from narcotrack.ingest.importer import import_file
    from narcotrack.store.repo import init_store

    if format not in {"auto", "narcotrack", "ids", "stix"}:
        raise typer.BadParameter("choose auto, narcotrack, ids or stix", param_hint="--format")
    if not file.exists():
        from narcotrack.errors import InvalidInput

        raise InvalidInput(f"no such file: {file}")
    engine = _engine()
    init_store(engine)
    if format == "stix" or (format == "auto" and file.suffix.lower() == ".json"):
        if partner is not None or marking is not None:
            raise typer.BadParameter("a STIX bundle names its owner and marking itself; --partner and --marking "
                                     "are for IDS files", param_hint="--partner")
        _import_stix(engine, file, partial=partial, distribution=distribution)
        return
    source = None
    if partner is not None:
        from narcotrack.ingest.importer import PartnerSource

        source = PartnerSource(partner, marking or "GREEN", distribution or "domestic")
    elif marking is not None or distribution is not None:
        raise typer.BadParameter("--marking and --distribution apply to STIX bundles and to IDS files from "
                                 "a --partner", param_hint="--partner")
    with _progress(quiet, f"importing {file.name}") as progress:
        try:
            report = import_file(engine, file, fmt=format, partial=partial, org_code=org, progress=progress,
                                 partner=source)
        except ImportRejected as exc:
            if errors_csv is not None and exc.report is not None:
                exc.report.write_errors_csv(errors_csv)  # type: ignore[attr-defined]
            raise
    if errors_csv is not None:
        report.write_errors_csv(errors_csv)
    _refresh_summaries(engine)
    out.print(_report_text(report), markup=False, highlight=False)


def _import_stix(engine: Any, file: Path, *, partial: bool, distribution: str | None) -> None:
    from narcotrack.exchange.stix_import import import_file as import_bundle
    if distribution is not None and distribution not in ("owner", "domestic", "partners"):
        raise typer.BadParameter("choose owner, domestic or partners", param_hint="--distribution")
    report = import_bundle(engine, file, partial=partial, distribution=distribution)
    _refresh_summaries(engine)
    out.print(report.to_text(), markup=False, highlight=False)


class _progress:
    """A rich progress bar fed by (done, total) byte counts; a no-op when quiet or not a terminal."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.enabled = not quiet and err.is_terminal
        self.label = label
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int, int | None], None] | None:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=None)

        def update(done: int, total: int | None) -> None:
            self._bar.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@app.command()
@handle_errors
def template(
    file: Annotated[
        Path, typer.Argument(help="Where to write the template: a .xlsx or .csv name.", show_default=False)
    ],
) -> None:
    """Write an empty import template with Khmer and English column headers.

    The XLSX template also lists the allowed values (drugs, units, provinces...) on a second sheet and
    carries example rows. Fill it in and load it with `narcotrack import`.
    """
    from narcotrack.errors import InvalidInput

    if file.suffix.lower() not in {".xlsx", ".csv"}:
        raise InvalidInput("the template file name must end in .xlsx or .csv")
    from narcotrack.ingest.template import write_template

    write_template(file)
    out.print(f"template written to {file}")


@app.command()
@handle_errors
def demo(
    years: Annotated[int, typer.Option(min=1, max=30, help="How many years of history to generate.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 1,
    scale: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Volume multiplier: 1 is Cambodia's published "
            "yearly volume; 25 gives over a million incidents.",
        ),
    ] = 1.0,
) -> None:
    """Fill an empty store with realistic, invented demo data (seizures, arrests, networks, operations).

    Nothing in it is real: names and events are generated, calibrated to published national figures.
    Refuses a store that already holds incidents.
    """
    from narcotrack.ingest.demo import generate
    from narcotrack.store.repo import init_store

    engine = _engine()
    init_store(engine)
    summary = generate(engine, years=years, seed=seed, scale=scale)
    _refresh_summaries(engine)
    out.print(summary)


@app.command()
@handle_errors
def serve(
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Serve a demo store (./data/demo.sqlite unless "
            "NARCOTRACK_DATABASE_URL is set), filled with demo data on first "
            "start.",
        ),
    ] = False,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
) -> None:
    """Start the web platform (pages, JSON API under /api/v1, health check at /health)."""
    import uvicorn

    from narcotrack.store.repo import init_store
    from narcotrack.web.app import create_app

    settings = Settings()
    url = settings.database_url
    if demo and not url:
        url = f"sqlite:///{(settings.data_dir / 'demo.sqlite').resolve()}"
    engine = _engine(url)
    init_store(engine)
    if demo:
        _ensure_demo_data(engine)
        _ensure_demo_users(engine)
    uvicorn.run(
        create_app(engine, demo=demo),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
    )


def _ensure_demo_data(engine: Any) -> None:
    from sqlalchemy import func, select

    from narcotrack.ingest.demo import generate
    from narcotrack.store.schema import Incident

    with engine.connect() as conn:
        if conn.scalar(select(func.count()).select_from(Incident)):
            return
    err.print("first start: generating five years of demo data (seed 1)...")
    generate(engine, years=5, seed=1, scale=1.0)
    _refresh_summaries(engine)


def _refresh_summaries(engine: Any) -> None:
    """Count new rows into the monthly trend summaries now, rather than on the first trend page."""
    from narcotrack.store.summary import refresh_store

    refresh_store(engine)


DEMO_PASSWORD = "mekong-demo-2026"
DEMO_USERS = (("admin", "KH-NACD", "admin"), ("analyst", "KH-NACD", "analyst"), ("officer", "KH-PP-01", "officer"),
              ("liaison-th", "TH-ONCB", "liaison"), ("viewer", "KH-MOH", "viewer"))


def _ensure_demo_users(engine: Any) -> None:
    """Demo accounts sharing one published password (DEMO_PASSWORD), only ever in a demo store."""
    from sqlalchemy import select

    from narcotrack.domain.models import UserIn
    from narcotrack.store.db import session_scope
    from narcotrack.store.repo import create_user
    from narcotrack.store.schema import User

    with session_scope(engine) as session:
        existing = set(session.scalars(select(User.username)))
        for username, org, role in DEMO_USERS:
            if username not in existing:
                create_user(session, UserIn(username=username, org=org, role=role, password=DEMO_PASSWORD,
                                            display_name=f"Demo {role}"))


@users_app.command("create")
@handle_errors
def users_create(
    username: Annotated[
        str, typer.Argument(help="Login name (letters, digits, . _ @ -).", show_default=False)
    ],
    org: Annotated[str, typer.Option("--org", help="Code of the user's organisation, e.g. KH-NACD.")],
    role: Annotated[str, typer.Option("--role", help="admin, analyst, officer, liaison or viewer.")],
    display_name: Annotated[str, typer.Option("--name", help="Full name shown in the interface.")] = "",
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help="Password (at least 8 characters); "
            "asked for when not given. Prefer the prompt: options "
            "end up in shell history.",
        ),
    ] = None,
) -> None:
    """Create a user account in an organisation with one role. The password is stored as an argon2 hash."""
    from pydantic import ValidationError

    from narcotrack.domain.models import UserIn
    from narcotrack.errors import InvalidInput
    from narcotrack.store.db import session_scope
    from narcotrack.store.repo import create_user, init_store

    if password is None:
        if not sys.stdin.isatty():
            raise InvalidInput("no --password given and no terminal to ask for one")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserIn(username=username, org=org, role=role, display_name=display_name, password=password)
    except ValidationError as exc:
        raise InvalidInput(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from exc
    engine = _engine()
    init_store(engine)
    with session_scope(engine) as session:
        user = create_user(session, data)
        out.print(f"user {user.username} created ({user.role}, {org})")


@audit_app.command("verify")
@handle_errors
def audit_verify(
    head: Annotated[str | None, typer.Option("--head", help="A head noted earlier, as SEQ:HASH (printed by "
                                             "every verify): also detects events removed from the end.")] = None,
) -> None:
    """Walk the audit chain and report every event that was edited, deleted, inserted or reordered.

    Exits with status 0 when the chain is intact and 6 when it is not, naming each broken event. Prints
    the head (sequence number and hash) to note down for the next check.
    """
    from narcotrack.access.audit import verify_chain
    from narcotrack.errors import IntegrityViolation, InvalidInput

    expected = None
    if head:
        seq, _, digest = head.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise InvalidInput("--head must look like 1234:<64 hex characters>")
        expected = (int(seq), digest)
    with _engine().connect() as conn:
        report = verify_chain(conn, expected_head=expected)
    for bad_seq, why in report.problems:
        err.print(f"event {bad_seq}: {why}", highlight=False, markup=False)
    out.print(f"{report.checked} events checked; head {report.head_id}:{report.head_hash}")
    if not report.ok:
        raise IntegrityViolation(f"the audit chain is broken at {len(report.problems)} point(s)")
    out.print("audit chain intact")


from narcotrack.cli_analyse import analyse_app  # noqa: E402  (it uses handle_errors, defined above)

app.add_typer(analyse_app, name="analyse")

from narcotrack.cli_export import export_app  # noqa: E402

app.add_typer(export_app, name="export")

from narcotrack.cli_partners import partners_app  # noqa: E402

app.add_typer(partners_app, name="partners")

from narcotrack.cli_match import match_app  # noqa: E402

app.add_typer(match_app, name="match")


def main() -> None:
    app()
