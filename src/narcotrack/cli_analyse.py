"""`narcotrack analyse ...`: the analyses of the web pages, printed in the terminal or written as CSV.

Each command calls the same function as its page (``narcotrack.analytics.views``) and prints the same
table with its method. ``--user`` runs the analysis with that user's rights (only the rows the user may
see) and audits the run; without it the command reads the whole store, as the operator with database
access already can.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from narcotrack.errors import InvalidInput

out = Console()
analyse_app = typer.Typer(
    help="Analyse the store: trends, alerts, forecasts, routes, hotspots and operations. Each command "
    "prints a table with the method behind its numbers; `--format csv` writes the table as CSV.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table (readable, in the terminal) or csv.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of the terminal.")]
UserOpt = Annotated[
    str | None,
    typer.Option("--user", "-u", help="Analyse only what this user may see (and audit the run), e.g. analyst."),
]
FromOpt = Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")]
RowsOpt = Annotated[int, typer.Option("--rows", help="Rows to print in table format (CSV holds all).")]
MeasureOpt = Annotated[
    str, typer.Option("--measure", help="incidents, seizures, persons_arrested, kg or street_value_usd.")
]


def _date(value: str | None, option: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option} must be a date like 2024-06-30, not {value!r}") from None


def _window(value: str | None, option: str) -> tuple[dt.date, dt.date] | None:
    if not value:
        return None
    first, sep, last = value.partition(":")
    start, end = _date(first, option), _date(last, option)
    if not sep or start is None or end is None:
        raise InvalidInput(f"{option} must look like 2023-01-01:2023-12-31, not {value!r}")
    return start, end


def _keys(value: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in value.split(",") if k.strip())


class _Run:
    """An engine, the caller's visibility filter and, with --user, the user to audit the run for."""

    def __init__(self, username: str | None) -> None:
        from sqlalchemy.orm import Session

        from narcotrack.access.accounts import active_user
        from narcotrack.access.policy import principal_for, visible_filter
        from narcotrack.cli import _engine

        self.engine = _engine()
        self.user: Any = None
        self.visible: Any = None
        if username:
            with Session(self.engine) as session:
                user = active_user(session, username)
                principal = principal_for(session, org_id=user.org_id, role=user.role, user_id=user.id)
            self.user = user
            self.visible = functools.partial(visible_filter, principal)

    def audit(self, analysis: str, fmt: str, rows: int, params: dict[str, Any]) -> None:
        if self.user is None:
            return
        from narcotrack.access.audit import record_event

        with self.engine.begin() as conn:
            record_event(conn, "export" if fmt == "csv" else "analyse", user_id=self.user.id,
                         org_id=self.user.org_id, detail={"analysis": analysis, "format": fmt, "rows": rows,
                                                          "params": params, "via": "cli"})


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "csv"):
        raise InvalidInput(f"--format must be table or csv, not {fmt!r}")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def _emit(run: _Run, name: str, result: Any, *, fmt: str, out_path: Path | None, rows: int,
          params: dict[str, Any], table: str | None = None) -> None:
    """Print the result (main table, then the others, with method and notes) or write one table as CSV."""
    frames: dict[str, pd.DataFrame] = {name: result.table, **result.extra}
    chosen = table or name
    if chosen not in frames:
        raise InvalidInput(f"--table must be one of {', '.join(frames)}, not {chosen!r}")
    if fmt == "csv":
        frame = frames[chosen]
        text = frame.to_csv(index=False, date_format="%Y-%m-%d")
        if out_path is None:
            sys.stdout.write(text)
        else:
            out_path.write_text(text, encoding="utf-8")
        run.audit(name, fmt, len(frame), params)
        return
    console = Console(file=out_path.open("w", encoding="utf-8"), width=200) if out_path else out
    shown = [chosen] if table else list(frames)
    for key in shown:
        frame = frames[key]
        grid = Table(title=f"{result.title}: {key}" if key != name else result.title, title_justify="left")
        for col in frame.columns:
            grid.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left")
        for values in frame.head(rows).itertuples(index=False):
            grid.add_row(*(_cell(v) for v in values))
        console.print(grid)
        if len(frame) > rows:
            console.print(f"… {len(frame) - rows:,} more rows (use --rows or --format csv)", highlight=False)
    if result.method:
        console.print(f"Method: {result.method}", highlight=False, markup=False)
    for note in result.notes:
        console.print(f"Note: {note}", highlight=False, markup=False)
    if out_path:
        console.file.close()
    run.audit(name, fmt, len(result.table), params)


def _handled(func: Any) -> Any:
    from narcotrack.cli import handle_errors

    return handle_errors(func)


@analyse_app.command("trends")
@_handled
def trends(
    by: Annotated[str, typer.Option("--by", help="Comma-separated groups: drug, province, district, agency, "
                                                 "country, transport, nationality (or none).")] = "drug",
    period: Annotated[str, typer.Option("--period", help="week, month or quarter.")] = "month",
    measure: MeasureOpt = "seizures",
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    fmt: FormatOpt = "table",
    out_path: OutOpt = None,
    user: UserOpt = None,
    rows: RowsOpt = 40,
) -> None:
    """Counts of incidents, seizures, persons arrested and kg per period and group.

    For example `narcotrack analyse trends --by drug,province --period quarter --format csv`.
    """
    from narcotrack.analytics import views

    _check_format(fmt)
    run = _Run(user)
    params = {"by": by, "period": period, "measure": measure, "from": date_from, "to": date_to}
    with run.engine.connect() as conn:
        result = views.trends_view(conn, run.visible, period=period, by=_keys(by), measure=measure,
                                   start=_date(date_from, "--from"), end=_date(date_to, "--to"))
    _emit(run, "trends", result, fmt=fmt, out_path=out_path, rows=rows, params=params)


@analyse_app.command("alerts")
@_handled
def alerts(
    month: Annotated[str | None, typer.Option("--month", help="The month to check, YYYY-MM "
                                                             "(default: the latest month with data).")] = None,
    by: Annotated[str, typer.Option("--by", help="Series keys, comma-separated.")] = "province,drug",
    measure: MeasureOpt = "seizures",
    alpha: Annotated[float, typer.Option("--alpha", help="False-alarm rate per series and month.")] = 0.001,
    fmt: FormatOpt = "table",
    out_path: OutOpt = None,
    user: UserOpt = None,
    rows: RowsOpt = 40,
) -> None:
    """Series (province × drug by default) whose count this month breaks from their own history."""
    from narcotrack.analytics import views

    _check_format(fmt)
    run = _Run(user)
    params = {"month": month, "by": by, "measure": measure, "alpha": alpha}
    with run.engine.connect() as conn:
        result = views.alerts_view(conn, run.visible, measure=measure, keys=_keys(by),
                                   month=f"{month}-01" if month and len(month) == 7 else month, alpha=alpha)
    _emit(run, "alerts", result, fmt=fmt, out_path=out_path, rows=rows, params=params)


@analyse_app.command("forecast")
@_handled
def forecast_(
    by: Annotated[str, typer.Option("--by", help="Series keys, comma-separated, e.g. province,drug or "
                                                 "country,drug; empty for one national series.")] = "province,drug",
    horizon: Annotated[int, typer.Option("--horizon", help="Months to forecast (1-24).")] = 6,
    measure: MeasureOpt = "seizures",
    windows: Annotated[int, typer.Option("--windows", help="Backtest windows (rolling origins).")] = 3,
    table: Annotated[str | None, typer.Option("--table", help="forecast (the default) or accuracy: the "
                                                              "backtest MASE of every model.")] = None,
    fmt: FormatOpt = "table",
    out_path: OutOpt = None,
    user: UserOpt = None,
    rows: RowsOpt = 40,
) -> None:
    """Monthly forecasts per series with 80 % and 95 % intervals, and each model's backtest error.

    One CSV row per series × month: the series keys, period, model, point forecast and interval bounds
    (lo_80, hi_80, lo_95, hi_95). For example, on an imported UNODC IDS file:
    `narcotrack analyse forecast --by country,drug --horizon 24 --format csv`.
    """
    from narcotrack.analytics import views

    _check_format(fmt)
    run = _Run(user)
    params = {"by": by, "horizon": horizon, "measure": measure, "windows": windows}
    with run.engine.connect() as conn:
        result = views.forecast_all_view(conn, run.visible, keys=_keys(by), horizon=horizon, measure=measure,
                                         windows=windows)
    _emit(run, "forecast", result, fmt=fmt, out_path=out_path, rows=rows, params=params, table=table)


@analyse_app.command("routes")
@_handled
def routes(
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    before: Annotated[str | None, typer.Option("--before", help="First period of the shift test, "
                                                                "START:END.")] = None,
    after: Annotated[str | None, typer.Option("--after", help="Second period, START:END.")] = None,
    operation: Annotated[str | None, typer.Option("--operation", help="An operation id: show the "
                                                                      "displacement around it.")] = None,
    ids: Annotated[Path | None, typer.Option("--ids", help="Analyse this UNODC IDS file (.csv or .csv.gz) "
                                                           "instead of the store.")] = None,
    table: Annotated[str | None, typer.Option("--table", help="One table only: routes (corridors), "
                                                              "crossings, flows, shifts or displacement.")] = None,
    fmt: FormatOpt = "table",
    out_path: OutOpt = None,
    user: UserOpt = None,
    rows: RowsOpt = 20,
) -> None:
    """Trafficking corridors, border crossings and ports by volume, and corridors that emerged or declined.

    Without --before/--after the two halves of the window are compared. With --ids the file is read
    directly, e.g. `narcotrack analyse routes --ids ids.csv.gz --before 2012-01-01:2012-12-31
    --after 2013-01-01:2013-12-31`.
    """
    from narcotrack.analytics import views

    _check_format(fmt)
    run = _Run(user)
    params = {"from": date_from, "to": date_to, "before": before, "after": after, "operation": operation,
              "ids": str(ids) if ids else None}
    kwargs: dict[str, Any] = {"start": _date(date_from, "--from"), "end": _date(date_to, "--to"),
                              "before": _window(before, "--before"), "after": _window(after, "--after")}
    if ids is not None:
        if not ids.exists():
            raise InvalidInput(f"no such file: {ids}")
        result = views.routes_file_view(ids, **kwargs)
    else:
        with run.engine.connect() as conn:
            result = views.routes_view(conn, run.visible, operation_id=operation, **kwargs)
    _emit(run, "routes", result, fmt=fmt, out_path=out_path, rows=rows, params=params, table=table)


@analyse_app.command("hotspots")
@_handled
def hotspots_(
    level: Annotated[str, typer.Option("--level", help="province or district.")] = "district",
    measure: MeasureOpt = "seizures",
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    fdr: Annotated[float, typer.Option("--fdr", help="False discovery rate (Benjamini-Hochberg).")] = 0.05,
    fmt: FormatOpt = "table",
    out_path: OutOpt = None,
    user: UserOpt = None,
    rows: RowsOpt = 30,
) -> None:
    """Hot and cold spots of provinces or districts (Getis-Ord Gi*, FDR-corrected)."""
    from narcotrack.analytics import views

    _check_format(fmt)
    run = _Run(user)
    params = {"level": level, "measure": measure, "from": date_from, "to": date_to, "fdr": fdr}
    with run.engine.connect() as conn:
        result = views.hotspots_view(conn, run.visible, level=level, measure=measure, fdr=fdr,
                                     start=_date(date_from, "--from"), end=_date(date_to, "--to"))
    _emit(run, "hotspots", result, fmt=fmt, out_path=out_path, rows=rows, params=params)


@analyse_app.command("operations")
@_handled
def operations_(
    by: Annotated[str | None, typer.Option("--by", help="Stratify by drug, province or kind.")] = None,
    table: Annotated[str | None, typer.Option("--table", help="operations (the comparison, default) or "
                                                              "outcomes (one row per operation).")] = None,
    fmt: FormatOpt = "table",
    out_path: OutOpt = None,
    user: UserOpt = None,
    rows: RowsOpt = 40,
) -> None:
    """What joint operations achieve compared with single-agency ones, with bootstrap intervals.

    kg and persons per operation and the share of network members reached; an association, not a cause.
    """
    from narcotrack.analytics import views

    _check_format(fmt)
    run = _Run(user)
    with run.engine.connect() as conn:
        result = views.operations_view(conn, run.visible, by=by)
    _emit(run, "operations", result, fmt=fmt, out_path=out_path, rows=rows, params={"by": by}, table=table)
