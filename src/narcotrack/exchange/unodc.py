"""UNODC exports: Individual Drug Seizures (IDS) rows and Annual Report Questionnaire (ARQ) aggregates.

Both are made for a principal: only incidents ``visible_filter`` lets the principal see, and never RED.

**IDS** (``ids_rows``): one row per seizure, in exactly the columns of UNODC's IDS file
(``narcotrack.ingest.ids_format.COLUMNS``) and with the terms that file uses, so that narcotrack's own
IDS importer, or UNODC's, reads an export back. A code is written as the term the seizure was reported
with when that term means the same code (a seizure imported as "Diazepam" goes out as "Diazepam", not as
the group "Benzodiazepine"); otherwise as the IDS term of ``IDS_TERMS``; a code the IDS file has no
term for goes out under narcotrack's English name, which the importer reads back to the same code. IDS
has no column for persons, arrests, narratives, purity, packaging marks, transit countries, operations
or markings, so none of them leaves in an IDS file.

**ARQ** (``arq_rows``): per year, country, drug and unit, the number of seizure cases (incidents), of
seizures, the total quantity in that unit and the total mass in kilograms, under the column names of
UNODC's "Drug seizures 2018-2022" data (Region, SubRegion, Country/Territory, msCode, Drug group,
DrugSubGroup, Drug, Year, Kilograms), with narcotrack's additions after them.

The layouts, the mapping and its limits: docs/exchange-unodc.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

import pycountry
from sqlalchemy import ColumnElement, Connection, and_, distinct, func, select

from narcotrack.access.policy import Principal, visible_filter
from narcotrack.domain.places import country_name, place_by_code
from narcotrack.domain.vocab import Vocabulary, vocabularies
from narcotrack.errors import InvalidInput
from narcotrack.ingest import ids_format
from narcotrack.store.schema import Incident, Seizure

CHUNK = 2000
IDS_COLUMNS = ids_format.COLUMNS

# narcotrack code -> the term UNODC's IDS file (2011-2014) uses for it, where that differs from the
# code's English name in the vocabulary. Every term is one the IDS importer reads back to the same code
# (tests/exchange/test_unodc.py checks both that and that the term occurs in the real file). Codes not
# listed go out under their English name (methamphetamine tablets, cannabis herb, safrole-rich oils...:
# the 2011-2014 file has no term of its own for them).
IDS_TERMS: dict[str, dict[str, str]] = {
    "drugs": {
        "methamphetamine": "Methamphetamine",
        "mdma": "Ecstasy",
        "ats_other": "Non-specified stimulants",
        "happy_water": "Controlled Drug Mix",
        "benzodiazepines": "Benzodiazepine",
        "opioids_pharmaceutical": "Other opioids",
        "cocaine": "Cocaine",
        "cocaine_base": "Cocaine Base",
        "coca_leaf": "Coca leaf",
        "synthetic_cannabinoids": "Synthetic Cannabinoid",
        "p2p": "Phenylacetone",
        "pmk": "MDP2P",
        "precursors_other": "Non-specified precursors",
        "other": "Other",
    },
    "units": {
        "kg": "Kilogram", "g": "Gram", "mg": "Milligram", "ug": "Microgram", "t": "Ton", "hg100": "100 gram",
        "block350": "Block (350gr)", "viss": "Viss", "l": "Litre", "ml": "Millilitre",
        "gal_us": "Gallons (US, liquid)", "gal_uk": "Gallons (UK)", "tablet": "Tablet",
        "ktablet": "Thousand of tablets", "unit": "Unit", "kdose": "Thousand of doses", "plant": "Plants",
        "acre": "Acres",
        "other": "",  # "other or not stated" with no unit as reported: a blank cell, as in the IDS file
    },
    "concealment": {
        "baggage": "Baggage", "body": "Body", "internal": "Inserted", "vehicle": "Transport Vehicle",
        "cargo": "Freight", "postal": "Postal", "packaging": "Plastic bags", "premises": "Residence",
        "other": "Other",
    },
    "place_kinds": {
        "border_checkpoint": "Frontier", "airport": "Airport", "seaport": "Seaport", "riverport": "Riverport",
        "road": "Road", "residence": "Residence", "commercial": "Commercial premises",
        "post_office": "Post Office", "production_site": "Factory", "institution": "Building", "other": "Other",
    },
    "transport": {
        "road_private": "Private road", "road_commercial": "Commercial road", "air_commercial": "Commercial air",
        "air_private": "Private air", "sea_commercial": "Commercial sea", "sea_private": "Private sea",
        "river": "River", "rail": "Rail", "mail": "Mail", "pedestrian": "Pedestrian", "none": "None",
        "other": "Other",
    },
}
# seizure.routing -> the ROUTING term of the IDS form (the inverse of ids_format.ROUTING, whose keys are
# normalised and so cannot be written out; a test checks that the two agree).
IDS_ROUTING = {
    "domestic": "National territory/domestic seizure",
    "border_inbound": "Border - inbound",
    "border_outbound": "Border - outbound",
    "border_transit": "Border - transit/free trade zone",
    "international_waters": "International waters/unclaimed territory",
    "other": "Other",
}
# Country names of the IDS file where they differ from ISO 3166-1's current names (older editions).
IDS_COUNTRY_NAMES = {
    "AX": "Aland Islands",
    "CD": "Congo, the Democratic Republic of the",
    "CZ": "Czech Republic",
    "LA": "Lao Peoples Democratic Republic",
    "LY": "Libyan Arab Jamahiriya",
    "MK": "Macedonia, the former Yugoslav Republic of",
    "MO": "Macau, SAR of China",
    "SZ": "Swaziland",
    "TR": "Turkey",
    "XK": "Kosovo under UNSCR 1244",
}
# Country names of UNODC's ARQ seizure data (UN M49 names) where they differ from ISO 3166-1's.
ARQ_COUNTRY_NAMES = {
    "BO": "Bolivia (Plurinational State of)",
    "HK": "China, Hong Kong SAR",
    "MO": "China, Macao SAR",
    "TW": "China, Taiwan Province of China",
    "IR": "Iran (Islamic Republic of)",
    "KR": "Republic of Korea",
    "MD": "Republic of Moldova",
    "PS": "State of Palestine",
    "TZ": "United Republic of Tanzania",
    "US": "United States of America",
    "VE": "Venezuela (Bolivarian Republic of)",
}
# UNODC's region and sub-region, written for the countries of narcotrack's region (the same names in IDS
# and ARQ data); left empty for other countries (narcotrack keeps no region table).
EAST_AND_SOUTH_EAST_ASIA = frozenset(
    ["BN", "CN", "HK", "ID", "JP", "KH", "KR", "LA", "MM", "MN", "MO", "MY", "PH", "SG", "TH", "TL", "TW", "VN"]
)
REGION = ("Asia", "East and South-East Asia")

# narcotrack drug code -> (Drug group, DrugSubGroup, Drug) of UNODC's ARQ seizure data (World Drug Report
# 2024 annex). Each triple occurs in that data (checked by a test against the real file).
ARQ_DRUGS: dict[str, tuple[str, str, str]] = {
    "methamphetamine_tablets": ("Amphetamines and Stimulants", "Methamphetamine", "\u201cYaba\u201d"),
    "methamphetamine_crystalline": ("Amphetamines and Stimulants", "Methamphetamine", "Methamphetamine"),
    "methamphetamine": ("Amphetamines and Stimulants", "Methamphetamine", "Methamphetamine"),
    "amphetamine": ("Amphetamines and Stimulants", "Amphetamine", "Amphetamine"),
    "mdma": ("MDMA and Ecstasy-like Drugs", "\u201cEcstasy\u201d-type substances",
             "3,4-methylenedioxymethamphetamine (MDMA)"),
    "ats_other": ("Amphetamines and Stimulants", "Non-specified amphetamine-type stimulants",
                  "Non-specified amphetamine-type stimulants"),
    "ketamine": ("NPS", "Ketamine and phencyclidine-type substances", "Ketamine and phencyclidine-type substances"),
    "happy_water": ("Miscellaneous", "Other miscellaneous", "Other drugs/substances"),
    "nimetazepam": ("Tranquillizers and Sedatives", "Benzodiazepines", "Nimetazepam (Erimin, \u201cHappy Five\u201d)"),
    "benzodiazepines": ("Tranquillizers and Sedatives", "Benzodiazepines", "Benzodiazepines"),
    "heroin": ("Opioids and Opiates", "Opiates", "Heroin"),
    "opium": ("Opioids and Opiates", "Opiates", "Opium"),
    "morphine": ("Opioids and Opiates", "Opiates", "Illicit morphine"),
    "opioids_pharmaceutical": ("Opioids and Opiates", "Pharmaceutical opioids", "Pharmaceutical opioids"),
    "cocaine": ("Cocaine and Derivatives", "Cocaine", "Cocaine hydrochloride"),
    "cocaine_base": ("Cocaine and Derivatives", "Cocaine", '"Crack" cocaine'),
    "coca_paste": ("Cocaine and Derivatives", "Cocaine",
                   "Coca paste/refined cocaine base (intermediate products) (please specify)"),
    "coca_leaf": ("Cocaine and Derivatives", "Coca-type", "Coca leaf"),
    "cannabis_herb": ("Cannabis and Synthetic Cannabinoids", "Cannabis herb (marijuana)", "Cannabis herb (marijuana)"),
    "cannabis_resin": ("Cannabis and Synthetic Cannabinoids", "Cannabis resin (hashish)", "Cannabis resin (hashish)"),
    "cannabis_plants": ("Cannabis and Synthetic Cannabinoids", "Cannabis plants", "Cannabis plants"),
    "synthetic_cathinones": ("NPS", "Synthetic cathinones", "Synthetic cathinones"),
    "synthetic_cannabinoids": ("NPS", "Synthetic cannabinoids (Spice)", "Synthetic cannabinoids (\u201cSpice\u201d)"),
    "hallucinogens": ("Classic Hallucinogens", "Non-specified hallucinogens", "Non-specified hallucinogens"),
    "kratom": ("NPS", "Plant-based NPS", "Kratom (Mitragyna speciosa)"),
    "safrole_oil": ("Miscellaneous", "Non-specified precursors", "Other precursors"),
    "ephedrine": ("Miscellaneous", "Precursors", "Ephedrine"),
    "pseudoephedrine": ("Miscellaneous", "Precursors", "Pseudoephedrine"),
    "p2p": ("Miscellaneous", "Precursors", "Phenylacetone (P-2-P)"),
    "pmk": ("Miscellaneous", "Precursors", "3,4-Methylenedioxyphenyl-2-propanone (3,4-MDP-2-P, PMK)"),
    "precursors_other": ("Miscellaneous", "Non-specified precursors", "Other precursors"),
    "other": ("Miscellaneous", "Other miscellaneous", "Other drugs/substances"),
}
ARQ_COLUMNS = (
    "Region",
    "SubRegion",
    "Country/Territory",
    "msCode",
    "Drug group",
    "DrugSubGroup",
    "Drug",
    "Year",
    "Kilograms",
    # narcotrack's additions: what the ARQ form asks for beside the mass, and the code behind "Drug"
    "Unit",
    "Quantity",
    "Cases",
    "Seizures",
    "Drug code",
)


# -- terms -----------------------------------------------------------------------------------------------
def _vocab(name: str) -> Vocabulary:
    vocab: Vocabulary = getattr(vocabularies(), name)
    return vocab


@cache
def ids_term(vocab_name: str, code: str | None, reported: str = "") -> str:
    """The IDS term for a narcotrack ``code`` of ``vocab_name`` ('' for none).

    ``reported`` (the name or unit the seizure was reported with) is kept when the importer reads it
    back to the same code; for code ``other`` it is kept when the importer does not understand it either
    (an IDS row's "Alcohol" stays "Alcohol")."""
    if not code:
        return ""
    vocab = _vocab(vocab_name)
    if reported:
        back = vocab.resolve(reported)
        if back == code or (code == "other" and back in (None, "other")):
            return reported
    term = IDS_TERMS.get(vocab_name, {}).get(code)
    if term is not None:
        return term
    found = vocab.terms.get(code)
    return found.name_en if found is not None else code


def ids_country(code: str | None) -> str:
    """The IDS name of a country ('' for none)."""
    if not code:
        return ""
    return IDS_COUNTRY_NAMES.get(code) or country_name(code)


def arq_country(code: str | None) -> tuple[str, str]:
    """(Country/Territory, msCode) of the ARQ data for an ISO 3166-1 alpha-2 code."""
    if not code:
        return "", ""
    found = pycountry.countries.get(alpha_2=code)
    return ARQ_COUNTRY_NAMES.get(code) or country_name(code), str(found.alpha_3) if found else ""


def region_of(code: str | None) -> tuple[str, str]:
    """(Region, SubRegion) as UNODC names them, for countries of East and South-East Asia; else blank."""
    return REGION if code in EAST_AND_SOUTH_EAST_ASIA else ("", "")


def _number(value: float) -> str:
    """A number as the IDS file writes it (Python's float repr: '490.0', '2.786')."""
    return repr(float(value))


# -- what may leave ----------------------------------------------------------------------------------------
def _visible(p: Principal, date_from: dt.date | None = None, date_to: dt.date | None = None,
             skip_owner: str | None = None) -> ColumnElement[bool]:
    """What ``p`` may see, never RED; ``skip_owner`` leaves out one owner's records (UNODC's own IDS rows,
    which make no sense to send back to UNODC or to count twice in its questionnaire)."""
    i = Incident.__table__.c
    cond = and_(visible_filter(p, Incident.__table__), i.marking != "RED")
    if skip_owner is not None:
        cond = and_(cond, i.owner_org_id != skip_owner)
    if date_from is not None:
        cond = and_(cond, i.occurred_on >= date_from)
    if date_to is not None:
        cond = and_(cond, i.occurred_on <= date_to)
    return cond


# -- IDS -------------------------------------------------------------------------------------------------------
@dataclass
class IdsStats:
    """What an IDS export held, for the audit trail and the command's summary."""

    rows: int = 0
    incidents: set[str] = field(default_factory=set)
    by_drug: dict[str, int] = field(default_factory=dict)


def ids_rows(
    conn: Connection,
    principal: Principal,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    stats: IdsStats | None = None,
    chunk: int = CHUNK,
    skip_owner: str | None = None,
) -> Iterator[dict[str, str]]:
    """One IDS row (column -> text) per seizure of the incidents ``principal`` may see, never RED.

    ``date_from``/``date_to`` (inclusive) keep incidents of those days; with either, undated incidents
    are left out. Reads the store a chunk of seizures at a time (keyset on the seizure id)."""
    s, i = Seizure.__table__.c, Incident.__table__.c
    columns = (
        s.id, s.drug, s.drug_reported, s.quantity, s.unit, s.unit_reported, s.concealment, s.transport_mode,
        s.producing_country, s.origin_country, s.destination_country, s.routing,
        i.id.label("incident_id"), i.occurred_on, i.country, i.province_code, i.district_code, i.place_text,
        i.admin_division_text, i.place_kind,
    )
    base = (select(*columns).select_from(Seizure.__table__.join(Incident.__table__, s.incident_id == i.id))
            .where(_visible(principal, date_from, date_to, skip_owner)))
    last: str | None = None
    while True:
        q = base if last is None else base.where(s.id > last)
        rows = conn.execute(q.order_by(s.id).limit(chunk)).mappings().all()
        if not rows:
            return
        for r in rows:
            if stats is not None:
                stats.rows += 1
                stats.incidents.add(r["incident_id"])
                stats.by_drug[r["drug"]] = stats.by_drug.get(r["drug"], 0) + 1
            yield _ids_row(r)
        last = rows[-1]["id"]


def _ids_row(r: Any) -> dict[str, str]:
    region, subregion = region_of(r["country"])
    admin, place = r["admin_division_text"] or "", r["place_text"] or ""
    if r["country"] == "KH":
        # The gazetteer's English names, which the importer resolves back to the province and district.
        province = place_by_code(r["province_code"]) if r["province_code"] else None
        district = place_by_code(r["district_code"]) if r["district_code"] else None
        admin = admin or (province.name_en if province else "")
        place = place or (district.name_en if district else "")
    occurred = r["occurred_on"]
    return {
        "REGION": region,
        "SUBREGION": subregion,
        "COUNTRY": ids_country(r["country"]),
        "ADMINISTRATIVE_DIVISION": admin,
        "PLACE": place,
        "SEIZURE_DATE": occurred.isoformat() if occurred else "",
        "DRUG_NAME": ids_term("drugs", r["drug"], r["drug_reported"] or ""),
        "AMOUNT": _number(r["quantity"]),
        "DRUG_UNIT": ids_term("units", r["unit"], r["unit_reported"] or ""),
        "HIDING_PLACE": ids_term("concealment", r["concealment"]),
        "INSTALLATION": ids_term("place_kinds", r["place_kind"]),
        "TRANSPORT": ids_term("transport", r["transport_mode"]),
        "PRODUCING_COUNTRY": ids_country(r["producing_country"]),
        "DEPARTURE_COUNTRY": ids_country(r["origin_country"]),
        "DESTINATION_COUNTRY": ids_country(r["destination_country"]),
        "ROUTING": IDS_ROUTING.get(r["routing"] or "", ""),
    }


# -- ARQ -------------------------------------------------------------------------------------------------------
def arq_rows(conn: Connection, principal: Principal, year: int | None = None,
             skip_owner: str | None = None) -> list[dict[str, Any]]:
    """Annual aggregates of the seizures ``principal`` may see (never RED), per year, country, drug and unit.

    Cases counts incidents (an incident with two seizures of the drug in that unit is one case),
    Seizures counts seizure records, Quantity sums the quantity in the row's unit and Kilograms the mass
    narcotrack derived (None when no seizure of the row has a mass, e.g. plants). Undated seizures have
    no year and are left out (``arq_counts`` counts them). The database does the grouping."""
    s, i = Seizure.__table__.c, Incident.__table__.c
    cond = and_(_visible(principal, skip_owner=skip_owner), _year_filter(year))
    yr = func.extract("year", i.occurred_on)
    q = (
        select(yr.label("year"), i.country, s.drug, s.unit, func.count(distinct(i.id)).label("cases"),
               func.count(s.id).label("seizures"), func.sum(s.quantity).label("quantity"),
               func.sum(s.mass_kg).label("kg"))
        .select_from(Seizure.__table__.join(Incident.__table__, s.incident_id == i.id))
        .where(cond)
        .group_by(yr, i.country, s.drug, s.unit)
    )
    out = []
    for r in conn.execute(q).mappings():
        region, subregion = region_of(r["country"])
        name, ms = arq_country(r["country"])
        group, subgroup, drug = ARQ_DRUGS.get(r["drug"], ARQ_DRUGS["other"])
        out.append({
            "Region": region, "SubRegion": subregion, "Country/Territory": name, "msCode": ms,
            "Drug group": group, "DrugSubGroup": subgroup, "Drug": drug, "Year": int(r["year"]),
            "Kilograms": None if r["kg"] is None else float(r["kg"]), "Unit": r["unit"],
            "Quantity": float(r["quantity"] or 0.0), "Cases": int(r["cases"]), "Seizures": int(r["seizures"]),
            "Drug code": r["drug"],
        })
    out.sort(key=lambda row: (row["Year"], row["msCode"], row["Drug group"], row["Drug code"], row["Unit"]))
    return out


def _year_filter(year: int | None) -> ColumnElement[bool]:
    i = Incident.__table__.c
    if year is None:
        return i.occurred_on.is_not(None)
    return and_(i.occurred_on >= dt.date(year, 1, 1), i.occurred_on <= dt.date(year, 12, 31))


def arq_counts(conn: Connection, principal: Principal, year: int | None = None,
               skip_owner: str | None = None) -> dict[str, int]:
    """What ``arq_rows`` counted, in all: 'incidents' (distinct; an incident with seizures of two drugs is
    a case in two rows), 'seizures', and 'undated_seizures', visible seizures whose incident has no date
    and so no place in an annual table (0 when ``year`` is given)."""
    s, i = Seizure.__table__.c, Incident.__table__.c
    joined = Seizure.__table__.join(Incident.__table__, s.incident_id == i.id)
    q = (select(func.count(distinct(i.id)), func.count(s.id)).select_from(joined)
         .where(_visible(principal, skip_owner=skip_owner), _year_filter(year)))
    incidents, seizures = conn.execute(q).one()
    undated = 0
    if year is None:
        undated = conn.scalar(select(func.count(s.id)).select_from(joined)
                              .where(_visible(principal, skip_owner=skip_owner), i.occurred_on.is_(None))) or 0
    return {"incidents": int(incidents or 0), "seizures": int(seizures or 0), "undated_seizures": int(undated)}


# -- writers -----------------------------------------------------------------------------------------------------
def _kind(path: Path, allowed: Sequence[str]) -> str:
    name = path.name.lower()
    for kind in ("csv.gz", "csv", "xlsx", "json"):
        if name.endswith("." + kind):
            if kind not in allowed:
                break
            return kind
    raise InvalidInput(f"{path.name}: write to a file ending in {', '.join('.' + k for k in allowed)}")


def _write(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]], kind: str, delimiter: str,
           sheet: str) -> int:
    """Write ``rows`` to ``path`` (through a '.part' file, so a failed export leaves no half file)."""
    tmp = path.with_name(path.name + ".part")
    n = 0
    try:
        if kind == "xlsx":
            from openpyxl import Workbook

            wb = Workbook(write_only=True)
            ws = wb.create_sheet(sheet)
            ws.append(list(columns))
            for row in rows:
                ws.append([row[c] for c in columns])
                n += 1
            wb.save(tmp)
        elif kind == "json":
            items = [dict(row) for row in rows]
            n = len(items)
            tmp.write_text(json.dumps(items, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        else:
            fh: IO[str]
            with (gzip.open(tmp, "wt", encoding="utf-8", newline="") if kind == "csv.gz"
                  else tmp.open("w", encoding="utf-8", newline="")) as fh:
                writer = csv.DictWriter(fh, fieldnames=list(columns), delimiter=delimiter, lineterminator="\n")
                writer.writeheader()
                for row in rows:
                    writer.writerow({c: "" if row[c] is None else row[c] for c in columns})
                    n += 1
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def write_ids(path: Path | str, rows: Iterable[dict[str, str]]) -> int:
    """Write IDS rows as UNODC publishes them: ``;``-separated UTF-8 CSV (``.csv``, ``.csv.gz``) or a
    workbook (``.xlsx``); returns the number of rows. AMOUNT is a number in a workbook."""
    path = Path(path)
    kind = _kind(path, ("csv", "csv.gz", "xlsx"))
    out: Iterable[dict[str, Any]] = rows
    if kind == "xlsx":
        out = ({**row, "AMOUNT": float(row["AMOUNT"])} for row in rows)
    return _write(path, IDS_COLUMNS, out, kind, ";", "IDS")


def write_arq(path: Path | str, rows: Iterable[dict[str, Any]]) -> int:
    """Write ARQ rows as CSV (``,``), a workbook (``.xlsx``) or, like UNODC's own data, a JSON list of
    records (``.json``); returns the number of rows."""
    path = Path(path)
    return _write(path, ARQ_COLUMNS, rows, _kind(path, ("csv", "xlsx", "json")), ",", "ARQ seizures")

