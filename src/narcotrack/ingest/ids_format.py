"""UNODC Individual Drug Seizures (IDS) files: every row is one incident with one seizure.

IDS data is reported by every member state and cannot be corrected by whoever imports it, so only what
makes a record impossible is an error (no country, no drug name, an amount that is missing, not a number
or negative, a date that is not a date). Anything else that narcotrack does not understand is kept as
reported and counted as a warning: an unknown drug name becomes drug ``other`` with ``drug_reported``
kept, an unknown unit becomes unit ``other`` with ``unit_reported`` kept (and no mass), an unknown
hiding place, installation or transport is written into the narrative.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from narcotrack.domain.places import resolve_district
from narcotrack.domain.units import mass_kg
from narcotrack.domain.vocab import norm
from narcotrack.errors import ImportRejected, InvalidInput
from narcotrack.ingest import values as V
from narcotrack.ingest.grouping import ChunkBuilder
from narcotrack.ingest.readers import Table
from narcotrack.ingest.records import BIT, Chunk, Context, IdMaker
from narcotrack.ingest.report import ERROR, WARNING, ImportReport, Issue
from narcotrack.store.seed import place_id

SOURCE = "unodc_ids"
ORG_CODE = "UNODC-IDS"
MARKING, DISTRIBUTION = "CLEAR", "partners"
COLUMNS = (
    "REGION",
    "SUBREGION",
    "COUNTRY",
    "ADMINISTRATIVE_DIVISION",
    "PLACE",
    "SEIZURE_DATE",
    "DRUG_NAME",
    "AMOUNT",
    "DRUG_UNIT",
    "HIDING_PLACE",
    "INSTALLATION",
    "TRANSPORT",
    "PRODUCING_COUNTRY",
    "DEPARTURE_COUNTRY",
    "DESTINATION_COUNTRY",
    "ROUTING",
)
REQUIRED = ("COUNTRY", "SEIZURE_DATE", "DRUG_NAME", "AMOUNT", "DRUG_UNIT")
# ROUTING values of the IDS form -> seizure.routing codes.
ROUTING = {
    norm(k): v
    for k, v in {
        "National territory/domestic seizure": "domestic",
        "Border - inbound": "border_inbound",
        "Border - outbound": "border_outbound",
        "Border - transit/free trade zone": "border_transit",
        "International waters/unclaimed territory": "international_waters",
        "Other": "other",
    }.items()
}
ALL_BITS = sum(BIT.values())


def score(header: list[str]) -> int:
    names = {h.strip().upper() for h in header}
    return len(names & set(COLUMNS))


def looks_like_ids(header: list[str]) -> bool:
    return {"COUNTRY", "DRUG_NAME", "AMOUNT", "DRUG_UNIT"} <= {h.strip().upper() for h in header}


def map_header(header: list[str], report: ImportReport) -> dict[str, int]:
    positions: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = cell.strip().upper()
        if name in COLUMNS and name not in positions:
            positions[name] = i
        elif cell:
            report.add(Issue(1, cell, cell, "column not part of the IDS format; ignored", WARNING))
    missing = [c for c in REQUIRED if c not in positions]
    if missing:
        report.extend(Issue(1, c, "", "required column missing", ERROR) for c in missing)
        raise ImportRejected(
            f"{report.file_name}: IDS columns missing ({', '.join(missing)}); nothing was imported", report
        )
    return positions


def columns_for_messages() -> dict[str, str]:
    return {
        "occurred_on": "SEIZURE_DATE",
        "place_id": "COUNTRY",
        "place_text": "PLACE",
        "place_kind": "INSTALLATION",
        "narrative": "",
        "marking": "",
        "distribution": "",
    }


def validate(table: Table, positions: dict[str, int], ctx: Context) -> Iterator[Chunk]:
    builder = ChunkBuilder(merge=False, columns=columns_for_messages(), required=("place_id",))
    code = ctx.owner_code or ORG_CODE
    org = ctx.orgs.get(norm(code))
    if org is None:
        raise InvalidInput(f"organisation {code} is not in the store: run `narcotrack init` first")
    row_fn = _row_validator(positions, ctx, org[0], IdMaker())
    for row_no, cells in table.rows:
        builder.chunk.rows_read += 1
        row_fn(row_no, cells, builder)
        if builder.chunk.rows_read >= ctx.chunk_rows:
            builder.chunk.bytes_done = table.bytes_done()
            yield builder.take()
    builder.chunk.bytes_done = table.bytes_done()
    yield builder.take()


def _row_validator(pos: dict[str, int], ctx: Context, org_id: str, new_id: IdMaker) -> Any:
    drug_c, unit_c = V.coder("drugs"), V.coder("units")
    kind_c, conceal_c, transport_c = V.coder("place_kinds"), V.coder("concealment"), V.coder("transport")
    text, parse_date, parse_number, country = V.text, V.parse_date, V.parse_number, V.country
    stamp, batch = ctx.stamp, ctx.batch_id
    marking, distribution = ctx.marking or MARKING, ctx.distribution or DISTRIBUTION
    said = "As reported to UNODC: " if ctx.owner_code is None else f"As reported by {ctx.owner_code} in IDS form: "
    get = [pos.get(c, -1) for c in COLUMNS]
    place_ids: dict[str, str] = {}

    def pid(code: str) -> str:
        return place_ids.get(code) or place_ids.setdefault(code, place_id(code))

    def row_fn(row: int, cells: list[Any], builder: ChunkBuilder) -> None:
        v = [text(cells[i]) if 0 <= i < len(cells) else "" for i in get]
        (
            _region,
            _subregion,
            raw_country,
            admin,
            place,
            raw_date,
            raw_drug,
            raw_amount,
            raw_unit,
            hiding,
            installation,
            transport,
            producing,
            departure,
            destination,
            routing,
        ) = v
        errors: list[Issue] = []
        warnings: list[Issue] = []

        def issue(column: str, value: str, reason: str, severity: str = WARNING) -> None:
            (errors if severity == ERROR else warnings).append(Issue(row, column, value, reason, severity))

        notes: list[str] = []
        ctry = None
        if not raw_country:
            issue("COUNTRY", "", "missing: every IDS record needs the reporting country", ERROR)
        else:
            with contextlib.suppress(V.BadValue):
                ctry = country(raw_country)
            if ctry is None:
                issue("COUNTRY", raw_country, "country not recognised", ERROR)
        occurred = None
        try:
            occurred = parse_date(raw_date)
            if occurred is None:
                issue("SEIZURE_DATE", "", "no date; imported without one")
        except V.BadValue as exc:
            issue("SEIZURE_DATE", raw_date, exc.reason, ERROR)
        if not raw_drug:
            issue("DRUG_NAME", "", "missing", ERROR)
        drug = drug_c(raw_drug) if raw_drug else None
        if raw_drug and drug is None:
            drug = "other"
            issue("DRUG_NAME", raw_drug, "drug name not in narcotrack's vocabulary; recorded as 'other'")
        amount = None
        try:
            amount = parse_number(raw_amount)
            if amount < 0:
                issue("AMOUNT", raw_amount, "negative", ERROR)
            elif amount == 0:
                issue("AMOUNT", raw_amount, "amount is zero")
        except V.BadValue as exc:
            issue("AMOUNT", raw_amount, exc.reason, ERROR)
        unit = unit_c(raw_unit) if raw_unit else None
        if unit is None or unit == "other":
            unit = "other"
            issue(
                "DRUG_UNIT",
                raw_unit,
                "unit not stated or not understood; recorded as 'other', no mass"
                if raw_unit
                else "no unit; recorded as 'other', no mass",
            )
        if errors or ctry is None or amount is None or drug is None:
            builder.chunk.issues.extend(errors)
            builder.chunk.issues.extend(warnings)
            builder.chunk.rows_rejected += 1
            return
        # Where: Cambodian rows resolve to the gazetteer where they can, foreign ones keep their text.
        prov = dist = None
        location = ctry
        if ctry == "KH":
            prov = V.province_code(admin) or V.province_code(place)
            if prov is None:
                issue(
                    "ADMINISTRATIVE_DIVISION",
                    admin or place,
                    "Cambodian province not recognised; place kept as text",
                )
            else:
                location = prov
                dist = resolve_district(place, prov) if place else None
                location = dist or prov
        if len(place) > 400:
            issue("PLACE", place[:60] + "...", "longer than 400 characters; shortened")
            place = place[:400]
        if len(admin) > 200:
            issue("ADMINISTRATIVE_DIVISION", admin[:60] + "...", "longer than 200 characters; shortened")
            admin = admin[:200]
        kind = kind_c(installation) if installation else None
        if installation and kind is None:
            issue(
                "INSTALLATION",
                installation,
                "installation not in narcotrack's vocabulary; kept in the narrative",
            )
            notes.append(f"installation: {installation}")
        concealment = conceal_c(hiding) if hiding else None
        if hiding and concealment is None:
            issue(
                "HIDING_PLACE", hiding, "hiding place not in narcotrack's vocabulary; kept in the narrative"
            )
            notes.append(f"hiding place: {hiding}")
        mode = transport_c(transport) if transport else None
        if transport and mode is None:
            issue("TRANSPORT", transport, "transport not in narcotrack's vocabulary; kept in the narrative")
            notes.append(f"transport: {transport}")
        route = []
        for column, raw in (
            ("PRODUCING_COUNTRY", producing),
            ("DEPARTURE_COUNTRY", departure),
            ("DESTINATION_COUNTRY", destination),
        ):
            try:
                route.append(country(raw))
            except V.BadValue:
                route.append(None)
                issue(column, raw, "country not recognised; kept in the narrative")
                notes.append(f"{column.lower().replace('_', ' ')}: {raw}")
        route_code = ROUTING.get(norm(routing)) if routing else None
        if routing and route_code is None:
            issue("ROUTING", routing, "routing not understood; kept in the narrative")
            notes.append(f"routing: {routing}")
        if warnings:
            builder.chunk.issues.extend(warnings)
            builder.chunk.rows_warned += 1
        narrative = (said + "; ".join(notes)) if notes else ""
        ref = hashlib.blake2b("\x1f".join(v).encode(), digest_size=12).hexdigest()
        incident_id = new_id()
        incident = (
            incident_id,
            occurred,
            pid(location),
            prov,
            dist,
            ctry,
            place,
            admin,
            kind,
            org_id,
            None,
            narrative,
            SOURCE,
            ref,
            batch,
            None,
            stamp,
            stamp,
            1,
            marking,
            distribution,
            org_id,
            None,
        )
        seizure = (
            new_id(),
            incident_id,
            drug,
            raw_drug[:200],
            amount,
            unit,
            raw_unit[:60],
            mass_kg(amount, unit, drug),
            None,
            concealment,
            mode,
            "",
            route[0],
            route[1],
            "",
            route[2],
            route_code,
            None,
            stamp,
            stamp,
            1,
        )
        builder.add(row, ref, incident, ALL_BITS, seizure, V.place_key(place, admin))

    return row_fn
