"""Street value of seizures, from the drug prices UNODC publishes (dataUNODC, "Prices of drugs" 2018-2022).

Kilograms alone hide what a seizure took off the market: a kilogram of heroin and a kilogram of cannabis
are not the same loss to a trafficker. UNODC's price table gives typical, minimum and maximum retail and
wholesale prices by country, drug and year, in US dollars per gram, kilogram, tablet or dose. This module
turns each published row into US dollars per kilogram with the same conversion factors the store uses to
derive ``mass_kg`` (``domain/vocab/units.yaml``: a methamphetamine tablet weighs 90 mg, an ecstasy tablet
300 mg), so that ``kg x usd_per_kg`` gives back what the seized tablets would have sold for.

The converted table ships with the package (``data/unodc_prices.csv``, attribution in
``data/ATTRIBUTION-unodc.md``); ``python -m narcotrack.analytics.prices SOURCE.json OUT.csv`` rebuilds it
from UNODC's JSON file. Prices are published for a few drugs in a few years only, so ``price_table`` fills
the gaps by a stated rule (own country, nearest year; then the median of the sub-region) and says, row by
row, which rule it used.
"""

from __future__ import annotations

import math
import re
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from narcotrack.domain.places import resolve_country
from narcotrack.domain.units import mass_kg
from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import InvalidInput

PRICE_FILE = "unodc_prices.csv"
LEVELS = ("retail", "wholesale")
COLUMNS = ("country", "drug", "year", "level", "usd_per_kg_typical", "usd_per_kg_min", "usd_per_kg_max",
           "source", "subregion", "typical_basis")
SOURCE_NAME = "UNODC, Prices of drugs 2018-2022 (dataUNODC)"

# UNODC's drug names -> narcotrack drug codes. Aggregates ("Opioids", "Cannabis-type drugs", "Other ...")
# are left out: they name no one substance. Methamphetamine without a form is placed by its unit (below).
UNODC_DRUGS: dict[str, str] = {
    "Methamphetamine tablets": "methamphetamine_tablets",
    "\u201cYaba\u201d": "methamphetamine_tablets",
    "Methamphetamine powder": "methamphetamine_crystalline",
    "Amphetamine": "amphetamine",
    "Amphetamine powder": "amphetamine",
    "Amphetamine tablets": "amphetamine",
    "MDMA": "mdma",
    "Ecstasy-type substances": "mdma",
    "\u201cEcstasy\u201d-type substances": "mdma",
    "Ketamine and phencyclidine-type substances": "ketamine",
    "Heroin": "heroin",
    "Opium": "opium",
    "Morphine": "morphine",
    "Illicit morphine": "morphine",
    "Cocaine hydrochloride": "cocaine",
    "Cocaine salts": "cocaine",
    "Crack": "cocaine_base",
    "\u201cCrack\u201d cocaine": "cocaine_base",
    "Coca paste/cocaine base": "cocaine_base",
    "Coca leaf": "coca_leaf",
    "Cannabis herb (marijuana)": "cannabis_herb",
    "Marijuana (herb)": "cannabis_herb",
    "Cannabis resin (hashish)": "cannabis_resin",
    "Hashish (resin)": "cannabis_resin",
    "Nimetazepam (Erimin, \u201cHappy Five\u201d)": "nimetazepam",
    "Benzodiazepines": "benzodiazepines",
    "Alprazolam (Xanax, Pranax, Ksalol)": "benzodiazepines",
    "Tramadol": "opioids_pharmaceutical",
    "Buprenorphine": "opioids_pharmaceutical",
    "Codeine": "opioids_pharmaceutical",
    "Fentanyl": "opioids_pharmaceutical",
    "Methadone": "opioids_pharmaceutical",
    "Oxycodone": "opioids_pharmaceutical",
    "Synthetic cathinones": "synthetic_cathinones",
    "Synthetic cannabinoids (Spice)": "synthetic_cannabinoids",
    "Synthetic cannabinoids (\u201cSpice\u201d)": "synthetic_cannabinoids",
    "Kratom (Mitragyna speciosa)": "kratom",
    "Ephedrine": "ephedrine",
}
# "Methamphetamine" with no form: priced per tablet it is tablets, per gram or kilogram crystalline.
METH_BY_UNIT = {"count": "methamphetamine_tablets", "mass": "methamphetamine_crystalline"}
# A drug with no price of its own is valued at another's price per kg (stated in the note).
PROXY = {"methamphetamine": "methamphetamine_crystalline"}
# Land neighbours in the Mekong region: their prices come before the sub-region's median.
NEIGHBOURS = {"KH": ("LA", "TH", "VN"), "TH": ("KH", "LA", "MM", "MY"), "LA": ("CN", "KH", "MM", "TH", "VN"),
              "VN": ("CN", "KH", "LA"), "MM": ("BD", "CN", "IN", "LA", "TH")}
# Country names of the UNODC file that the gazetteer does not resolve.
EXTRA_COUNTRIES = {
    "State of Palestine": "PS", "China, Hong Kong SAR": "HK", "China, Macao SAR": "MO",
    "Bolivia (Plurinational State of)": "BO", "Iran (Islamic Republic of)": "IR", "Republic of Korea": "KR",
}
OUNCE_KG = 0.028349523125  # international avoirdupois ounce
# UNODC's units -> (narcotrack unit code, kind); the leading number ("1000 tablet", "5 g") multiplies.
UNITS = {"g": ("g", "mass"), "kg": ("kg", "mass"), "mg": ("mg", "mass"), "pound": ("lb", "mass"),
         "ounce": ("ounce", "mass"), "ml": ("ml", "volume"), "l": ("l", "volume"), "tablet": ("tablet", "count"),
         "pill": ("tablet", "count"), "capsule": ("tablet", "count"), "unit": ("unit", "count"),
         "dose": ("unit", "count")}


# -- building the package table from UNODC's file ---------------------------------------------------------
def _number(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) and x > 0 else math.nan


def _unit(text: str) -> tuple[float, str, str] | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)?\s*([A-Za-z]+)\s*", text or "")
    if not m or m.group(2).lower() not in UNITS:
        return None
    code, kind = UNITS[m.group(2).lower()]
    return float(m.group(1) or 1), code, kind


def _kg_per_unit(count: float, unit: str, drug: str) -> float | None:
    if unit == "ounce":
        return count * OUNCE_KG
    return mass_kg(count, unit, drug)


def build_prices(source: Path) -> pd.DataFrame:
    """UNODC's price rows converted to USD per kg, one row per country, drug, year and level.

    Typical price missing: the midpoint of minimum and maximum (``typical_basis`` "midpoint"). Rows of
    aggregate drug groups, of unknown units, or in units with no documented mass (a dose of heroin, an
    LSD stamp) are left out. Several published rows for the same cell (ecstasy and MDMA) are combined:
    the median typical price, the lowest minimum and the highest maximum.
    """
    raw = pd.read_json(source)
    rows = []
    for r in raw.to_dict("records"):
        unit = _unit(str(r.get("Unit") or ""))
        name = str(r["Drug"])
        if unit is None:
            continue
        count, unit_code, kind = unit
        drug = METH_BY_UNIT.get(kind) if name == "Methamphetamine" else UNODC_DRUGS.get(name)
        country = EXTRA_COUNTRIES.get(str(r["Country/Territory"])) or resolve_country(str(r["Country/Territory"]))
        kg = _kg_per_unit(count, unit_code, drug) if drug else None
        if drug is None or country is None or not kg:
            continue
        typical, low, high = (_number(r[k]) for k in ("Typical_USD", "Minimum_USD", "Maximum_USD"))
        basis = "reported"
        if math.isnan(typical):
            typical = (low + high) / 2 if not (math.isnan(low) or math.isnan(high)) else (
                low if math.isnan(high) else high)
            basis = "midpoint"
        if math.isnan(typical):
            continue
        rows.append({
            "country": country, "drug": drug, "year": int(r["Year"]), "level": str(r["LevelOfSale"]).lower(),
            "usd_per_kg_typical": typical / kg, "usd_per_kg_min": low / kg, "usd_per_kg_max": high / kg,
            "source": f"{name}, {r['Unit']}", "subregion": str(r["SubRegion"]), "typical_basis": basis,
        })
    df = pd.DataFrame(rows)
    keys = ["country", "drug", "year", "level"]
    out = df.groupby(keys, as_index=False).agg(
        usd_per_kg_typical=("usd_per_kg_typical", "median"), usd_per_kg_min=("usd_per_kg_min", "min"),
        usd_per_kg_max=("usd_per_kg_max", "max"), source=("source", lambda s: "; ".join(sorted(set(s)))),
        subregion=("subregion", "first"),
        typical_basis=("typical_basis", lambda s: "reported" if (s == "reported").any() else "midpoint"),
    )
    for col in ("usd_per_kg_typical", "usd_per_kg_min", "usd_per_kg_max"):
        out[col] = out[col].round(4)
    return out[list(COLUMNS)].sort_values(keys, ignore_index=True)


# -- the package table -------------------------------------------------------------------------------------
@cache
def _prices() -> pd.DataFrame:
    path = resources.files("narcotrack.analytics") / "data" / PRICE_FILE
    with path.open("r", encoding="utf-8") as f:
        # keep_default_na off: "NA" is Namibia, not a missing value
        df = pd.read_csv(f, dtype={"country": str, "drug": str, "level": str, "source": str},
                         keep_default_na=False, na_values={c: [""] for c in COLUMNS[4:7]})
    df["source"] = SOURCE_NAME + ": " + df["source"]
    return df


def load_prices() -> pd.DataFrame:
    """UNODC's prices in USD per kg: country (ISO2), drug (code), year, level ("retail"/"wholesale"),
    usd_per_kg_typical, usd_per_kg_min, usd_per_kg_max, source; also subregion and typical_basis."""
    df = _prices().copy()
    df.attrs["method"] = (f"{SOURCE_NAME}, converted to USD per kg with narcotrack's mass per tablet or dose; "
                          "a missing typical price is the midpoint of minimum and maximum.")
    return df


def _nearest(cands: pd.DataFrame, year: int) -> pd.DataFrame:
    """Per country, the row of the year nearest to ``year`` (ties: the later year)."""
    if cands.empty:
        return cands
    c = cands.assign(_d=(cands["year"] - year).abs(), _late=-cands["year"])
    return c.sort_values(["country", "_d", "_late"]).drop_duplicates("country").drop(columns=["_d", "_late"])


def _median_of(rows: pd.DataFrame, countries: set[str], year: int, what: str,
               country: str) -> tuple[float, str, str] | None:
    found = _nearest(rows[rows["country"].isin(countries - {country})], year)
    if found.empty:
        return None
    codes = " ".join(sorted(found["country"]))
    years = ", ".join(map(str, sorted(set(found["year"].astype(int)))))
    return float(found["usd_per_kg_typical"].median()), codes, f"median of {codes} ({what}) prices of {years}"


def _price_for(prices: pd.DataFrame, country: str, drug: str, year: int) -> tuple[float, str, str] | None:
    rows = prices[prices["drug"] == drug]
    own = _nearest(rows[rows["country"] == country], year)
    if len(own):
        y = int(own["year"].iloc[0])
        when = f"{y}" if y == year else f"{y}, the nearest year with a price"
        return float(own["usd_per_kg_typical"].iloc[0]), country, f"{country} price of {when}"
    near = _median_of(rows, set(NEIGHBOURS.get(country, ())), year, "neighbours", country)
    if near is not None:
        return near[0], near[1], f"{near[2]}: no {country} price"
    region = _subregion(country)
    wide = _median_of(rows, set(rows.loc[rows["subregion"] == region, "country"]), year, region, country) \
        if region else None
    return (wide[0], wide[1], f"{wide[2]}: no {country} or neighbour price") if wide else None


def _subregion(country: str) -> str | None:
    every = _prices()
    for code in (country, *NEIGHBOURS.get(country, ())):
        found = every.loc[every["country"] == code, "subregion"]
        if len(found):
            return str(found.iloc[0])
    return None


def price_table(country: str = "KH", level: str = "retail", *, years: range | None = None) -> pd.DataFrame:
    """USD per kg for every drug of the vocabulary and every year (default 2018-2022) in ``country``.

    Columns drug, year, usd_per_kg, price_country, note. Rule, in order: the country's own typical price
    of that year, else of its nearest year; else the median of its land neighbours' prices (Mekong
    countries, ``NEIGHBOURS``), each at its nearest year; else the median of the other countries of its
    UNODC sub-region, likewise; else, for a drug with a stated proxy (methamphetamine of
    unstated form -> crystalline), the proxy's price by the same rule; else no price (NaN).
    """
    if level not in LEVELS:
        raise InvalidInput(f"price level must be one of {', '.join(LEVELS)}, not {level!r}")
    df = _price_table(country, level, (years.start, years.stop, years.step) if years else None).copy()
    df.attrs["method"] = (f"UNODC {level} prices (dataUNODC 2018-2022) in USD per kg for {country}; gaps filled "
                          "from the nearest year, then neighbours', then the sub-region's median (see note).")
    return df


@cache
def _price_table(country: str, level: str, years: tuple[int, int, int] | None) -> pd.DataFrame:
    prices = _prices()
    prices = prices[prices["level"] == level]
    if _subregion(country) is None:
        raise InvalidInput(f"UNODC publishes no drug prices for country {country!r}")
    span = range(*years) if years else range(int(_prices()["year"].min()), int(_prices()["year"].max()) + 1)
    rows = []
    for drug in vocabularies().drugs.terms:
        for year in span:
            found = _price_for(prices, country, drug, year)
            if found is None and drug in PROXY:
                proxied = _price_for(prices, country, PROXY[drug], year)
                if proxied is not None:
                    found = (proxied[0], proxied[1], f"as {PROXY[drug]}: {proxied[2]}")
            value, where, note = found if found else (math.nan, None, f"no UNODC {level} price in the region")
            rows.append({"drug": drug, "year": year, "usd_per_kg": value, "price_country": where, "note": note})
    return pd.DataFrame(rows)


def street_value(frame: pd.DataFrame, prices: pd.DataFrame | None = None, *, country: str = "KH",
                 level: str = "retail") -> pd.DataFrame:
    """``frame`` (with drug, kg or mass_kg, and period or occurred_on) plus usd_per_kg and street_value_usd.

    The price is that of the row's year, held to the years priced (2018-2022: an earlier year takes the
    2018 price, a later one the 2022 price); with no date column, the latest year. Prices are not adjusted
    for inflation. A row with no mass or no price gets NaN.
    """
    prices = price_table(country, level) if prices is None else prices
    mass = "kg" if "kg" in frame.columns else "mass_kg"
    if "drug" not in frame.columns or mass not in frame.columns:
        raise InvalidInput("street value needs a drug column and a kg (or mass_kg) column")
    when = next((c for c in ("period", "occurred_on") if c in frame.columns), None)
    lo, hi = int(prices["year"].min()), int(prices["year"].max())
    if when is None:
        year = pd.Series(hi, index=frame.index)
    else:
        year = pd.to_datetime(frame[when]).dt.year.clip(lo, hi).fillna(hi).astype(int)
    lookup = prices.set_index(["drug", "year"])["usd_per_kg"]
    keys = pd.MultiIndex.from_arrays([frame["drug"].astype(object), year])
    out = frame.copy()
    out["usd_per_kg"] = lookup.reindex(keys).to_numpy(dtype=float)
    out["street_value_usd"] = pd.to_numeric(out[mass], errors="coerce").to_numpy(dtype=float) * out["usd_per_kg"]
    out.attrs = dict(frame.attrs)
    out.attrs["method"] = (f"Street value = kg x UNODC {level} price per kg ({country}, of the row's year held to "
                           "2018-2022, no inflation adjustment); rows with no mass or price have none.")
    return out


def _main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m narcotrack.analytics.prices SOURCE.json OUT.csv", file=sys.stderr)
        return 2
    df = build_prices(Path(argv[0]))
    df.to_csv(argv[1], index=False, float_format="%.10g")
    print(f"{len(df)} rows -> {argv[1]}; drugs: {', '.join(sorted(df['drug'].unique()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
