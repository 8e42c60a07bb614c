"""Dashboard figures and their cache: right per scope, never another scope's, fresh after every change."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import ColumnElement, Engine, delete, func, select
from sqlalchemy.orm import Session

from narcotrack.access.policy import Principal, principal_for, visible_filter
from narcotrack.domain.models import ArrestIn, IncidentIn, PersonIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.figures import (
    cached_dashboard_figures,
    cached_headline_figures,
    dashboard_figures,
    data_version,
    headline_figures,
    scope_key,
)
from narcotrack.store.repo import create_incident, org_id_by_code, update_incident
from narcotrack.store.schema import Arrest, Incident, Operation, Person, Seizure


def _incident(
    day: dt.date,
    org: str = "KH-PP-01",
    marking: str = "AMBER",
    distribution: str = "domestic",
    drug: str = "ice",
    qty: float = 1.5,
    suspect: str = "Sok Dara",
) -> IncidentIn:
    return IncidentIn.model_validate(
        {
            "occurred_on": day,
            "province": "Banteay Meanchey",
            "reporting_org": org,
            "marking": marking,
            "distribution": distribution,
            "seizures": [
                SeizureIn(drug=drug, quantity=qty, unit="kg"),
                SeizureIn(drug="yaba", quantity=200, unit="tablets"),
            ],
            "arrests": [
                ArrestIn(
                    role="courier",
                    charges=["ldc_trafficking"],
                    person=PersonIn(name_latin=suspect, sex="M", nationality="Cambodia"),
                )
            ],
        }
    )


def _store(engine: Engine) -> dict[str, str]:
    """Incidents of several owners, markings and distributions, over two years; returns ids by label."""
    ids = {}
    with session_scope(engine) as s:
        ids["domestic"] = create_incident(s, _incident(dt.date(2025, 3, 14)))
        ids["old"] = create_incident(s, _incident(dt.date(2023, 6, 1), drug="heroin", qty=0.2))
        ids["partners"] = create_incident(
            s, _incident(dt.date(2025, 1, 9), distribution="partners", qty=3.0, suspect="Chan Vuthy")
        )
        ids["red"] = create_incident(
            s,
            _incident(
                dt.date(2024, 11, 2),
                org="KH-NACD",
                marking="RED",
                distribution="owner",
                drug="ketamine",
                qty=12.0,
            ),
        )
    return ids


def _principal(engine: Engine, org: str, role: str) -> Principal:
    with Session(engine) as s:
        return principal_for(s, org_id=org_id_by_code(s, org), role=role)


def _vis(p: Principal) -> Callable[[Any], ColumnElement[bool]]:
    return functools.partial(visible_filter, p)


def _reference(s: Session, p: Principal, since: dt.date | None = None) -> dict[str, Any]:
    """The figures counted the plain way, row by row in SQL, to check the one-pass queries against."""
    vis = visible_filter(p, Incident)
    conds = [vis] + ([Incident.occurred_on >= since] if since else [])
    sei = (
        select(func.count(), func.coalesce(func.sum(Seizure.mass_kg), 0.0))
        .join(Incident, Incident.id == Seizure.incident_id)
        .where(*conds)
    )
    arr = (
        select(func.count(), func.count(func.distinct(Arrest.person_id)))
        .join(Incident, Incident.id == Arrest.incident_id)
        .where(*conds)
    )
    n_sei, kg = s.execute(sei).one()
    n_arr, n_persons = s.execute(arr).one()
    return {
        "incidents": s.scalar(select(func.count()).select_from(Incident).where(*conds)),
        "seizures": n_sei,
        "kg_seized": pytest.approx(float(kg)),
        "arrests": n_arr,
        "persons_arrested": n_persons,
        "persons_recorded": s.scalar(
            select(func.count()).select_from(Person).where(visible_filter(p, Person))
        ),
        "operations": s.scalar(
            select(func.count()).select_from(Operation).where(visible_filter(p, Operation))
        ),
        "latest_incident": s.scalar(select(func.max(Incident.occurred_on)).where(vis)),
    }


def _without_drugs(figs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figs.items() if k != "by_drug"}


def test_figures_count_what_each_scope_may_see(engine: Engine) -> None:
    _store(engine)
    analyst, liaison = _principal(engine, "KH-NACD", "analyst"), _principal(engine, "TH-ONCB", "liaison")
    with Session(engine) as s:
        for p in (analyst, liaison):
            total, recent = dashboard_figures(s, visible=_vis(p))
            assert _without_drugs(total) == _reference(s, p)
            assert recent is not None
            assert _without_drugs(recent) == _reference(
                s, p, since=total["latest_incident"] - dt.timedelta(days=365)
            )
            assert headline_figures(s, visible=_vis(p)) == total
        a_total = headline_figures(s, visible=_vis(analyst))
        l_total = headline_figures(s, visible=_vis(liaison))
    # the analyst sees all four (RED of its own organisation too); the Thai liaison only the partners one
    assert (a_total["incidents"], l_total["incidents"]) == (4, 1)
    assert a_total["by_drug"][0] == {"drug": "ketamine", "seizures": 1, "kg": pytest.approx(12.0)}
    assert [d["drug"] for d in l_total["by_drug"]] == [
        "methamphetamine_crystalline",
        "methamphetamine_tablets",
    ]


def test_cache_never_gives_one_scope_another_scopes_figures(engine: Engine) -> None:
    _store(engine)
    analyst, liaison = _principal(engine, "KH-NACD", "analyst"), _principal(engine, "TH-ONCB", "liaison")
    officer = _principal(engine, "KH-PP-01", "officer")
    with Session(engine) as s:
        assert len({scope_key(s, _vis(p)) for p in (analyst, liaison, officer)}) == 3
        for _ in range(2):  # the second round is served from the cache
            for p in (analyst, liaison, officer):
                assert cached_headline_figures(s, visible=_vis(p)) == headline_figures(s, visible=_vis(p))
                assert cached_dashboard_figures(s, visible=_vis(p)) == dashboard_figures(s, visible=_vis(p))
        counts = [
            cached_headline_figures(s, visible=_vis(p))["incidents"] for p in (analyst, liaison, officer)
        ]
    assert counts == [4, 1, 3]  # the officer's organisation owns three; the RED one is NACD's own


def test_cached_figures_show_a_new_incident_on_the_next_request(engine: Engine) -> None:
    _store(engine)
    liaison = _principal(engine, "TH-ONCB", "liaison")
    with Session(engine) as s:
        before = cached_dashboard_figures(s, visible=_vis(liaison))[0]
    with session_scope(engine) as s:
        create_incident(s, _incident(dt.date(2025, 5, 2), distribution="partners", drug="heroin", qty=2.0))
    with Session(engine) as s:
        after = cached_dashboard_figures(s, visible=_vis(liaison))[0]
        assert after == dashboard_figures(s, visible=_vis(liaison))[0]
    assert (before["incidents"], after["incidents"]) == (1, 2)
    assert after["kg_seized"] > before["kg_seized"] + 2.0 - 1e-9  # 2 kg of heroin and the tablets' mass
    assert "heroin" in {d["drug"] for d in after["by_drug"]}
    assert after["latest_incident"] == dt.date(2025, 5, 2)


def test_cached_figures_follow_a_re_marked_and_a_deleted_incident(engine: Engine) -> None:
    ids = _store(engine)
    liaison = _principal(engine, "TH-ONCB", "liaison")
    with Session(engine) as s:
        assert cached_headline_figures(s, visible=_vis(liaison))["incidents"] == 1
    with session_scope(engine) as s:
        update_incident(s, ids["domestic"], {"distribution": "partners"})
    with Session(engine) as s:
        assert cached_headline_figures(s, visible=_vis(liaison))["incidents"] == 2
    with session_scope(engine) as s:
        update_incident(s, ids["partners"], {"marking": "AMBER+STRICT"})  # no longer leaves its owner
    with Session(engine) as s:
        assert cached_headline_figures(s, visible=_vis(liaison))["incidents"] == 1
    with session_scope(engine) as s:
        s.execute(delete(Seizure).where(Seizure.incident_id == ids["domestic"], Seizure.drug != "ketamine"))
    with Session(engine) as s:
        figs = cached_headline_figures(s, visible=_vis(liaison))
    assert (figs["incidents"], figs["seizures"], figs["kg_seized"]) == (1, 0, 0.0)


def test_uncommitted_changes_never_reach_the_cache(engine: Engine) -> None:
    _store(engine)
    liaison = _principal(engine, "TH-ONCB", "liaison")
    with Session(engine) as s:
        create_incident(s, _incident(dt.date(2025, 5, 2), distribution="partners"))
        cached_headline_figures(s, visible=_vis(liaison))  # inside the writing transaction
        s.rollback()
    if engine.dialect.name == "postgresql":  # the version did not move: a poisoned entry would show here
        with Session(engine) as s:
            assert cached_headline_figures(s, visible=_vis(liaison))["incidents"] == 1
    with session_scope(engine) as s:  # SQLite: the same max(rowid)s as the rolled-back change had
        create_incident(s, _incident(dt.date(2025, 5, 3), distribution="domestic"))
    with Session(engine) as s:
        figs = cached_headline_figures(s, visible=_vis(liaison))
        assert figs == headline_figures(s, visible=_vis(liaison))
    assert figs["incidents"] == 1


def test_data_version_moves_on_every_kind_of_change(engine: Engine) -> None:
    ids = _store(engine)
    seen = []
    with engine.connect() as conn:
        seen.append(data_version(conn))
    with session_scope(engine) as s:
        create_incident(s, _incident(dt.date(2025, 5, 2)))
    with engine.connect() as conn:
        seen.append(data_version(conn))
    with session_scope(engine) as s:
        update_incident(s, ids["old"], {"occurred_on": dt.date(2023, 6, 2)})
    with engine.connect() as conn:
        seen.append(data_version(conn))
    with session_scope(engine) as s:
        s.execute(delete(Arrest).where(Arrest.incident_id == ids["old"]))
    with engine.connect() as conn:
        seen.append(data_version(conn))
        seen.append(data_version(conn))  # nothing changed in between
    assert None not in seen
    assert len(set(seen)) == 4 and seen[-1] == seen[-2]
