"""The dashboard's headline figures, and a cache of them per visibility scope.

The figures count every visible incident, seizure and arrest: on a store of a million incidents that takes
seconds, far too long for a page that everyone opens first. They are therefore cached, safely:

- per *scope*: the key is the SQL of the caller's visibility filter (on incidents, persons, operations)
  with its values inlined, so two callers share figures only when the database would give them exactly the
  same rows; the store stays ignorant of who may see what (narcotrack.access decides the filter);
- per *data version*: ``data_version`` row 0 (migration 0005) grows, by triggers, whenever incidents,
  seizures, arrests, persons or operations change, and every request reads it (one indexed row) before
  using the cache, so a new or re-marked incident shows on the next request. On SQLite the version also
  holds each table's max(rowid), which grows on insert without any trigger cost on bulk imports.

Figures are cached only from committed data: on PostgreSQL a transaction that has itself changed those
tables (the trigger marks it) computes without the cache; on SQLite the version and the figures are read
through a connection of their own. Concurrent requests for the same scope compute once.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, case, func, select, text, true
from sqlalchemy.orm import Session

from narcotrack.store.schema import Arrest, Incident, Operation, Person, Seizure

Visible = Callable[[Any], ColumnElement[bool]]
Figures = dict[str, Any]
MAX_SCOPES = 256  # per store; an entry is a few hundred bytes
_WATCHED = ("incident", "seizure", "arrest", "person", "operation")


# -- the figures ---------------------------------------------------------------------------------------
def headline_figures(
    conn: Connection | Session, *, since: dt.date | None = None, visible: Visible | None = None
) -> Figures:
    """Counts the home page shows, each named for what it counts (incidents, seizures, persons, kg).

    ``visible(table)`` is the caller's sharing filter (narcotrack.access.policy.visible_filter bound to a
    principal): seizures and arrests count when their incident is visible. ``since`` restricts incidents
    (and their seizures and arrests) to those that occurred on or after it.
    """
    return _compute(conn, visible, _latest(conn, visible), since=since)[0]


def dashboard_figures(
    conn: Connection | Session, *, visible: Visible | None = None
) -> tuple[Figures, Figures | None]:
    """Headline figures in all and for the twelve months up to the latest visible incident (None if none)."""
    latest = _latest(conn, visible)
    if latest is None:
        return _compute(conn, visible, latest)[0], None
    total, recent = _compute(conn, visible, latest, recent_since=latest - dt.timedelta(days=365))
    return total, recent


def _latest(conn: Connection | Session, visible: Visible | None) -> dt.date | None:
    """Date of the latest visible incident (whatever ``since`` restricts the counts to)."""
    latest: dt.date | None = conn.scalar(select(func.max(Incident.occurred_on)).where(*_only(visible, Incident)))
    return latest


def _only(visible: Visible | None, table: Any) -> list[ColumnElement[bool]]:
    return [visible(table)] if visible is not None else []


def _compute(
    conn: Connection | Session,
    visible: Visible | None,
    latest: dt.date | None,
    *,
    since: dt.date | None = None,
    recent_since: dt.date | None = None,
) -> tuple[Figures, Figures | None]:
    """Figures in all and, with ``recent_since``, for incidents since then: one pass over each table.
    ``latest`` is the caller's ``_latest``, read once per request."""
    conds = _only(visible, Incident) + ([Incident.occurred_on >= since] if since is not None else [])
    recent = Incident.occurred_on >= recent_since if recent_since is not None else None

    def both(agg: Callable[[Any], Any], value: Any) -> list[Any]:
        return [agg(value)] + ([agg(case((recent, value)))] if recent is not None else [])

    join = bool(conds) or recent is not None  # join to incidents only when something restricts them
    inc = conn.execute(select(*both(func.count, Incident.id)).where(*conds)).one()
    # indexed columns only (ix_seizure_incident_drug, the arrest's unique key): no table reads
    sei_q = select(Seizure.drug, *both(func.count, Seizure.incident_id), *both(func.sum, Seizure.mass_kg))
    arr_q = select(
        *both(func.count, Arrest.incident_id), *both(lambda v: func.count(func.distinct(v)), Arrest.person_id)
    )
    if join:
        sei_q = sei_q.select_from(Incident).join(Seizure, Seizure.incident_id == Incident.id).where(*conds)
        arr_q = arr_q.select_from(Incident).join(Arrest, Arrest.incident_id == Incident.id).where(*conds)
    by_drug = conn.execute(sei_q.group_by(Seizure.drug)).all()
    arr = conn.execute(arr_q).one()
    shared = {
        "persons_recorded": conn.scalar(
            select(func.count()).select_from(Person).where(*_only(visible, Person))
        )
        or 0,
        "operations": conn.scalar(
            select(func.count()).select_from(Operation).where(*_only(visible, Operation))
        )
        or 0,
        "latest_incident": latest,
    }
    parts = [0, 1] if recent is not None else [0]
    n = len(parts)  # columns per measure
    out: list[Figures] = []
    for k in parts:
        drugs = [(row[0], row[1 + k] or 0, float(row[1 + n + k] or 0.0)) for row in by_drug]
        out.append(
            {
                "incidents": inc[k] or 0,
                "seizures": sum(d[1] for d in drugs),
                "kg_seized": sum(d[2] for d in drugs),
                "arrests": arr[k] or 0,
                "persons_arrested": arr[n + k] or 0,
                "persons_recorded": shared["persons_recorded"],
                "operations": shared["operations"],
                "by_drug": [
                    {"drug": d, "seizures": c, "kg": kg}
                    for d, c, kg in sorted((d for d in drugs if d[1]), key=lambda d: (-d[2], -d[1], d[0]))[:8]
                ],
                "latest_incident": shared["latest_incident"],
            }
        )
    return out[0], (out[1] if recent is not None else None)


# -- the data version ----------------------------------------------------------------------------------
def data_version(conn: Connection | Session) -> tuple[Any, ...] | None:
    """What identifies the current state of the counted tables, or None when it cannot be known.

    None (no version row, or on PostgreSQL a transaction that has changed those tables itself) means:
    do not use the cache.
    """
    bind = _bind(conn)
    if bind.dialect.name == "sqlite":
        maxes = ", ".join(f"(SELECT max(rowid) FROM {t})" for t in _WATCHED)
        row = conn.execute(text(f"SELECT version, epoch, {maxes} FROM data_version WHERE id = 0")).first()
        return tuple(row) if row is not None else None
    row = conn.execute(
        text(
            "SELECT version, epoch, current_setting('narcotrack.data_changed', true) "
            "FROM data_version WHERE id = 0"
        )
    ).first()
    if row is None or row[2] == "yes":
        return None
    return (row[0], row[1])


def _bind(conn: Connection | Session) -> Any:
    return conn.get_bind() if isinstance(conn, Session) else conn


# -- the cache -----------------------------------------------------------------------------------------
class _StoreCache:
    """Cached figures of one store: scope key -> (data version, figures), least recently used first out."""

    def __init__(self, engine: Engine) -> None:
        self.entries: OrderedDict[tuple[str, str], tuple[tuple[Any, ...], Any]] = OrderedDict()
        self.lock = threading.Lock()
        self.computing: dict[tuple[str, str], threading.Lock] = {}
        # SQLite: a connection of the cache's own, so that only committed rows are counted and cached.
        self.reader = _own_engine(engine) if engine.dialect.name == "sqlite" else None

    def get(self, key: tuple[str, str], version: tuple[Any, ...]) -> Any:
        with self.lock:
            hit = self.entries.get(key)
            if hit is not None and hit[0] == version:
                self.entries.move_to_end(key)
                return hit[1]
        return None

    def put(self, key: tuple[str, str], version: tuple[Any, ...], value: Any) -> None:
        with self.lock:
            self.entries[key] = (version, value)
            self.entries.move_to_end(key)
            while len(self.entries) > MAX_SCOPES:
                self.entries.popitem(last=False)

    def key_lock(self, key: tuple[str, str]) -> threading.Lock:
        with self.lock:
            return self.computing.setdefault(key, threading.Lock())


def _own_engine(engine: Engine) -> Engine:
    from narcotrack.store.db import make_engine

    # Never two connections of this pool at once in one thread, so waiting for one cannot deadlock.
    return make_engine(
        engine.url.render_as_string(hide_password=False), pool_size=2, max_overflow=30, pool_timeout=300
    )


_caches: weakref.WeakKeyDictionary[Engine, _StoreCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cache_of(engine: Engine) -> _StoreCache:
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = _StoreCache(engine)
        return cache


def scope_key(conn: Connection | Session, visible: Visible | None) -> str:
    """The caller's visibility filters as SQL with their values inlined: equal keys, equal rows."""
    if visible is None:
        return "all"
    bind = _bind(conn)
    expr = and_(true(), *(visible(t) for t in (Incident, Person, Operation)))
    return str(expr.compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True}))


def _cached(
    conn: Connection | Session,
    visible: Visible | None,
    kind: str,
    compute: Callable[[Connection | Session], Any],
) -> Any:
    bind = _bind(conn)
    engine = bind if isinstance(bind, Engine) else bind.engine
    cache = _cache_of(engine)
    key = (kind, scope_key(conn, visible))
    reader = cache.reader

    def run(work: Callable[[Connection | Session], Any]) -> Any:
        if reader is None:
            return work(conn)
        with reader.connect() as own:
            return work(own)

    # The version is read before the figures: were they newer than it, the next request would only
    # compute them again; never the reverse.
    version = run(data_version)
    if version is None:
        return run(compute)
    value = cache.get(key, version)
    if value is None:
        with cache.key_lock(key):  # one computation per scope; the others wait for it, then read the cache
            value = cache.get(key, version)
            if value is None:
                value = run(compute)
                cache.put(key, version, value)
    return copy.deepcopy(value)


def cached_headline_figures(conn: Connection | Session, *, visible: Visible | None = None) -> Figures:
    """``headline_figures(conn, visible=visible)``, from the cache while the store has not changed."""
    result: Figures = _cached(conn, visible, "headline", lambda c: headline_figures(c, visible=visible))
    return result


def cached_dashboard_figures(
    conn: Connection | Session, *, visible: Visible | None = None
) -> tuple[Figures, Figures | None]:
    """``dashboard_figures(conn, visible=visible)``, from the cache while the store has not changed."""
    result: tuple[Figures, Figures | None] = _cached(
        conn, visible, "dashboard", lambda c: dashboard_figures(c, visible=visible)
    )
    return result
