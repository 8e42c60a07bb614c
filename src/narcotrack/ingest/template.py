"""The import template a field officer fills in: CSV (header only) or XLSX (with help and allowed values).

The XLSX has the empty data sheet first (so that importing the template unchanged imports nothing), then
the allowed values the coded columns accept, an example case filled in, a guide to every column in English
and Khmer, and the gazetteer's provinces, districts and communes. Drop-down lists on the data sheet offer
the allowed values but do not forbid other spellings: the importer accepts every alias (yaba, ice...).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from narcotrack.domain.places import iter_gazetteer
from narcotrack.domain.vocab import Vocabulary, vocabularies
from narcotrack.errors import InvalidInput
from narcotrack.ingest.columns import COLUMNS
from narcotrack.store.seed import organisation_rows

DATA_SHEET, VALUES_SHEET, EXAMPLE_SHEET, GUIDE_SHEET, PLACES_SHEET = (
    "Seizures",
    "Allowed values",
    "Example",
    "Guide",
    "Places",
)
DATA_ROWS = 2000  # rows that get drop-down lists and date formatting
EXAMPLE_ROWS: list[dict[str, str]] = [
    {
        "incident_ref": "PP-2025-0417",
        "date": "2025-03-14",
        "province": "Phnom Penh",
        "district": "Chamkar Mon",
        "place": "Street 271, near Phsar Doeum Thkov",
        "place_kind": "road",
        "reporting_org": "KH-PP-12",
        "drug": "yaba",
        "quantity": "9884",
        "unit": "tablet",
        "concealment": "vehicle",
        "transport": "motorbike",
        "packaging_marking": "WY",
        "origin_country": "Laos",
        "destination_country": "Cambodia",
        "narrative": "Two suspects stopped on a motorbike at a checkpoint; tablets under the seat.",
        "marking": "AMBER",
        "distribution": "domestic",
    },
    {
        "incident_ref": "PP-2025-0417",
        "drug": "ice",
        "quantity": "0.25",
        "unit": "kg",
        "purity_pct": "70",
        "concealment": "vehicle",
        "transport": "motorbike",
        "reporting_org": "KH-PP-12",
    },
    {
        "incident_ref": "BB-2025-0032",
        "date": "21/03/2025",
        "province": "បាត់ដំបង",
        "district": "Kamrieng",
        "place": "Border crossing, Kamrieng",
        "place_kind": "border checkpoint",
        "reporting_org": "KH-PP-02",
        "drug": "ketamine",
        "quantity": "500",
        "unit": "g",
        "concealment": "baggage",
        "transport": "bus",
        "origin_country": "Thailand",
        "transit_countries": "",
        "marking": "GREEN",
        "distribution": "partners",
    },
]
_LISTS = {  # data-sheet column -> vocabulary whose English names its drop-down offers
    "drug": "drugs",
    "unit": "units",
    "place_kind": "place_kinds",
    "concealment": "concealment",
    "transport": "transport",
    "marking": "markings",
    "distribution": "distributions",
}


def write_template(path: Path | str) -> Path:
    """Write the template to ``path``; the suffix (.xlsx or .csv) chooses the kind."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:  # BOM: Excel then shows Khmer right
            csv.writer(fh).writerow([c.header for c in COLUMNS])
        return path
    if suffix != ".xlsx":
        raise InvalidInput("the template file name must end in .xlsx or .csv")
    _write_xlsx(path)
    return path


def _write_xlsx(path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    wrap = Alignment(wrap_text=True, vertical="top")
    wb = Workbook()
    data = wb.active
    data.title = DATA_SHEET
    for i, c in enumerate(COLUMNS, start=1):
        cell = data.cell(row=1, column=i, value=c.header)
        cell.font, cell.fill, cell.alignment = bold, fill, wrap
        cell.comment = Comment(
            ("Required. " if c.required else "") + c.help, "narcotrack", width=300, height=120
        )
        data.column_dimensions[get_column_letter(i)].width = 34 if c.key in {"narrative", "place"} else 20
    data.row_dimensions[1].height = 36
    data.freeze_panes = "B2"
    letter = {c.key: get_column_letter(i) for i, c in enumerate(COLUMNS, start=1)}
    data.column_dimensions[letter["date"]].number_format = "yyyy-mm-dd"  # style, not cells: rows stay empty

    values = wb.create_sheet(VALUES_SHEET)
    ranges = _write_allowed_values(values, bold, fill)
    for key, rng in ranges.items():
        if key not in letter:
            continue
        dv = DataValidation(
            type="list",
            formula1=rng,
            allow_blank=True,
            showErrorMessage=True,
            errorStyle="information",
            error="Not in the list; the importer also accepts other spellings it knows (yaba, ice...).",
            errorTitle="narcotrack",
        )
        dv.add(f"{letter[key]}2:{letter[key]}{DATA_ROWS + 1}")
        data.add_data_validation(dv)

    example = wb.create_sheet(EXAMPLE_SHEET)
    for i, c in enumerate(COLUMNS, start=1):
        cell = example.cell(row=1, column=i, value=c.header)
        cell.font, cell.fill, cell.alignment = bold, fill, wrap
        example.column_dimensions[get_column_letter(i)].width = 20
        for r, sample in enumerate(EXAMPLE_ROWS, start=2):
            example.cell(row=r, column=i, value=sample.get(c.key) or None)

    guide = wb.create_sheet(GUIDE_SHEET)
    _write_guide(guide, bold, fill, wrap)
    _write_places(wb.create_sheet(PLACES_SHEET), bold, fill)
    wb.save(path)


def _write_allowed_values(ws: Any, bold: Any, fill: Any) -> dict[str, str]:
    """One block of columns per list; returns column key -> range formula of the English names."""
    from openpyxl.utils import get_column_letter

    voc = vocabularies()
    blocks: list[tuple[str, str, list[list[str]]]] = []
    for key, name in _LISTS.items():
        vocab: Vocabulary = getattr(voc, name)
        terms = [t for t in vocab.terms.values() if not (name == "distributions" and t.code == "group")]
        label = {
            "drugs": "Drug / គ្រឿងញៀន",
            "units": "Unit / ឯកតា",
            "place_kinds": "Place kind / ប្រភេទទីកន្លែង",
            "concealment": "Concealment / វិធីលាក់",
            "transport": "Transport / មធ្យោបាយដឹកជញ្ជូន",
            "markings": "TLP marking / កម្រិតចែករំលែក TLP",
            "distributions": "Distribution / វិសាលភាពចែករំលែក",
        }[name]
        first = (lambda t: t.code) if name in {"markings", "distributions"} else (lambda t: t.name_en)
        rows = [
            [first(t), t.name_km, t.code, ", ".join(map(str, t.extra.get("aliases", [])[:6]))] for t in terms
        ]
        blocks.append((key, label, rows))
    provinces = [p for p in iter_gazetteer() if p.level == "province"]
    blocks.append(
        (
            "province",
            "Province / ខេត្ត",
            [[p.name_en, p.name_km, p.code.removeprefix("KH-"), ""] for p in provinces],
        )
    )
    blocks.append(
        (
            "reporting_org",
            "Reporting organisation / អង្គភាពរាយការណ៍",
            [[o["code"], o["name_km"], o["name_en"], ""] for o in organisation_rows()],
        )
    )
    ranges: dict[str, str] = {}
    col = 1
    for key, label, rows in blocks:
        heads = [label, "ខ្មែរ / Khmer", "code" if key != "reporting_org" else "name", "also accepted"]
        for j, head in enumerate(heads):
            cell = ws.cell(row=1, column=col + j, value=head)
            cell.font, cell.fill = bold, fill
            ws.column_dimensions[get_column_letter(col + j)].width = 26 if j != 1 else 22
        for r, values in enumerate(rows, start=2):
            for j, value in enumerate(values):
                ws.cell(row=r, column=col + j, value=value or None)
        first_col = get_column_letter(col)
        ranges[key] = f"'{VALUES_SHEET}'!${first_col}$2:${first_col}${len(rows) + 1}"
        col += len(heads) + 1
    ws.freeze_panes = "A2"
    return ranges


def _write_guide(ws: Any, bold: Any, fill: Any, wrap: Any) -> None:
    heads = ["Column (English / ខ្មែរ)", "Required", "What to write", "Example"]
    for j, head in enumerate(heads, start=1):
        cell = ws.cell(row=1, column=j, value=head)
        cell.font, cell.fill = bold, fill
    for r, c in enumerate(COLUMNS, start=2):
        ws.cell(row=r, column=1, value=c.header)
        ws.cell(row=r, column=2, value="yes" if c.required else "")
        ws.cell(row=r, column=3, value=c.help).alignment = wrap
        ws.cell(row=r, column=4, value=c.example or None)
    notes = [
        "One row per drug seized. Several rows with the same case number are one incident; on its later rows "
        "the date, place and other case details may be left blank.",
        "Dates: YYYY-MM-DD or DD/MM/YYYY (day first), or an Excel date.",
        "Places: province, district and commune in Khmer or English (see the 'Places' sheet), or codes.",
        "Importing is all-or-nothing: if any row is wrong, nothing is stored and every problem is listed "
        "with its row and column. Importing the same file twice adds nothing twice.",
    ]
    for i, note in enumerate(notes, start=len(COLUMNS) + 3):
        ws.cell(row=i, column=1, value=note)
    for letter, width in zip("ABCD", (38, 10, 70, 30), strict=True):
        ws.column_dimensions[letter].width = width


def _write_places(ws: Any, bold: Any, fill: Any) -> None:
    heads = ["level", "code", "English", "ខ្មែរ", "in"]
    for j, head in enumerate(heads, start=1):
        cell = ws.cell(row=1, column=j, value=head)
        cell.font, cell.fill = bold, fill
    r = 2
    for p in iter_gazetteer():
        if p.level == "village":
            continue
        parent = "" if p.parent_code in (None, "KH") else (p.parent_code or "").removeprefix("KH-")
        for j, value in enumerate(
            (p.level, p.code.removeprefix("KH-"), p.name_en, p.name_km, parent), start=1
        ):
            ws.cell(row=r, column=j, value=value or None)
        r += 1
    ws.freeze_panes = "A2"
    for letter, width in zip("ABCDE", (10, 10, 28, 28, 8), strict=True):
        ws.column_dimensions[letter].width = width
