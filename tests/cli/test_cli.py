from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from narcotrack.cli import app
from narcotrack.store.db import make_engine
from narcotrack.store.schema import User

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", url)
    return url


def test_init_creates_the_store_where_the_setting_says(store: str) -> None:
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 0, r.output
    assert "16722 places" in r.output
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 0 and "0 places" in again.output


def test_users_create_hashes_the_password(store: str) -> None:
    r = runner.invoke(
        app,
        ["users", "create", "sokha", "--org", "KH-NACD", "--role", "analyst", "--password", "long-enough-1"],
    )
    assert r.exit_code == 0, r.output
    with make_engine(store).connect() as conn:
        user = conn.execute(select(User)).one()
    assert user.password_hash.startswith("$argon2id$") and "long-enough-1" not in user.password_hash


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            [
                "users",
                "create",
                "xena",
                "--org",
                "KH-NOPE",
                "--role",
                "analyst",
                "--password",
                "long-enough-1",
            ],
            3,
            "no organisation with code 'KH-NOPE'",
        ),
        (
            ["users", "create", "xena", "--org", "KH-NACD", "--role", "chief", "--password", "long-enough-1"],
            2,
            "unknown user roles 'chief'",
        ),
        (
            ["users", "create", "xena", "--org", "KH-NACD", "--role", "analyst", "--password", "short"],
            2,
            "password",
        ),
        (["template", "out.txt"], 2, "must end in .xlsx or .csv"),
    ],
)
def test_errors_are_one_clear_line_and_a_nonzero_exit(
    store: str, args: list[str], code: int, message: str
) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == code, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_duplicate_user_is_a_conflict(store: str) -> None:
    args = ["users", "create", "dara", "--org", "KH-ADP", "--role", "officer", "--password", "long-enough-1"]
    assert runner.invoke(app, args).exit_code == 0
    r = runner.invoke(app, args)
    assert r.exit_code == 4 and "already exists" in r.output
    with make_engine(store).connect() as conn:
        assert conn.scalar(select(func.count()).select_from(User)) == 1


def test_bad_database_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", "mysql://root@localhost/x")
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 2 and "SQLite or PostgreSQL" in r.output


def test_unreachable_database_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 5, r.output
    assert "Traceback" not in r.output


def test_installed_command_runs(tmp_path: Path) -> None:
    """The console script works as a user would call it, not only through the test runner."""
    exe = Path(sys.executable).with_name("narcotrack")
    env = {**os.environ, "NARCOTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}"}
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0 and r.stdout.startswith("narcotrack ")
    r = subprocess.run(
        [
            str(exe),
            "users",
            "create",
            "anna",
            "--org",
            "NOPE",
            "--role",
            "viewer",
            "--password",
            "long-enough-1",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 3
    assert "no organisation" in r.stderr and "Traceback" not in r.stderr


def test_demo_accounts_can_be_created(store: str) -> None:
    from narcotrack.cli import DEMO_PASSWORD, DEMO_USERS, _ensure_demo_users
    from narcotrack.store.repo import init_store

    engine = make_engine(store)
    init_store(engine)
    _ensure_demo_users(engine)
    _ensure_demo_users(engine)  # a second start adds nobody
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(User)) == len(DEMO_USERS)
    from narcotrack.access.accounts import authenticate
    from narcotrack.store.db import session_scope

    with session_scope(engine) as s:
        assert authenticate(s, "liaison-th", DEMO_PASSWORD).role == "liaison"
