"""Helpers for the import tests: files in narcotrack's template and in UNODC's IDS layout, store counts."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from narcotrack.ingest.columns import COLUMNS
from narcotrack.ingest.ids_format import COLUMNS as IDS_COLUMNS
from narcotrack.store.schema import ImportBatch, Incident, Seizure

HEADER = [c.header for c in COLUMNS]
KEYS = [c.key for c in COLUMNS]


def case_row(ref: str = "C-1", **values: Any) -> dict[str, Any]:
    """A complete, valid template row (one seizure of yaba in Phnom Penh), with ``values`` overriding."""
    row: dict[str, Any] = {
        "incident_ref": ref,
        "date": "2024-05-02",
        "province": "Phnom Penh",
        "district": "Chamkar Mon",
        "place": "Street 271",
        "place_kind": "road",
        "reporting_org": "KH-PP-12",
        "drug": "yaba",
        "quantity": "1000",
        "unit": "tablet",
    }
    row.update(values)
    return row


def write_template_csv(
    path: Path,
    rows: list[dict[str, Any]],
    *,
    header: list[str] | None = None,
    keys: list[str] | None = None,
    compress: bool = False,
) -> Path:
    """Write rows (dicts by column key) under ``header`` (default: the bilingual template header)."""
    header = header or HEADER
    keys = keys or KEYS
    opener: Any = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow(["" if row.get(k) is None else row.get(k) for k in keys])
    return path


def ids_row(**values: Any) -> dict[str, str]:
    row = {c: "" for c in IDS_COLUMNS}
    row.update(
        {
            "REGION": "Asia",
            "SUBREGION": "South-East Asia",
            "COUNTRY": "Thailand",
            "PLACE": "Bangkok",
            "SEIZURE_DATE": "2012-03-04",
            "DRUG_NAME": "Methamphetamine tablets",
            "AMOUNT": "12000.0",
            "DRUG_UNIT": "Tablet",
        }
    )
    row.update(values)
    return row


def write_ids_csv(path: Path, rows: list[dict[str, str]], *, compress: bool = False) -> Path:
    opener: Any = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(IDS_COLUMNS)
        for row in rows:
            w.writerow([row.get(c, "") for c in IDS_COLUMNS])
    return path


def counts(engine: Engine) -> dict[str, int]:
    """Rows in the tables an import writes to."""
    with engine.connect() as conn:
        return {
            name: int(conn.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in (("incident", Incident), ("seizure", Seizure), ("import_batch", ImportBatch))
        }


def seizures(engine: Engine, *where: Any) -> list[Any]:
    """Seizures joined to their incidents, oldest row first."""
    q = (
        select(Seizure, Incident)
        .join(Incident, Incident.id == Seizure.incident_id)
        .where(*where)
        .order_by(Seizure.id)
    )
    with Session(engine) as session:
        return [tuple(r) for r in session.execute(q).all()]
