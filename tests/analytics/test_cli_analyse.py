"""`narcotrack analyse ...` prints and writes the same tables as the analysis functions, within a user's rights."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from narcotrack.analytics import tables
from narcotrack.cli import app
from narcotrack.store.db import make_engine
from narcotrack.store.schema import AuditEvent
from tests.web.helpers import make_user

runner = CliRunner()


def _use(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", engine.url.render_as_string(hide_password=False))


def test_trends_csv_counts_every_seizure_by_drug(demo_store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, demo_store)
    r = runner.invoke(app, ["analyse", "trends", "--by", "drug", "--period", "quarter", "--format", "csv"])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(io.StringIO(r.stdout))
    with demo_store.connect() as conn:
        expected = tables.seizures(conn).groupby("drug").size()
    assert got.groupby("drug")["seizures"].sum().sort_index().to_dict() == expected.sort_index().to_dict()


def test_table_format_states_the_method(demo_store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, demo_store)
    r = runner.invoke(app, ["analyse", "hotspots", "--level", "district"])
    assert r.exit_code == 0, r.output
    assert "Method:" in r.stdout and "Gi*" in r.stdout


def test_forecast_on_real_ids_writes_one_row_per_series_and_month(
    ids_store: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _use(monkeypatch, ids_store)
    out = tmp_path / "fc.csv"
    r = runner.invoke(app, ["analyse", "forecast", "--by", "country,drug", "--horizon", "24", "--format", "csv",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(out)
    assert list(fc.columns) == ["country", "drug", "period", "model", "point", "lo_80", "hi_80", "lo_95", "hi_95"]
    per_series = fc.groupby(["country", "drug"]).size()
    assert (per_series == 24).all() and len(per_series) > 300
    assert fc["period"].min() == "2015-01-01" and fc["period"].max() == "2016-12-01"
    assert (fc["lo_95"] <= fc["point"]).all() and (fc["point"] <= fc["hi_95"]).all()


def test_user_sees_only_their_rows_and_the_run_is_audited(
    demo_store: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "copy.sqlite"
    source = demo_store.url.database
    assert source is not None
    shutil.copy(source, path)
    engine = make_engine(f"sqlite:///{path}")
    make_user(engine, "lao-liaison", "LA-LCDC", "liaison")
    _use(monkeypatch, engine)
    everything = runner.invoke(app, ["analyse", "trends", "--by", "", "--format", "csv"])
    liaison = runner.invoke(app, ["analyse", "trends", "--by", "", "--format", "csv", "--user", "lao-liaison"])
    assert everything.exit_code == 0 and liaison.exit_code == 0, liaison.output
    total = pd.read_csv(io.StringIO(everything.stdout))["seizures"].sum()
    seen = pd.read_csv(io.StringIO(liaison.stdout))["seizures"].sum() if liaison.stdout.strip() else 0
    assert seen < total
    with engine.connect() as conn:
        events = conn.execute(select(AuditEvent.action, AuditEvent.detail)).all()
    assert [(a, d["analysis"]) for a, d in events if a == "export"] == [("export", "trends")]
    engine.dispose()


def test_bad_option_is_one_line_not_a_traceback(demo_store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, demo_store)
    r = runner.invoke(app, ["analyse", "trends", "--period", "fortnight"])
    assert r.exit_code == 2
    assert "Traceback" not in r.output and "period" in r.output
