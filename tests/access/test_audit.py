"""The audit chain detects every kind of tampering, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from narcotrack.access.audit import record_event, verify_chain


def _write(engine: Engine, n: int = 6) -> None:
    with engine.begin() as conn:
        for i in range(n):
            record_event(conn, "read_person", user_id=f"user-{i % 2}", org_id="org", record_type="person",
                         record_id=f"p{i}", address="10.1.2.3", detail={"fields": ["name_km"], "i": i})


def _tamper(engine: Engine, sql: str) -> None:
    """Tamper as someone with direct database access would: first switch off the append-only guard."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_event_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_event_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        conn.exec_driver_sql(sql)
        if conn.dialect.name != "sqlite":  # the PostgreSQL database is shared by the session's later tests
            conn.exec_driver_sql("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")


def test_intact_chain_verifies(engine: Engine) -> None:
    _write(engine)
    with engine.connect() as conn:
        report = verify_chain(conn)
    assert report.ok and report.checked == 6 and report.head_id == 6


def test_database_refuses_update_and_delete(engine: Engine) -> None:
    _write(engine, 2)
    for sql in ("UPDATE audit_event SET outcome = 'denied'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(sql)


TAMPERING: dict[str, tuple[str, Callable[[list[tuple[int, str]]], bool]]] = {
    "edited": ("UPDATE audit_event SET record_id = 'p99' WHERE id = 3",
               lambda p: (3, "content changed after it was written") in p),
    "deleted": ("DELETE FROM audit_event WHERE id = 4",
                lambda p: any(seq == 5 and "deleted" in why for seq, why in p)),
    "reordered": ("UPDATE audit_event SET id = CASE id WHEN 2 THEN 102 WHEN 5 THEN 2 END WHERE id IN (2, 5); "
                  "UPDATE audit_event SET id = 5 WHERE id = 102",
                  lambda p: {2, 3, 5} <= {seq for seq, _ in p}),
    "hash recomputed": ("UPDATE audit_event SET outcome = 'denied', hash = '" + "a" * 64 + "' WHERE id = 2",
                        lambda p: {2, 3} <= {seq for seq, _ in p}),
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_is_detected_and_located(engine: Engine, kind: str) -> None:
    _write(engine)
    sql, located = TAMPERING[kind]
    for statement in sql.split("; "):
        _tamper(engine, statement)
    with engine.connect() as conn:
        report = verify_chain(conn)
    assert not report.ok
    assert located(report.problems), report.problems


def test_truncated_tail_needs_the_noted_head(engine: Engine) -> None:
    _write(engine)
    with engine.connect() as conn:
        head = verify_chain(conn)
    _tamper(engine, "DELETE FROM audit_event WHERE id >= 5")
    with engine.connect() as conn:
        assert verify_chain(conn).ok  # a shorter chain is still a valid chain ...
        report = verify_chain(conn, expected_head=(head.head_id, head.head_hash))
    assert not report.ok and report.problems[0][0] == 6  # ... but not the one that was noted


def test_cli_verify_exit_status(tmp_path: object, monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine) -> None:
    from typer.testing import CliRunner

    from narcotrack.cli import app

    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", str(sqlite_engine.url))
    _write(sqlite_engine)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "6 events checked" in ok.output and "intact" in ok.output
    head = ok.output.split("head ", 1)[1].split()[0]
    _tamper(sqlite_engine, "DELETE FROM audit_event WHERE id = 6")
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    broken = runner.invoke(app, ["audit", "verify", "--head", head])
    assert broken.exit_code == 6 and "event 6" in broken.output
