"""Seizure tables read straight from files, in the shape of ``tables.seizures``.

Route analyses need the UNODC Individual Drug Seizures (IDS) file as much as narcotrack's own records:
it is the only routing data covering the whole region for 2011-2014. Importing 200,000 rows into a store
takes half a minute; reading them here takes about a second, so an analyst can compare the two without
filling a database.

The file is read as text with pandas and every column is mapped *once per distinct value* through the very
functions the importer uses (``narcotrack.ingest.values`` and ``ids_format``): countries to ISO codes
('Unknown' is a missing value), drug names and units to vocabulary codes ('other' when not understood),
installations to place kinds, ROUTING to routing codes, and mass in kg by
``narcotrack.domain.units.mass_kg``. Rows the importer would reject (no or unknown seizing country, no
drug name, an amount that is missing, not a number or negative, a date that is not a date) are left out
and counted in ``.attrs["rejected"]``. So the frame holds the same seizures as a store the file was
imported into, without the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narcotrack.analytics.tables import COLUMNS
from narcotrack.domain.places import resolve_district
from narcotrack.domain.units import mass_kg
from narcotrack.domain.vocab import norm
from narcotrack.errors import InvalidInput
from narcotrack.ingest import ids_format
from narcotrack.ingest import values as V

IDS_METHOD = (
    "UNODC Individual Drug Seizures file read directly: one row per seizure; countries, drugs, units and "
    "routing mapped with the importer's vocabularies ('Unknown' countries are missing), mass in kg by "
    "narcotrack's documented conversion factors (missing when none applies); rows the importer would "
    "reject are left out."
)


def _safe(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` with ``BadValue`` turned into None (a value the importer would warn about or reject)."""

    def call(value: Any) -> Any:
        with contextlib.suppress(V.BadValue):
            return fn(value)
        return None

    return call


def _map(values: pd.Series, fn: Callable[[Any], Any]) -> np.ndarray:
    """``fn`` applied to each distinct value of ``values`` only, then spread back over the rows."""
    codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=False)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [fn(u) for u in uniques]
    return mapped[codes]


def _number(value: str) -> float:
    try:
        return V.parse_number(value.strip())
    except V.BadValue:
        return np.nan


def _date(value: str) -> Any:
    """ISO date text, None when blank, or the marker ``"bad"`` for a cell that is not a date."""
    try:
        return V.parse_date(value.strip())
    except V.BadValue:
        return "bad"


@lru_cache(maxsize=4096)
def _kg_per_unit(unit: str, drug: str) -> float:
    """Mass in kg of one ``unit`` of ``drug`` (``mass_kg`` is linear in the quantity); NaN when undefined."""
    kg = mass_kg(1.0, unit, drug)
    return np.nan if kg is None else kg


def _kh_place(pair: Hashable) -> tuple[str | None, str | None]:
    """(province, district) of a Cambodian IDS row from (ADMINISTRATIVE_DIVISION, PLACE), as the importer."""
    admin, place = (str(v).strip() for v in pair)  # type: ignore[attr-defined]
    prov = V.province_code(admin) or V.province_code(place)
    if prov is None:
        return None, None
    return prov, (resolve_district(place, prov) if place else None)


def _read_text(path: Path) -> pd.DataFrame:
    """The IDS columns of the file as text (cells are stripped later, per distinct value)."""
    opener: Any = open
    if path.suffix == ".gz":
        import gzip

        opener = gzip.open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as f:
            first = f.readline()
        sep = ";" if first.count(";") >= first.count(",") else ","
        wanted = set(ids_format.COLUMNS) - {"REGION", "SUBREGION"}
        raw = pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig",
            encoding_errors="replace", usecols=lambda c: str(c).strip().upper() in wanted,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError, ValueError) as exc:
        raise InvalidInput(f"{path.name}: not a readable IDS file ({exc})") from exc
    raw.columns = [str(c).strip().upper() for c in raw.columns]
    missing = [c for c in ids_format.REQUIRED if c not in raw.columns]
    if missing:
        raise InvalidInput(f"{path.name}: IDS columns missing ({', '.join(missing)})")
    raw = raw.loc[:, ~raw.columns.duplicated()]
    for col in wanted - set(raw.columns):
        raw[col] = ""
    return raw


def ids_seizures(path: str | Path) -> pd.DataFrame:
    """A ``tables.seizures``-shaped frame read from a UNODC IDS file (``.csv`` or ``.csv.gz``, ``;``).

    One row per seizure; ``incident_id`` is ``"ids:<line number>"``; ``country`` is the seizing country,
    ``origin_country`` the departure country, ``transit_countries`` is "" (IDS does not record transit);
    Cambodian rows get province and district codes as the importer gives them, and ``place_code`` is the
    most precise of district, province and country. ``.attrs``: ``method``, ``rows_read``, ``rejected``.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    raw = _read_text(path)
    n = len(raw)
    country = _map(raw["COUNTRY"], _safe(V.country))
    dates = _map(raw["SEIZURE_DATE"], _date)
    drug_c, unit_c = V.coder("drugs"), V.coder("units")
    drug = _map(raw["DRUG_NAME"], lambda s: (drug_c(s) or "other") if s.strip() else None)
    quantity = pd.to_numeric(raw["AMOUNT"], errors="coerce").to_numpy(dtype=float)
    odd = np.isnan(quantity)
    if odd.any():  # thousands separators, Khmer digits, blanks: the importer's parser, per distinct value
        quantity[odd] = _map(raw.loc[odd, "AMOUNT"], _number).astype(float)
    reject = (
        pd.isna(country) | (dates == "bad") | pd.isna(drug) | np.isnan(quantity) | (quantity < 0)
    )
    keep = ~reject
    raw = raw.loc[keep]
    country, drug, quantity = country[keep], drug[keep], quantity[keep]
    occurred = pd.to_datetime(pd.Series(dates[keep], dtype=object), format="%Y-%m-%d")
    unit = _map(raw["DRUG_UNIT"], lambda s: (unit_c(s) or "other") if s.strip() else "other")
    factor = _map(pd.Series(list(zip(unit, drug, strict=True))), lambda p: _kg_per_unit(*p)).astype(float)
    kind_c, conceal_c, transport_c = V.coder("place_kinds"), V.coder("concealment"), V.coder("transport")

    def coded(column: str, fn: Callable[[Any], Any]) -> np.ndarray:
        return _map(raw[column], lambda s: fn(s.strip()) if s.strip() else None)

    province = np.full(len(raw), None, dtype=object)
    district = np.full(len(raw), None, dtype=object)
    kh = country == "KH"
    if kh.any():
        pairs = pd.Series(list(zip(raw.loc[kh, "ADMINISTRATIVE_DIVISION"], raw.loc[kh, "PLACE"], strict=True)))
        places = _map(pairs, _kh_place)
        province[kh] = [p for p, _ in places]
        district[kh] = [d for _, d in places]
    place_code = np.where(pd.notna(district), district, np.where(pd.notna(province), province, country))
    lines = np.flatnonzero(keep) + 2  # line numbers of the file (line 1 is the header)
    routing = ids_format.ROUTING
    out = pd.DataFrame(
        {
            "incident_id": [f"ids:{i}" for i in lines],
            "occurred_on": occurred.to_numpy(),
            "country": country,
            "province_code": province,
            "district_code": district,
            "place_code": place_code,
            "place_kind": coded("INSTALLATION", kind_c),
            "reporting_org": ids_format.ORG_CODE,
            "operation_id": np.full(len(raw), None, dtype=object),
            "source": ids_format.SOURCE,
            "drug": drug,
            "quantity": quantity,
            "unit": unit,
            "mass_kg": quantity * factor,
            "transport_mode": coded("TRANSPORT", transport_c),
            "concealment": coded("HIDING_PLACE", conceal_c),
            "producing_country": coded("PRODUCING_COUNTRY", _safe(V.country)),
            "origin_country": coded("DEPARTURE_COUNTRY", _safe(V.country)),
            "transit_countries": "",
            "destination_country": coded("DESTINATION_COUNTRY", _safe(V.country)),
            "routing": coded("ROUTING", lambda s: routing.get(norm(s))),
        },
        columns=list(COLUMNS["seizures"]),
    )
    out.attrs.update(method=IDS_METHOD, rows_read=n, rejected=int(reject.sum()), file=path.name)
    return out
