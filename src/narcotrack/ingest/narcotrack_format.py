"""Validation of narcotrack's own import template: one row per seizure; rows sharing a case number form
one incident (the columns are in ``columns``).

Coded columns accept any alias of their vocabulary; an unknown value is an error, because the officer who
filled the sheet can fix it and the allowed values are listed in the template.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from narcotrack.domain.units import mass_kg
from narcotrack.domain.vocab import norm
from narcotrack.errors import ImportRejected
from narcotrack.ingest import values as V
from narcotrack.ingest.columns import BY_KEY, COLUMNS, REQUIRED, column_key
from narcotrack.ingest.grouping import ChunkBuilder
from narcotrack.ingest.readers import Table
from narcotrack.ingest.records import BIT, Chunk, Context, IdMaker
from narcotrack.ingest.report import ERROR, WARNING, ImportReport, Issue
from narcotrack.store.seed import place_id

SOURCE = "import"
MAX_REF = 80
KEY_CACHE_MAX = 50_000


def map_header(header: list[str], report: ImportReport, *, org_given: bool) -> dict[str, int]:
    """Column key -> position; unknown columns are warnings, missing required ones reject the file."""
    positions: dict[str, int] = {}
    problems: list[Issue] = []
    for i, cell in enumerate(header):
        if not cell:
            continue
        key = column_key(cell)
        if key is None:
            report.add(Issue(1, cell, cell, "column not recognised; ignored", WARNING))
        elif key in positions:
            problems.append(
                Issue(1, cell, cell, "column appears twice", ERROR, f"also column {positions[key] + 1}")
            )
        else:
            positions[key] = i
    need = list(REQUIRED) + ([] if org_given else ["reporting_org"])
    for key in need:
        if key not in positions:
            problems.append(
                Issue(
                    1,
                    BY_KEY[key].header,
                    "",
                    "required column missing",
                    ERROR,
                    "give the reporting organisation with --org" if key == "reporting_org" else "",
                )
            )
    if problems:
        report.extend(problems)
        names = ", ".join(repr(p.column) for p in problems)
        raise ImportRejected(
            f"{report.file_name}: the header row is not usable ({names}); nothing was imported", report
        )
    return positions


def columns_for_messages(header: list[str], positions: dict[str, int]) -> dict[str, str]:
    """Incident field -> the header text the file uses, so conflicts name the user's own column."""

    def name(key: str) -> str:
        return header[positions[key]] if key in positions else BY_KEY[key].header

    return {
        "occurred_on": name("date"),
        "place_id": name("province"),
        "place_text": name("place"),
        "place_kind": name("place_kind"),
        "narrative": name("narrative"),
        "marking": name("marking"),
        "distribution": name("distribution"),
    }


def validate(table: Table, positions: dict[str, int], ctx: Context) -> Iterator[Chunk]:
    """Validate every row of ``table``; yields chunks of grouped rows and the issues found."""
    header = table.header
    builder = ChunkBuilder(
        merge=True, columns=columns_for_messages(header, positions), required=("occurred_on", "place_id")
    )
    row_fn = _row_validator(header, positions, ctx, IdMaker(), typed=table.kind == "xlsx")
    chunk_rows = ctx.chunk_rows
    for row_no, cells in table.rows:
        row_fn(row_no, cells, builder)
        if builder.chunk.rows_read >= chunk_rows:
            builder.chunk.bytes_done = table.bytes_done()
            yield builder.take()
    builder.chunk.bytes_done = table.bytes_done()
    yield builder.take()


_MISSING = object()


def _row_validator(
    header: list[str], pos: dict[str, int], ctx: Context, new_id: IdMaker, *, typed: bool
) -> Callable[[int, list[Any], ChunkBuilder], None]:
    """A closure that validates one row, written for speed: every lookup is a local name or a cache hit.

    Cells are trimmed once; a column the file lacks reads from an always-empty slot at index ``width``.
    ``typed`` (XLSX) keeps the raw cell for dates and numbers, which Excel gives as real values.
    """
    drug_c, unit_c = V.coder("drugs"), V.coder("units")
    kind_c, conceal_c, transport_c = V.coder("place_kinds"), V.coder("concealment"), V.coder("transport")
    marking_c, dist_c = V.coder("markings"), V.coder("distributions")
    text, parse_date, parse_number = V.text, V.parse_date, V.parse_number
    country, countries, cambodian_place, BadValue = V.country, V.countries, V.cambodian_place, V.BadValue
    today = V.today_iso()
    width = len(header)
    ix = {k: pos.get(k, width) for k in BY_KEY}
    # fmt: off
    (i_ref, i_date, i_country, i_prov, i_dist, i_comm, i_place, i_kind, i_org, i_drug, i_qty, i_unit, i_purity,
     i_conceal, i_transport, i_pack, i_prod, i_orig, i_transit, i_dest, i_narr, i_mark, i_distr) = (
        ix[c.key] for c in COLUMNS)
    # fmt: on
    col = {k: header[i] for k, i in pos.items()}
    orgs, default_org = ctx.orgs, ctx.org_code
    stamp, batch = ctx.stamp, ctx.batch_id
    place_ids: dict[str, str] = {}
    org_cache: dict[str, Any] = {}
    key_cache: dict[str, str] = {}
    b_date, b_place, b_text, b_kind = (
        BIT["occurred_on"],
        BIT["place_id"],
        BIT["place_text"],
        BIT["place_kind"],
    )
    b_narr, b_mark, b_dist = BIT["narrative"], BIT["marking"], BIT["distribution"]
    blank = [""] * (width + 1)

    def bad(errors: list[Issue], row: int, key: str, value: Any, reason: str, detail: str = "") -> None:
        errors.append(Issue(row, col.get(key, BY_KEY[key].header), text(value), reason, ERROR, detail))

    def unknown(errors: list[Issue], row: int, key: str, value: str) -> None:
        bad(errors, row, key, value, f"unknown {BY_KEY[key].en.lower()}", "see the 'Allowed values' sheet")

    def org_of(raw: str) -> Any:
        found = org_cache.get(raw, _MISSING)
        if found is _MISSING:
            name = raw or default_org
            found = org_cache[raw] = orgs.get(norm(name)) if name else None
        return found

    def row_fn(row: int, cells: list[Any], builder: ChunkBuilder) -> None:
        chunk = builder.chunk
        chunk.rows_read += 1
        errors: list[Issue] = []
        warned = False
        n = len(cells)
        if n > width:
            if any(text(c) for c in cells[width:]):
                chunk.issues.append(
                    Issue(
                        row,
                        f"column {width + 1}",
                        text(cells[width]),
                        "value beyond the last named column (a stray separator?)",
                        WARNING,
                    )
                )
                warned = True
            cells = cells[:width]
            n = width
        v = [text(c) for c in cells] if typed else [c.strip() for c in cells]
        v += blank[n:]
        ref = v[i_ref]
        if not ref:
            bad(errors, row, "incident_ref", "", "missing")
        elif len(ref) > MAX_REF:
            bad(errors, row, "incident_ref", ref, f"longer than {MAX_REF} characters")
        raw_org = v[i_org]
        org = org_of(raw_org)
        if org is None:
            bad(
                errors,
                row,
                "reporting_org",
                raw_org,
                "unknown organisation code" if raw_org else "missing",
                "" if raw_org else "give it in the file or at import (--org)",
            )
        mask = 0
        occurred = None
        raw: Any = cells[i_date] if typed and i_date < n else v[i_date]
        try:
            occurred = parse_date(raw)
        except BadValue as exc:
            bad(errors, row, "date", raw, exc.reason)
        if occurred is not None:
            mask = b_date
            if occurred > today:
                bad(errors, row, "date", raw, "date in the future")
        # Location: Cambodia unless a country is given.
        loc: tuple[Any, ...] = (None, None, None, None)
        ctry: str | None = "KH"
        if v[i_country]:
            try:
                ctry = country(v[i_country]) or "KH"
            except BadValue as exc:
                bad(errors, row, "country", v[i_country], exc.reason)
                ctry = None
        prov, dist, comm = v[i_prov], v[i_dist], v[i_comm]
        if ctry == "KH":
            if prov or dist or comm:
                try:
                    code, pcode, dcode = cambodian_place(prov, dist, comm)
                    pid = place_ids.get(code) or place_ids.setdefault(code, place_id(code))
                    loc = (pid, pcode, dcode, "KH")
                    mask |= b_place
                except V.PlaceError as exc:
                    bad(
                        errors,
                        row,
                        exc.level,
                        {"province": prov, "district": dist, "commune": comm}[exc.level],
                        exc.reason,
                    )
        elif ctry is not None:
            if prov or dist or comm:
                bad(
                    errors,
                    row,
                    "province",
                    prov or dist or comm,
                    "a province, district or commune is only for places in Cambodia",
                    f"the country is {ctry}",
                )
            loc = (place_ids.get(ctry) or place_ids.setdefault(ctry, place_id(ctry)), None, None, ctry)
            mask |= b_place
        place_text = v[i_place] or None
        place_key = ""
        if place_text:
            mask |= b_text
            if len(place_text) > 400:
                bad(errors, row, "place", place_text[:60] + "...", "longer than 400 characters")
            place_key = key_cache.get(place_text) or ""
            if not place_key:
                if len(key_cache) > KEY_CACHE_MAX:  # free-text places are many: keep the cache bounded
                    key_cache.clear()
                place_key = key_cache[place_text] = norm(place_text)
        t = v[i_kind]
        kind = kind_c(t) if t else None
        if kind:
            mask |= b_kind
        elif t:
            unknown(errors, row, "place_kind", t)
        narrative = v[i_narr] or None
        if narrative:
            mask |= b_narr
        t = v[i_mark]
        marking = marking_c(t) if t else None
        if marking:
            mask |= b_mark
        elif t:
            unknown(errors, row, "marking", t)
        t = v[i_distr]
        distribution = dist_c(t) if t else None
        if distribution:
            mask |= b_dist
            if distribution == "group":
                bad(
                    errors,
                    row,
                    "distribution",
                    t,
                    "a sharing group cannot be set by import",
                    "choose owner, domestic or partners",
                )
        elif t:
            unknown(errors, row, "distribution", t)
        # The seizure.
        raw_drug, raw_unit = v[i_drug], v[i_unit]
        drug = drug_c(raw_drug) if raw_drug else None
        if drug is None:
            if raw_drug:
                unknown(errors, row, "drug", raw_drug)
            else:
                bad(errors, row, "drug", "", "missing")
        unit = unit_c(raw_unit) if raw_unit else None
        if unit is None:
            if raw_unit:
                unknown(errors, row, "unit", raw_unit)
            else:
                bad(errors, row, "unit", "", "missing")
        quantity = None
        raw = cells[i_qty] if typed and i_qty < n else v[i_qty]
        try:
            quantity = parse_number(raw)
            if quantity < 0:
                bad(errors, row, "quantity", raw, "negative")
            elif quantity == 0:
                chunk.issues.append(Issue(row, col["quantity"], text(raw), "quantity is zero", WARNING))
                warned = True
        except BadValue as exc:
            bad(errors, row, "quantity", raw, exc.reason)
        purity = None
        if v[i_purity]:
            raw = cells[i_purity] if typed and i_purity < n else v[i_purity].rstrip("%")
            try:
                purity = parse_number(raw)
                if not 0 <= purity <= 100:
                    bad(errors, row, "purity_pct", raw, "purity must be between 0 and 100")
            except BadValue as exc:
                bad(errors, row, "purity_pct", raw, exc.reason)
        t = v[i_conceal]
        concealment = conceal_c(t) if t else None
        if t and concealment is None:
            unknown(errors, row, "concealment", t)
        t = v[i_transport]
        transport = transport_c(t) if t else None
        if t and transport is None:
            unknown(errors, row, "transport", t)
        packaging = v[i_pack]
        if len(packaging) > 200:
            bad(errors, row, "packaging_marking", packaging[:60] + "...", "longer than 200 characters")
        route: list[str | None] = [None, None, None]
        for j, (key, i) in enumerate(
            (("producing_country", i_prod), ("origin_country", i_orig), ("destination_country", i_dest))
        ):
            if v[i]:
                try:
                    route[j] = country(v[i])
                except BadValue as exc:
                    bad(errors, row, key, v[i], exc.reason)
        transit = ""
        if v[i_transit]:
            try:
                transit = countries(v[i_transit])
            except BadValue as exc:
                bad(errors, row, "transit_countries", v[i_transit], exc.reason)
        if errors or org is None or drug is None or unit is None or quantity is None:
            chunk.issues.extend(errors)
            chunk.rows_rejected += 1
            return
        if warned:
            chunk.rows_warned += 1
        org_id, org_code = org
        incident_id = new_id()
        source_ref = f"{org_code}:{ref}"
        incident = (
            incident_id,
            occurred,
            *loc,
            place_text,
            "",
            kind,
            org_id,
            None,
            narrative,
            SOURCE,
            source_ref,
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
            quantity,
            unit,
            raw_unit[:60],
            mass_kg(quantity, unit, drug),
            purity,
            concealment,
            transport,
            packaging,
            route[0],
            route[1],
            transit,
            route[2],
            None,
            None,
            stamp,
            stamp,
            1,
        )
        builder.add(row, source_ref, incident, mask, seizure, place_key)

    return row_fn
