"""Suspects for the demo data: a name model, the humans behind the records, and how each arrest of a
human becomes a person record.

Entity resolution needs hard, realistic cases with a known answer, so one human (``person_truth.truth_key``)
is often recorded as several person records: Khmer script only, romanised only, romanised differently
(Sok/Sokh, Chan/Chann), given name first, typed with a slip, with or without the ID number or date of
birth. Different humans also share names, as they do in Cambodia. Repeat offenders come from trafficking
groups (``person_truth.group_key``) and from a bounded pool per province, so memory stays flat at any scale.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from narcotrack.ingest.demo_calibration import Calibration, Weighted, YearTargets, below, load_data, uuid7

_KHMER_SIGNS = "់៉៊្ំះ"
_VOWELS = "aeiou"


@dataclass(slots=True, eq=False)
class Human:
    """The real person behind one or more person records (ground truth, never shown as such)."""

    key: str
    sex: str
    nationality: str
    birth: dt.date
    km: list[str]          # Khmer script, surname first ([] for foreigners)
    lat: list[str]         # romanised, in the order the nationality writes it
    surname_first: bool
    native: str = ""       # name in the nationality's own script (Thai, Chinese), kept as an alias
    group: str | None = None
    role: str | None = None
    alias: str | None = None
    id_number: str | None = None
    records: list[tuple[str, str]] = field(default_factory=list)  # (person id, organisation id)
    free_from: dt.date = dt.date.min


class NameModel:
    """Khmer names from kname parts plus additions; foreign names by nationality (``demo_names.yaml``)."""

    def __init__(self) -> None:
        data = load_data("demo_names.yaml")
        khmer = data["khmer"]
        given = khmer["kname"]["given"] + khmer["added"]["given"]
        self.k_given = {s: Weighted([((km, lat), 1.0) for km, lat, sx in given if sx in (s, "U")])
                        for s in ("M", "F")}
        self.k_surname = Weighted([((km, lat), 1.0) for km, lat in
                                   khmer["kname"]["surnames"] + khmer["added"]["surnames"]])
        self.alias_prefix: dict[str, list[str]] = khmer["alias_prefix"]
        self.romanisation: dict[str, list[str]] = khmer["romanisation"]
        self.foreign: dict[str, dict[str, Any]] = data["foreign"]
        self.west = Weighted(self.foreign["WEST"]["countries"])

    def khmer(self, rng: random.Random, sex: str) -> tuple[list[str], list[str]]:
        sur_km, sur_lat = self.k_surname.pick(rng)
        g_km, g_lat = self.k_given[sex].pick(rng)
        km, lat = [sur_km, g_km], [sur_lat, g_lat]
        if rng.random() < 0.15:  # a two-word given name
            g2_km, g2_lat = self.k_given[sex].pick(rng)
            if g2_lat != g_lat:
                km.append(g2_km)
                lat.append(g2_lat)
        return km, lat

    def foreign_name(self, rng: random.Random, group: str, sex: str) -> tuple[list[str], str, bool]:
        spec = self.foreign[group]
        given = rng.choice(spec["given"][sex])
        surname = rng.choice(spec["surnames"])
        first = spec["order"] == "surname_first"
        middle = [rng.choice(spec["middle"][sex])] if "middle" in spec else []
        lat = [surname[0], *middle, given[0]] if first else [given[0], *middle, surname[0]]
        native = ""
        if len(given) > 1 and len(surname) > 1:
            native = f"{surname[1]}{given[1]}" if group == "CN" else f"{given[1]} {surname[1]}"
        return lat, native, first

    def alias(self, rng: random.Random, h: Human) -> str:
        prefix = rng.choice(self.alias_prefix.get(h.sex, self.alias_prefix["U"]))
        word = h.lat[-1] if h.surname_first else h.lat[0]
        return f"{prefix} {word.split('-')[0]}"


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 3:
        return word + word[-1]
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1:]
    if op == 1:
        return word[:i] + word[i] + word[i:]
    if op == 2:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    repl = rng.choice(_VOWELS) if word[i].lower() in _VOWELS else word[i]
    return word[:i] + repl + word[i + 1:]


_GENERIC = (("ou", "u"), ("u", "ou"), ("ea", "ia"), ("ey", "ei"), ("oeu", "eu"), ("ch", "chh"), ("k", "kh"))


def _romanise(word: str, rng: random.Random, table: dict[str, list[str]]) -> str:
    options = [w for w in table.get(word, []) if w != word]
    if options:
        return rng.choice(options)
    low = word.lower()
    for a, b in rng.sample(_GENERIC, len(_GENERIC)):
        if a in low:
            i = low.index(a)
            out = word[:i] + b + word[i + len(a):]
            return out[:1].upper() + out[1:]
    return word + ("h" if not word.endswith("h") else "")


def _fold(text: str) -> str:
    """Vietnamese without its diacritics, as many forms and databases write it."""
    text = text.replace("Đ", "D").replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


class People:
    """Creates humans and person records; keeps re-offenders in bounded pools."""

    def __init__(self, cal: Calibration, rng: random.Random, ids: random.Random) -> None:
        self.cal, self.rng, self.ids = cal, rng, ids
        self.names = NameModel()
        self.rec = cal["records"]
        self.reo = cal["reoffending"]
        self.foreign = Weighted(cal["foreign_nationalities"])
        bands = cal["age_bands"]
        self.ages = Weighted({(int(lo), int(hi)): float(w) for lo, hi, w in bands.values()})
        self.pools: dict[str, deque[Human]] = {}
        self.n_humans = 0
        self.persons: list[dict[str, Any]] = []
        self.identities: list[dict[str, Any]] = []
        self.truths: list[dict[str, Any]] = []

    # humans -----------------------------------------------------------------------------------------
    def new_human(self, day: dt.date, t: YearTargets, *, nationality: str | None = None,
                  group: str | None = None, role: str | None = None) -> Human:
        rng = self.rng
        self.n_humans += 1
        sex = "F" if rng.random() < t.female_share else "M"
        if nationality is None:
            nationality = self.foreign.pick(rng) if rng.random() < t.foreign_share else "KH"
        lo, hi = self.ages.pick(rng)
        birth = day - dt.timedelta(days=lo * 365 + 1 + below(rng, (hi - lo) * 365 + 364))
        if nationality == "KH":
            km, lat = self.names.khmer(rng, sex)
            h = Human(f"H{self.n_humans:09d}", sex, "KH", birth, km, lat, True)
            h.id_number = f"{10**8 + below(rng, 9 * 10**8)}" if rng.random() < 0.6 else None
        else:
            spec = nationality
            if nationality == "WEST":
                nationality = self.names.west.pick(rng)
            elif nationality not in self.names.foreign:
                spec = "WEST"
            lat, native, first = self.names.foreign_name(rng, spec, sex)
            h = Human(f"H{self.n_humans:09d}", sex, nationality, birth, [], lat, first, native)
            h.id_number = f"{nationality[0]}{10**6 + below(rng, 9 * 10**6)}" if rng.random() < 0.8 else None
        h.group, h.role = group, role
        if rng.random() < self.rec["alias_share"]["group" if group else "other"]:
            h.alias = self.names.alias(rng, h)
        return h

    def routine(self, province: str, day: dt.date, t: YearTargets, kind: str, taken: set[str]) -> Human:
        """A suspect of a routine case: now and then someone arrested before in the province."""
        pool = self.pools.get(province)
        if pool and self.rng.random() < self.reo["repeat_share"][kind]:
            for _ in range(3):
                h = pool[below(self.rng, len(pool))]
                if h.free_from <= day and h.key not in taken:
                    return h
        h = self.new_human(day, t)
        if self.rng.random() < self.reo["join_pool_share"]:
            if pool is None:
                pool = self.pools[province] = deque(maxlen=int(self.reo["pool_per_province"]))
            pool.append(h)
        return h

    def known_record(self, province: str) -> str | None:
        """Some person record of the province's pool (for intelligence tips), if any."""
        pool = self.pools.get(province)
        if not pool:
            return None
        h = pool[self.rng.randrange(len(pool))]
        return h.records[-1][0] if h.records else None

    # records ----------------------------------------------------------------------------------------
    def record(self, h: Human, org: str, day: dt.date, when: dt.datetime, ms: int,
               sharing: tuple[str, str, str | None]) -> str:
        """Person id for this arrest of ``h``: an existing record of ``h``, or a new (variant) one."""
        rng = self.rng
        if h.records:
            same = [pid for pid, o in h.records if o == org]
            if same and rng.random() < self.rec["reuse_same_org"]:
                return same[-1]
            if rng.random() < self.rec["reuse_other_org"]:
                return h.records[rng.randrange(len(h.records))][0]
        pid = uuid7(ms, self.ids)
        name_km, name_latin = self._names(h, first=not h.records)
        aliases = []
        if h.alias and rng.random() < 0.75:
            aliases.append(h.alias)
        if h.native and rng.random() < 0.5:
            aliases.append(h.native)
        age = (day - h.birth).days // 365
        dob: dt.date | None = None
        age_reported: int | None = None
        if rng.random() < self.rec["dob_share"]:
            dob = h.birth
            if dob.day <= 12 and rng.random() < 0.03:  # day and month read the other way round
                dob = dob.replace(day=dob.month, month=dob.day)
        else:
            age_reported = age + (rng.choice((-1, 1)) if rng.random() < 0.08 else 0)
        ids: list[str] = []
        if h.id_number and rng.random() < self.rec["id_number_share"]:
            num = h.id_number
            if rng.random() < 0.03:
                i = rng.randrange(1, len(num))
                num = num[:i] + str(rng.randrange(10)) + num[i + 1:]
            ids.append(num)
        marking, distribution, group_id = sharing
        self.persons.append({
            "id": pid, "created_at": when, "updated_at": when, "version": 1, "owner_org_id": org,
            "marking": marking, "distribution": distribution, "sharing_group_id": group_id,
            "sex": h.sex if rng.random() > 0.01 else "X",
            "nationality": h.nationality if rng.random() > 0.02 else None,
            "birth_year": dob.year if dob else (day.year - age_reported if age_reported is not None else None),
        })
        self.identities.append({
            "person_id": pid, "name_km": name_km, "name_latin": name_latin, "aliases": aliases,
            "date_of_birth": dob, "age_reported": age_reported, "id_numbers": ids, "updated_at": when,
        })
        self.truths.append({"person_id": pid, "truth_key": h.key, "group_key": h.group})
        h.records.append((pid, org))
        return pid

    def _names(self, h: Human, *, first: bool) -> tuple[str, str]:
        rng = self.rng
        km, lat = list(h.km), list(h.lat)
        sep_km = " "
        upper = rng.random() < 0.1
        if not first:
            for _ in range(1 if rng.random() < 0.6 else 2):
                op = rng.randrange(7)
                i = rng.randrange(len(lat))
                if op <= 1:
                    lat[i] = _romanise(lat[i], rng, self.names.romanisation) if h.km else _typo(lat[i], rng)
                elif op == 2:  # surname moved to the other end
                    lat = lat[1:] + lat[:1] if h.surname_first else lat[-1:] + lat[:-1]
                elif op == 3:
                    lat[i] = _typo(lat[i], rng)
                elif op == 4:
                    upper = True
                elif op == 5 and km:
                    sep_km = rng.choice(("", "\u200b"))
                elif op == 6 and km:
                    j = rng.randrange(len(km))
                    signs = [k for k, c in enumerate(km[j]) if c in _KHMER_SIGNS]
                    if signs and rng.random() < 0.5:
                        k = rng.choice(signs)
                        km[j] = km[j][:k] + km[j][k + 1:]
                    else:
                        km = km[1:] + km[:1]
                elif h.nationality == "VN":
                    lat = [_fold(w) for w in lat]
                else:
                    lat = [w.replace("-", rng.choice(("", " "))) for w in lat]
        if h.nationality == "VN" and rng.random() < 0.3:
            lat = [_fold(w) for w in lat]
        name_latin = " ".join(lat)
        name_latin = name_latin.upper() if upper else name_latin
        name_km = sep_km.join(km)
        if km:
            r = rng.random()
            if r < self.rec["khmer_only_share"]:
                name_latin = ""
            elif r < self.rec["khmer_only_share"] + self.rec["latin_only_share"]:
                name_km = ""
        return name_km, name_latin

    def drain(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        out = (self.persons, self.identities, self.truths)
        self.persons, self.identities, self.truths = [], [], []
        return out
