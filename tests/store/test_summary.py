"""The monthly trend summaries: every change logs the months it touches, and a refresh leaves the summaries
exactly as a rebuild from the base tables would; on PostgreSQL writers of one month do not wait for each
other, and a refresh waits for writers still in flight."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, text, update

from narcotrack.domain.models import ArrestIn, IncidentIn, PersonIn, SeizureIn
from narcotrack.store import summary
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident
from narcotrack.store.schema import Arrest, Incident, Seizure, trend_month_drug, trend_month_incident


def _record(engine: Engine, day: dt.date, *, drugs: tuple[str, ...] = ("yaba",), persons: int = 1,
            province: str = "Phnom Penh", **sharing: str) -> str:
    seizures = [SeizureIn(drug=d, quantity=1, unit="kg") for d in drugs]
    arrests = [ArrestIn(role="courier", person=PersonIn(name_latin=f"P {i}", nationality="Cambodia"))
               for i in range(persons)]
    with session_scope(engine) as s:
        return str(create_incident(s, IncidentIn(occurred_on=day, province=province, reporting_org="KH-PP-12",
                                                 seizures=seizures, arrests=arrests, **sharing)))


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)).all())
                for t in (trend_month_drug, trend_month_incident)}


def _as_rebuilt(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.begin() as conn:
        summary.rebuild(conn)
    return _rows(engine)


def _pending(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return summary.pending_months(conn)


def test_refresh_counts_what_was_recorded(engine: Engine) -> None:
    _record(engine, dt.date(2024, 1, 5), drugs=("yaba", "yaba", "ice"), persons=2)
    _record(engine, dt.date(2024, 1, 20), drugs=(), persons=1)
    _record(engine, dt.date(2024, 2, 1), drugs=("heroin",), persons=0, marking="GREEN", distribution="partners")
    assert _pending(engine) == ["2024-01", "2024-02"]
    assert summary.refresh_store(engine) == ["2024-01", "2024-02"]
    assert _pending(engine) == [] and summary.refresh_store(engine) == []
    with engine.connect() as conn:
        drug = {(r.month, r.drug): (r.incidents, r.seizures, r.kg, r.persons)
                for r in conn.execute(select(trend_month_drug))}
        incident = {(r.month, r.marking): (r.incidents, r.persons) for r in conn.execute(select(trend_month_incident))}
    assert drug == {("2024-01", "methamphetamine_tablets"): (1, 2, 2.0, 2),
                    ("2024-01", "methamphetamine_crystalline"): (1, 1, 1.0, 2),
                    ("2024-02", "heroin"): (1, 1, 1.0, 0)}
    assert incident == {("2024-01", "AMBER"): (2, 3), ("2024-02", "GREEN"): (1, 0)}


def test_every_change_logs_its_months_and_a_refresh_equals_a_rebuild(engine: Engine) -> None:
    jan = _record(engine, dt.date(2024, 1, 5), drugs=("yaba", "ice"), persons=2)
    mar = _record(engine, dt.date(2024, 3, 9), drugs=("heroin",), persons=1)
    summary.refresh_store(engine)

    def change(*statements: Any) -> list[str]:
        with engine.begin() as conn:
            for st in statements:
                conn.execute(st)
        months = _pending(engine)
        summary.refresh_store(engine)
        assert _rows(engine) == _as_rebuilt(engine)
        return months

    assert change(update(Incident).where(Incident.id == jan).values(narrative="new text")) == []
    assert change(update(Seizure).where(Seizure.incident_id == jan).values(likely_duplicate_of=mar)) == []
    assert change(update(Seizure).where(Seizure.incident_id == jan).values(mass_kg=3.5)) == ["2024-01"]
    assert change(update(Incident).where(Incident.id == jan).values(occurred_on=dt.date(2024, 2, 2))) == [
        "2024-01", "2024-02"]
    assert change(update(Incident).where(Incident.id == mar).values(marking="RED", distribution="owner")) == [
        "2024-03"]
    assert change(delete(Arrest).where(Arrest.incident_id == jan)) == ["2024-02"]
    assert change(update(Seizure).where(Seizure.incident_id == mar).values(incident_id=jan)) == [
        "2024-02", "2024-03"]
    assert change(delete(Incident).where(Incident.id == mar)) == ["2024-03"]
    _record(engine, dt.date(2024, 5, 31))
    assert _pending(engine) == ["2024-05"]
    summary.refresh_store(engine)
    assert _rows(engine) == _as_rebuilt(engine)
    with engine.connect() as conn:
        assert {r.month for r in conn.execute(select(trend_month_incident))} == {"2024-02", "2024-05"}


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)  # SQLite has one writer at a time
def test_writers_of_one_month_do_not_wait_for_each_other_and_a_refresh_waits_for_them(engine: Engine) -> None:
    _record(engine, dt.date(2024, 1, 5))  # committed, not yet refreshed
    org = text("SELECT id FROM organisation WHERE code = 'KH-PP-12'")
    with engine.connect() as first, engine.connect() as second:
        org_id = first.scalar(org)

        def add(conn: Any, n: int) -> None:
            conn.execute(Incident.__table__.insert().values(
                id=f"00000000-0000-7000-8000-00000000000{n}", occurred_on=dt.date(2024, 1, 10 + n),
                reporting_org_id=org_id, owner_org_id=org_id, source="form", version=1))

        add(first, 1)  # not committed
        second.execute(text("SET lock_timeout = '2s'"))
        add(second, 2)  # the same month: would time out if it waited for the first writer
        with engine.connect() as refresher:
            refresher.execute(text("SET lock_timeout = '500ms'"))
            with pytest.raises(Exception, match="lock timeout"):
                summary.refresh(refresher)
            refresher.rollback()
        first.commit()
        second.commit()
    assert summary.refresh_store(engine) == ["2024-01"]  # the first month and the writers', once
    with engine.connect() as conn:
        assert conn.scalar(select(func.sum(trend_month_incident.c.incidents))) == 3
