"""Realistic, deterministic demo data: ``narcotrack demo --years 5 --seed N [--scale K]``.

What the data holds and how it is calibrated is in ``docs/demo-data.md``; the numbers and their sources
are in ``ingest/data/demo_calibration.yaml``. This module plans a run, streams its rows month by month in
batches of SQLAlchemy Core inserts inside one transaction (a failed run leaves the store as it was) and
reports what it wrote. Large runs generate rows in a child process while this one writes, so both cores
work; on SQLite the big tables take a fast path: the Core insert compiled once, values passed through
SQLAlchemy's own bind processors, then one driver-level ``executemany`` per batch.

Determinism: the same ``seed``, ``years``, ``scale`` and ``end`` give identical rows on any machine and
either engine: every random draw comes from ``random.Random`` streams seeded from the seed, ids are UUIDv7
built from the record's own date and those streams, and stamps derive from the record's date, never from
the clock. The default ``end`` is the fixed date ``DEFAULT_END`` (30 June 2025, the last period with
published figures), so a run today and a run next year agree.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import random
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Engine, bindparam, insert, select, update
from sqlalchemy.dialects import sqlite

from narcotrack.errors import ConfigError, Conflict, InvalidInput, NarcotrackError
from narcotrack.ingest.demo_calibration import calibration, check
from narcotrack.ingest.demo_events import Events
from narcotrack.ingest.demo_people import People
from narcotrack.ingest.demo_places import Places
from narcotrack.ingest.demo_plan import Plan, period, stamp
from narcotrack.ingest.demo_programmes import Programmes, operation_rows, outcome_rows, sharing_group_rows
from narcotrack.store.db import is_initialised
from narcotrack.store.repo import init_store
from narcotrack.store.schema import Base, Incident, Operation, Place, SharingGroup

DEFAULT_END = dt.date(2025, 6, 30)
BATCH_INCIDENTS = 2500
PARALLEL_FROM = 100_000  # expected incidents from which rows are generated in a child process
QUEUE_BATCHES = 6  # batches the producer may run ahead of the writer (each some 10 MB)
STREAMED = ("person", "person_identity", "person_truth", "incident", "seizure", "arrest", "intel_report",
            "intel_link", "drug_use_indicator")
ProgressFn = Callable[[int, int], None]
Message = tuple[Any, ...]


@dataclass
class DemoSummary:
    """What a run wrote: rows per table, the period covered and how long it took."""

    seed: int
    years: int
    scale: float
    start: dt.date
    end: dt.date
    counts: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def incidents(self) -> int:
        return self.counts.get("incident", 0)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        lines = [f"Demo data, seed {self.seed}, scale {self.scale:g}: {self.start} to {self.end}, "
                 f"{self.rows:,} rows in {self.elapsed_s:.1f} s"]
        lines += [f"  {table:<24} {n:>12,}" for table, n in self.counts.items() if n]
        return "\n".join(lines)

    def __rich__(self) -> str:
        """Rich consoles (the CLI) print the summary as text rather than as a dataclass repr."""
        return str(self)


@dataclass(frozen=True)
class _Spec:
    """Everything the row producer needs; plain values, so it crosses into a child process."""

    seed: int
    scale: float
    start: dt.date
    end: dt.date
    group_ids: dict[str, str]
    sqlite_fast: bool


class _Encoder:
    """SQLite fast path. The producer turns row dicts into positional tuples (``tuples``); the writer runs
    SQLAlchemy's own bind processors over them (``process``), so stored values are exactly what a Core
    insert would store. Each distinct value is processed once per batch (rows of one incident share their
    stamps and dates)."""

    def __init__(self) -> None:
        self.dialect = sqlite.dialect()
        self.plans: dict[str, tuple[str, Any, list[tuple[int, Any, str]]]] = {}

    def _plan(self, table: str) -> tuple[str, Any, list[tuple[int, Any, str]]]:
        if table not in self.plans:
            t = Base.metadata.tables[table]
            compiled = insert(t).compile(dialect=self.dialect)
            cols = list(compiled.positiontup or [])
            procs = []
            for i, c in enumerate(cols):
                impl = t.c[c].type.dialect_impl(self.dialect)
                proc = impl.bind_processor(self.dialect)
                if proc is not None:  # columns of one type and format share their memo (created/updated_at)
                    kind = "json" if isinstance(t.c[c].type, JSON) else repr((type(impl), getattr(impl, "_storage_format", c)))
                    procs.append((i, proc, kind))
            self.plans[table] = (str(compiled), itemgetter(*cols), procs)
        return self.plans[table]

    def tuples(self, table: str, rows: list[dict[str, Any]]) -> Message:
        return ("raw", table, list(map(self._plan(table)[1], rows)))

    def process(self, table: str, tuples: list[tuple[Any, ...]]) -> tuple[str, list[tuple[Any, ...]]]:
        sql, _, procs = self._plan(table)
        if not procs or not tuples:
            return sql, tuples
        columns: list[Any] = list(zip(*tuples, strict=True))
        memos: dict[str, dict[Any, Any]] = {}
        for i, proc, kind in procs:
            col = columns[i]
            memo = memos.setdefault(kind, {})
            if kind == "json":
                keys = [tuple(v) if isinstance(v, list) else v for v in col]
                for k, v in zip(keys, col, strict=True):
                    if k not in memo:
                        memo[k] = proc(v)
                columns[i] = [memo[k] for k in keys]
            else:
                memo.update((v, proc(v)) for v in set(col).difference(memo))
                columns[i] = [memo[v] for v in col]
        return sql, list(zip(*columns, strict=True))


def _streams(seed: int) -> dict[str, random.Random]:
    """Independent random streams, so that a change in one part leaves the others' draws alone."""
    return {name: random.Random(f"narcotrack-demo/{seed}/{name}")
            for name in ("plan", "events", "people", "ids", "programmes")}


def _produce(spec: _Spec) -> Iterator[Message]:
    """All generated rows, in the order they must be written (parents first), as messages."""
    cal, rng = calibration(), _streams(spec.seed)
    encoder = _Encoder() if spec.sqlite_fast else None

    def rows(table: str, batch: list[dict[str, Any]]) -> Message:
        if encoder and table in STREAMED and batch:
            return encoder.tuples(table, batch)
        return ("core", table, batch)

    places = Places(cal)
    plan = Plan(cal, rng["plan"], rng["ids"], spec.start, spec.end, spec.scale)
    yield ("total", plan.total)
    ops, participants = operation_rows(plan, spec.group_ids)
    yield rows("operation", ops)
    yield rows("operation_participant", participants)
    people = People(cal, rng["people"], rng["ids"])
    events = Events(cal, plan, places, people, rng["events"], rng["ids"], spec.group_ids, spec.seed)
    done = 0
    for month in plan.months:
        for made in events.month(month, BATCH_INCIDENTS):
            done += made
            if len(events.incidents) >= BATCH_INCIDENTS:
                yield from _drain(events, rows, done)
    yield from _drain(events, rows, done)
    yield ("outcomes", outcome_rows(plan.operations))
    programmes = Programmes(cal, plan, places, rng["programmes"], rng["ids"])
    training, trainees = programmes.training()
    yield rows("training_event", training)
    yield rows("training_participation", trainees)
    yield rows("community_campaign", programmes.campaigns())
    for chunk in programmes.indicators():
        yield rows("drug_use_indicator", chunk)


def _drain(events: Events, rows: Callable[[str, list[dict[str, Any]]], Message], done: int) -> Iterator[Message]:
    for table, batch in events.drain().items():
        yield rows(table, batch)
    yield ("progress", done)


def _child(spec: _Spec, out: Any) -> None:
    """Entry point of the producer process: messages into the bounded queue a batch at a time (one put
    per batch, not per table), then 'done'."""
    try:
        pending: list[Message] = []
        for msg in _produce(spec):
            pending.append(msg)
            if msg[0] in ("progress", "total"):
                out.put(pending)
                pending = []
        pending.append(("done",))
        out.put(pending)
    except BaseException:
        out.put([("error", traceback.format_exc())])


def _in_child(spec: _Spec) -> Iterator[Message]:
    """Messages of a producer running in a child process (bounded queue: memory stays flat)."""
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue(maxsize=QUEUE_BATCHES)
    proc = ctx.Process(target=_child, args=(spec, q), daemon=True, name="narcotrack-demo-producer")
    proc.start()
    try:
        finished = False
        while not finished:
            try:
                batch = q.get(timeout=2)
            except queue.Empty:
                if not proc.is_alive():
                    raise NarcotrackError(f"the demo-data producer stopped unexpectedly "
                                          f"(exit code {proc.exitcode})") from None
                continue
            for msg in batch:
                if msg[0] == "done":
                    finished = True
                elif msg[0] == "error":
                    raise NarcotrackError(f"the demo-data producer failed:\n{msg[1]}")
                else:
                    yield msg
        proc.join(timeout=30)
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)


def generate(engine: Engine, *, years: int = 5, seed: int = 1, scale: float = 1.0, end: dt.date | None = None,
             progress: ProgressFn | None = None, parallel: bool | None = None) -> DemoSummary:
    """Fill a store without incidents with ``years`` of demo data ending on ``end`` (default ``DEFAULT_END``).

    ``scale`` multiplies volumes (1 = Cambodia's published yearly figures; 25 gives over a million
    incidents). ``progress(done, total)`` is called after each batch with incidents written and planned.
    ``parallel`` generates rows in a child process (default: for runs of 100,000 incidents or more); the
    rows are the same either way. The child is spawned, so a calling script needs an
    ``if __name__ == "__main__":`` guard. Raises ``Conflict`` when the store already holds incidents.
    """
    if years < 1 or years > 50:
        raise InvalidInput(f"--years must be between 1 and 50, not {years}")
    if not scale > 0 or scale > 1000:
        raise InvalidInput(f"--scale must be above 0 and at most 1000, not {scale}")
    started = time.perf_counter()
    start, last = period(end or DEFAULT_END, years)
    problems = check()
    if problems:
        raise ConfigError("the demo calibration does not match the vocabularies: " + "; ".join(problems))
    if not is_initialised(engine):
        init_store(engine)
    summary = DemoSummary(seed, years, scale, start, last)
    counts: dict[str, int] = {}

    def add(table: str, n: int) -> None:
        counts[table] = counts.get(table, 0) + n

    with engine.begin() as conn:
        if conn.scalar(select(Incident.id).limit(1)) is not None:
            raise Conflict("the store already holds incidents; demo data goes into a store without any. "
                           "Point NARCOTRACK_DATABASE_URL at a new database (for example a new SQLite file) "
                           "and run the command again.")
        cal = calibration()
        when, _ = stamp(start, 0)
        points = set(conn.scalars(select(Place.code).where(Place.level == "point")))
        _core(conn, "place", Places(cal).point_rows(points, when), add)
        existing = {str(n): str(i) for n, i in conn.execute(select(SharingGroup.name, SharingGroup.id))}
        group_ids, groups, members = sharing_group_rows(cal, existing, start)
        _core(conn, "sharing_group", groups, add)
        _core(conn, "sharing_group_member", members, add)
        spec = _Spec(seed, scale, start, last, group_ids, conn.dialect.name == "sqlite")
        if parallel is None:
            parallel = years * scale * 8000 >= PARALLEL_FROM
        total = 0
        encoder = _Encoder()
        for msg in _in_child(spec) if parallel else _produce(spec):
            kind = msg[0]
            if kind == "core":
                _core(conn, msg[1], msg[2], add)
            elif kind == "raw":
                sql, values = encoder.process(msg[1], msg[2])
                if values:
                    conn.exec_driver_sql(sql, values)
                add(msg[1], len(values))
            elif kind == "total":
                total = msg[1]
            elif kind == "progress" and progress:
                progress(msg[1], total)
            elif kind == "outcomes" and msg[1]:
                conn.execute(update(Operation).where(Operation.id == bindparam("b_id"))
                             .values(outcomes=bindparam("b_outcomes"), updated_at=bindparam("b_updated")), msg[1])
    summary.counts = counts
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _core(conn: Connection, table: str, rows: list[dict[str, Any]], add: Callable[[str, int], None]) -> None:
    if rows:
        conn.execute(insert(Base.metadata.tables[table]), rows)
    add(table, len(rows))
