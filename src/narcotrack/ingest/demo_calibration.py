"""Calibration of the demo data: the YAML files in ``ingest/data`` read once, with the small helpers
every part of the generator needs (weighted choice, yearly targets, seasonality).

Numbers live in ``data/demo_calibration.yaml`` with their sources, never in code, so that a reviewer can
check a figure against its source without reading Python.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from narcotrack.domain.units import mass_kg
from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import ConfigError

DATA_DIR = Path(__file__).with_name("data")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
T = TypeVar("T")


@cache
def load_data(name: str) -> Any:
    """One YAML file of ``ingest/data``, parsed once per process."""
    path = DATA_DIR / name
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # a safe loader (C if built)
    except OSError as exc:  # a broken installation, not a user error we can fix here
        raise ConfigError(f"demo data file missing from the package: {path}") from exc


class Weighted(Generic[T]):
    """Weighted choice by bisection over cumulative weights: one ``random()`` call per draw."""

    __slots__ = ("cum", "keys", "total")

    def __init__(self, weights: Mapping[T, float] | list[tuple[T, float]]) -> None:
        items = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
        items = [(k, float(w)) for k, w in items if float(w) > 0]
        if not items:
            raise ConfigError("a weighted choice needs at least one positive weight")
        self.keys = [k for k, _ in items]
        self.cum = list(accumulate(w for _, w in items))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self.keys[bisect_right(self.cum, rng.random() * self.total)]

    def share(self, key: T) -> float:
        """Probability of ``key``."""
        if key not in self.keys:
            return 0.0
        i = self.keys.index(key)
        return (self.cum[i] - (self.cum[i - 1] if i else 0.0)) / self.total


@dataclass(frozen=True)
class YearTargets:
    """What one calendar year should hold at scale 1 (see ``years`` in the calibration file)."""

    year: int
    cases: float
    suspects: float
    foreign_share: float
    female_share: float
    drugs_kg: float
    precursors_kg: float
    cannabis_plants: float


class Calibration:
    """The parsed calibration, with derived lookups."""

    def __init__(self) -> None:
        self.raw: dict[str, Any] = load_data("demo_calibration.yaml")
        self.routes: dict[str, Any] = load_data("demo_routes.yaml")
        self._years = {int(y): v for y, v in self.raw["years"].items()}
        self.first_year, self.last_year = min(self._years), max(self._years)
        self.season = [float(x) for x in self.raw["seasonality"]]
        self.events = [(dt.date.fromisoformat(str(e["start"])), dt.date.fromisoformat(str(e["end"])),
                        float(e["factor"])) for e in self.raw["events"]]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def year(self, year: int) -> YearTargets:
        """Targets of ``year``; a year outside the table takes the nearest year's figures."""
        y = min(max(year, self.first_year), self.last_year)
        v = self._years[y]
        return YearTargets(year, float(v["cases"]), float(v["suspects"]), float(v["foreign_share"]),
                           float(v["female_share"]), float(v["drugs_kg"]), float(v["precursors_kg"]),
                           float(v["cannabis_plants"]))

    def split(self, key: str, year: int) -> dict[str, float]:
        """Normalised split of a year's kilograms (``drug_kg_split`` or ``precursor_split``)."""
        table = self.raw[key]
        y = min(max(year, self.first_year), self.last_year)
        weights = {str(k): float(v) for k, v in (table.get(y) or table["default"]).items()}
        total = sum(weights.values())
        return {k: v / total for k, v in weights.items()}

    def day_weight(self, day: dt.date) -> float:
        """Relative weight of one day: the month's seasonality spread over its days, times any event."""
        w = self.season[day.month - 1] / _days_in_month(day)
        for start, end, factor in self.events:
            if start <= day <= end:
                w *= factor
        return w

    def year_weight(self, year: int) -> float:
        return _year_weight(self, year)

    def routine_drugs(self, kind: str, year: int) -> Weighted[str]:
        """Drug of a routine seizure in ``year``, with the calibrated trends applied."""
        trend = self.raw["routine_drugs"]["trend"]
        steps = max(0, year - 2020)
        return Weighted({d: float(w) * max(0.05, 1 + float(trend.get(d, 0.0))) ** steps
                         for d, w in self.raw["routine_drugs"][kind].items()})


@cache
def _year_weight(cal: Calibration, year: int) -> float:
    day = dt.date(year, 1, 1)
    total = 0.0
    while day.year == year:
        total += cal.day_weight(day)
        day += dt.timedelta(days=1)
    return total


def _days_in_month(day: dt.date) -> int:
    nxt = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (nxt - dt.timedelta(days=1)).day


@cache
def calibration() -> Calibration:
    return Calibration()


def below(rng: random.Random, n: int) -> int:
    """A random integer in [0, n): the generator's hot paths call this millions of times, and
    ``randrange`` costs several times more for the same purpose."""
    return int(rng.random() * n)


def choose(rng: random.Random, seq: Sequence[T]) -> T:
    return seq[int(rng.random() * len(seq))]


def uuid7(ms: int, rand: random.Random) -> str:
    """Same value as ``narcotrack.domain.ids.uuid7(ms, rand)``, without building a ``uuid.UUID``: the
    generator makes millions of ids and this is its hottest call."""
    ts, tail = ms & 0xFFFFFFFFFFFF, rand.getrandbits(74)
    low = tail & 0x3FFFFFFFFFFFFFFF  # 62 random bits after the variant
    return (f"{ts >> 16:08x}-{ts & 0xFFFF:04x}-{0x7000 | tail >> 62:04x}-"
            f"{0x8000 | low >> 48:04x}-{low & 0xFFFFFFFFFFFF:012x}")


def lognormal_mean(median: float, sigma: float) -> float:
    return median * math.exp(sigma * sigma / 2)


def expected_kg(amount: Mapping[str, Any], drug: str) -> float:
    """Mean mass in kg of one routine seizure drawn from ``amount`` (median, sigma, unit) of ``drug``."""
    per_unit = mass_kg(1.0, str(amount["unit"]), drug) or 0.0
    return per_unit * lognormal_mean(float(amount["median"]), float(amount["sigma"]))


def check() -> list[str]:
    """Codes in the calibration that the vocabularies or organisations do not know (empty when sound)."""
    return list(_check())


@cache
def _check() -> tuple[str, ...]:
    from narcotrack.store.seed import organisation_rows

    cal, v = calibration(), vocabularies()
    orgs = {r["code"] for r in organisation_rows()} | {"KH-PP"}
    problems: list[str] = []

    def need(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    drugs: set[str] = set()
    for table in ("drug_kg_split", "precursor_split"):
        for split in cal[table].values():
            drugs.update(split)
    for kind in ("use", "trafficking"):
        drugs.update(cal["routine_drugs"][kind])
    for kind, table in cal["amounts"].items():
        drugs.update(table)
        for amount in table.values():
            need(amount["unit"] in v.units, f"amounts.{kind}: unit {amount['unit']}")
    for route in cal.routes["routes"].values():
        drugs.update(route["drugs"])
        need(all(t in v.transport for t in route["transport"]), f"route {route['name']}: transport")
        for site in route["sites"]:
            need("point" in site or site["kind"] in v.place_kinds, f"route {route['name']}: kind {site}")
        need(all(p in orgs for p in route["partners"]), f"route {route['name']}: partners")
    need(all(d in v.drugs for d in drugs), f"unknown drugs: {sorted(d for d in drugs if d not in v.drugs)}")
    for code, names in cal["reported_drugs"].items():
        need(all(v.drugs.resolve(n) == code for n in names), f"reported_drugs.{code}: {names}")
    for code, names in cal["reported_units"].items():
        need(all(v.units.resolve(n) == code for n in names), f"reported_units.{code}: {names}")
    for role_table in cal["roles"].values():
        need(all(r in v.roles for r in role_table), f"roles: {role_table}")
    for codes in cal["charges"].values():
        need(all(c in v.charges for c in codes), f"charges: {codes}")
    for table in cal["outcomes"].values():
        need(all(o in v.outcomes for o in table), f"outcomes: {table}")
    for table in cal["reporting"].values():
        need(all(o in orgs for o in table), f"reporting: {table}")
    for table in cal["place_kinds"].values():
        need(all(k in v.place_kinds for k in table), f"place kinds: {table}")
    for point in cal.routes["points"]:
        need(point["kind"] in v.place_kinds, f"point {point['code']}: kind")
    for group in cal.routes["sharing_groups"].values():
        need(all(m in orgs for m in group["members"]), f"sharing group {group['name']}: members")
    need(all(o in orgs for o in cal["training"]["providers"]), "training providers")
    need(all(a in v.campaign_audiences for a in cal["campaigns"]["reach"]), "campaign audiences")
    return tuple(problems)
