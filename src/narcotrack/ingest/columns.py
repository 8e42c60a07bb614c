"""The columns of narcotrack's import template, in English and Khmer, and how header cells name them.

One list serves the importer (which header means which column), the template writer (headers, help
text, examples) and the documentation. A header cell may give the bilingual header
(``Date / កាលបរិច្ឆេទ``), either half alone, the column key (``date``) or a common alias (``case no``).
"""

from __future__ import annotations

from dataclasses import dataclass

from narcotrack.domain.vocab import norm


@dataclass(frozen=True)
class Column:
    key: str
    en: str
    km: str
    required: bool
    help: str
    example: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def header(self) -> str:
        return f"{self.en} / {self.km}"


# fmt: off
COLUMNS: tuple[Column, ...] = (
    Column("incident_ref", "Case number", "លេខករណី", True,
           "The station's case number. Rows with the same case number are one incident: write one row "
           "per drug seized.", "PP-2025-0417", ("case", "case no", "incident", "incident ref", "ref")),
    Column("date", "Date", "កាលបរិច្ឆេទ", True,
           "Date of the seizure: YYYY-MM-DD or DD/MM/YYYY. May be left blank on the later rows of a case.",
           "2025-03-14", ("seizure date", "date of seizure")),
    Column("country", "Country", "ប្រទេស", False,
           "Country where it happened, if not Cambodia (English name or ISO code)."),
    Column("province", "Province", "ខេត្ត", True,
           "Province or capital: Khmer or English name, or its code (1-25).", "Phnom Penh",
           ("province capital", "khaet")),
    Column("district", "District", "ស្រុក ខណ្ឌ", False, "District, khan or krong (Khmer or English).",
           "Chamkar Mon", ("khan", "srok")),
    Column("commune", "Commune", "ឃុំ សង្កាត់", False, "Commune or sangkat (Khmer or English).", "",
           ("sangkat", "khum")),
    Column("place", "Place", "ទីកន្លែង", False, "Where exactly: street, checkpoint, building.",
           "Street 271, near Phsar Doeum Thkov", ("location", "place text")),
    Column("place_kind", "Place kind", "ប្រភេទទីកន្លែង", False,
           "Kind of place (see 'Allowed values'): road, residence, border checkpoint...", "road"),
    Column("reporting_org", "Reporting organisation", "អង្គភាពរាយការណ៍", False,
           "Code of the reporting unit, e.g. KH-PP-12. May be left out when given at import (--org).",
           "KH-PP-12", ("org", "organisation", "organization", "reporting unit")),
    Column("drug", "Drug", "គ្រឿងញៀន", True, "Drug seized (see 'Allowed values'; yaba, ice... work).",
           "yaba", ("drug name", "substance")),
    Column("quantity", "Quantity", "បរិមាណ", True, "Amount seized, a number (1234.5).", "9884",
           ("amount", "qty")),
    Column("unit", "Unit", "ឯកតា", True, "Unit of the quantity: kg, g, tablet, litre...", "tablet",
           ("drug unit",)),
    Column("purity_pct", "Purity %", "ភាពបរិសុទ្ធ %", False, "Purity from a laboratory test, 0-100.", "",
           ("purity", "purity percent")),
    Column("concealment", "Concealment", "វិធីលាក់", False, "How it was hidden (see 'Allowed values').",
           "vehicle", ("hiding place",)),
    Column("transport", "Transport", "មធ្យោបាយដឹកជញ្ជូន", False, "Means of transport (see 'Allowed values').",
           "motorbike", ("transport mode",)),
    Column("packaging_marking", "Logo or marking", "សញ្ញាលើកញ្ចប់", False,
           "Logo, stamp or text on tablets or packages.", "WY", ("logo", "packaging", "marking on packaging")),
    Column("producing_country", "Producing country", "ប្រទេសផលិត", False,
           "Where the drug was made, if known."),
    Column("origin_country", "Origin country", "ប្រទេសប្រភព", False,
           "Country the shipment came from (departure).", "Laos", ("departure country",)),
    Column("transit_countries", "Transit countries", "ប្រទេសឆ្លងកាត់", False,
           "Countries crossed on the way, separated by commas.", "", ("transit",)),
    Column("destination_country", "Destination country", "ប្រទេសគោលដៅ", False,
           "Intended destination, if known.", "Cambodia", ("destination",)),
    Column("narrative", "Narrative", "សេចក្តីសង្ខេប", False, "What happened, in a few sentences.", "",
           ("description", "notes", "summary")),
    Column("marking", "TLP marking", "កម្រិតចែករំលែក TLP", False,
           "Who may see it: CLEAR, GREEN, AMBER (default), AMBER+STRICT, RED.", "AMBER", ("tlp",)),
    Column("distribution", "Distribution", "វិសាលភាពចែករំលែក", False,
           "owner, domestic (default) or partners.", "domestic", ("sharing", "share with")),
)
# fmt: on
BY_KEY = {c.key: c for c in COLUMNS}
REQUIRED = tuple(c.key for c in COLUMNS if c.required)


def _header_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for c in COLUMNS:
        for name in (c.key, c.en, c.km, c.header, *c.aliases):
            index.setdefault(norm(name), c.key)
    return index


_HEADER_INDEX = _header_index()


def column_key(cell: str) -> str | None:
    """Column key of one header cell: English, Khmer, both ('Date / កាលបរិច្ឆេទ') or the key."""
    key = _HEADER_INDEX.get(norm(cell))
    if key is not None:
        return key
    parts = [p for p in cell.replace("|", "/").split("/") if p.strip()]
    keys = {_HEADER_INDEX.get(norm(p)) for p in parts} - {None}
    return keys.pop() if len(keys) == 1 else None


def score(header: list[str]) -> int:
    """How many template columns the header names (for format detection)."""
    return len({column_key(h) for h in header} - {None})
