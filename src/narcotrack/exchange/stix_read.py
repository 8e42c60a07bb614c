"""STIX 2.1 objects back to narcotrack records: the inverse of ``stix_map``, checked on the way.

Each reader takes one object (plain JSON data) and returns the columns of the record it describes, or
the problems that stop it. Only objects carrying narcotrack's extension are records; anything else a
partner sends (indicators, reports, their own vocabularies) is counted and left alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from narcotrack.domain.models import SeizureIn
from narcotrack.exchange.extension import EXTENSION_ID, extension_errors
from narcotrack.exchange.markings import marking_of

KINDS = ("organization", "location", "individual", "grouping", "incident")


@dataclass
class Read:
    """One object read: its kind, its record's columns and the parts that hang off it."""

    kind: str
    stix_id: str
    modified: str
    fields: dict[str, Any]
    parts: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (property, reason)


def kind_of(obj: dict[str, Any]) -> str | None:
    """Which narcotrack record an object is, or None when it is not one of ours."""
    if EXTENSION_ID not in (obj.get("extensions") or {}):
        return None
    if obj.get("type") == "identity":
        return "individual" if obj.get("identity_class") == "individual" else "organization"
    return obj.get("type") if obj.get("type") in ("location", "grouping", "incident") else None


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def read(obj: dict[str, Any]) -> Read:
    """Read one of our objects (``kind_of(obj)`` is not None); problems are listed, not raised."""
    kind = kind_of(obj)
    assert kind is not None
    ext = dict(obj["extensions"][EXTENSION_ID])
    out = Read(kind=kind, stix_id=obj["id"], modified=obj.get("modified") or obj.get("created") or "", fields={})
    schema_kind = "individual" if kind == "individual" else kind
    for message in extension_errors(schema_kind, ext):
        out.problems.append((f"extensions.{message.split(':', 1)[0]}", message))
    if out.problems:
        return out
    try:
        stamps = {"created_at": parse_time(obj["created"]), "updated_at": parse_time(out.modified)}
    except (KeyError, ValueError):
        out.problems.append(("created", f"not a STIX timestamp: {obj.get('created')!r}"))
        return out
    if kind == "organization":
        out.fields = {"code": ext["code"], "name_en": obj.get("name") or ext["code"], "name_km": ext.get("name_km", ""),
                      "kind": ext["kind"], "country": ext["country"], **stamps}
        out.parts = {"parent": ext.get("parent")}
        return out
    if kind == "location":
        out.fields = {"code": ext["code"], "level": ext["level"], "name_en": obj.get("name") or ext["code"],
                      "name_km": ext.get("name_km", ""), "country": obj.get("country") or "",
                      "kind": ext.get("kind"), "lat": obj.get("latitude"), "lon": obj.get("longitude"), **stamps}
        out.parts = {"parent": ext.get("parent")}
        return out
    sharing = _sharing(obj, ext, out)
    out.parts["owner_ref"] = obj.get("created_by_ref")
    if not out.parts["owner_ref"]:
        out.problems.append(("created_by_ref", "names no owner organisation"))
    if kind == "individual":
        out.fields = {"sex": ext.get("sex", "X"), "nationality": ext.get("nationality"),
                      "birth_year": ext.get("birth_year"), **sharing, **stamps}
        if ext["identity"] == "pseudonym":
            out.parts["pseudonym"] = obj.get("name")
        if ext["identity"] == "full":
            out.parts["identity"] = {
                "name_km": ext.get("name_km", ""), "name_latin": ext.get("name_latin", ""),
                "aliases": list(ext.get("aliases", [])), "date_of_birth": _date(ext.get("date_of_birth")),
                "age_reported": ext.get("age_reported"), "id_numbers": list(ext.get("id_numbers", []))}
        return out
    if kind == "grouping":
        out.fields = {"name": obj.get("name") or ext.get("code") or obj["id"], "code": ext.get("code"),
                      "kind": ext["kind"], "start_date": _date(ext["start_date"]),
                      "end_date": _date(ext.get("end_date")), "outcomes": ext.get("outcomes", ""), **sharing, **stamps}
        out.parts.update(lead=ext["lead_org"], participants=[(p["org"], p["role"]) for p in ext.get("participants", [])])
        return out
    out.fields = {
        "occurred_on": _date(ext.get("occurred_on")), "province_code": ext.get("province_code"),
        "district_code": ext.get("district_code"), "country": ext.get("country"),
        "place_text": ext.get("place_text", ""), "admin_division_text": ext.get("admin_division_text", ""),
        "place_kind": ext.get("place_kind"), "narrative": obj.get("description", ""),
        "source": ext.get("source") or "partner_feed", "source_ref": ext.get("source_ref"), **sharing, **stamps}
    out.parts.update(reporting=ext["reporting_org"], place_code=ext.get("place_code"),
                     operation_ref=ext.get("operation_ref"), seizures=_seizures(ext, out),
                     arrests=[{"person_ref": a.get("person_ref"), "role": a["role"], "charges": list(a.get("charges", [])),
                               "outcome": a.get("outcome"), "age_at_arrest": a.get("age_at_arrest")}
                              for a in ext.get("arrests", [])])
    return out


def _sharing(obj: dict[str, Any], ext: dict[str, Any], out: Read) -> dict[str, Any]:
    marking = marking_of(obj.get("object_marking_refs"))
    if marking is None:
        out.problems.append(("object_marking_refs", "carries no TLP marking, so who may see it is unknown"))
    out.parts["sharing_group"] = ext.get("sharing_group")
    return {"marking": marking or "AMBER", "distribution": ext["distribution"]}


def _seizures(ext: dict[str, Any], out: Read) -> list[dict[str, Any]]:
    rows = []
    for i, s in enumerate(ext.get("seizures", [])):
        try:
            SeizureIn.model_validate({k: s[k] for k in SeizureIn.model_fields if k in s})
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(x) for x in err["loc"])
                out.problems.append((f"seizures[{i}].{where}", err["msg"]))
            continue
        row = {k: s.get(k) for k in ("drug", "quantity", "unit", "mass_kg", "purity_pct", "concealment",
                                      "transport_mode", "producing_country", "origin_country",
                                      "destination_country", "routing")}
        row.update(drug_reported=s.get("drug_reported", ""), unit_reported=s.get("unit_reported", ""),
                   packaging_marking=s.get("packaging_marking", ""),
                   transit_countries=" ".join(s.get("transit_countries", [])))
        rows.append(row)
    return rows
