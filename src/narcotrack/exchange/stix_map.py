"""narcotrack records as STIX 2.1 objects, one builder per record kind.

Builders take plain rows (mappings of column → value, as the store returns them) and the STIX ids of
what they refer to, and return ``stix2`` objects, so the library checks every property as it is built.
They decide nothing about access: the caller (``stix_export``) passes only what the reader may see and
says how a person's identity reaches them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import stix2

from narcotrack.exchange.extension import EXTENSION_ID
from narcotrack.exchange.ids import stix_id
from narcotrack.exchange.markings import TLP2_IDS

Row = Mapping[Any, Any]  # a store row (RowMapping) or a plain dict

SEIZURE_FIELDS = ("drug", "drug_reported", "quantity", "unit", "unit_reported", "mass_kg", "purity_pct",
                  "concealment", "transport_mode", "packaging_marking", "producing_country", "origin_country",
                  "transit_countries", "destination_country", "routing")
IDENTITY_FIELDS = ("name_km", "name_latin", "aliases", "date_of_birth", "age_reported", "id_numbers")


def timestamp(value: dt.datetime | None) -> str:
    """STIX timestamp (UTC, milliseconds); SQLite returns naive datetimes, which are UTC."""
    value = value or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _clean(value: Any) -> Any:
    """STIX forbids null properties and empty lists, so absent values are left out (and read back as such)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None and v != [] and v != ""}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _ext(props: dict[str, Any]) -> dict[str, Any]:
    return {EXTENSION_ID: {"extension_type": "property-extension", **_clean(props)}}


def org_stix_id(code: str) -> str:
    # By code, not by row id: every node holds the same organisations under their own row ids.
    return stix_id("identity", "organisation", code)


def place_stix_id(code: str) -> str:
    return stix_id("location", "place", code)


def organisation(org: Row, parent_code: str | None) -> stix2.Identity:
    return stix2.Identity(
        id=org_stix_id(org["code"]),
        created=timestamp(org["created_at"]),
        modified=timestamp(org["updated_at"]),
        name=org["name_en"],
        identity_class="organization",
        external_references=[{"source_name": "narcotrack", "external_id": org["code"]}],
        extensions=_ext({"code": org["code"], "name_km": org["name_km"], "kind": org["kind"],
                         "country": org["country"], "parent": parent_code}),
    )


def place(row: Row, parent_code: str | None) -> stix2.Location:
    coords = {"latitude": row["lat"], "longitude": row["lon"]} if row["lat"] is not None and row["lon"] is not None else {}
    return stix2.Location(
        id=place_stix_id(row["code"]),
        created=timestamp(row["created_at"]),
        modified=timestamp(row["updated_at"]),
        name=row["name_en"],
        country=row["country"],
        **({"administrative_area": parent_code} if parent_code else {}),
        **coords,
        external_references=[{"source_name": "narcotrack-gazetteer", "external_id": row["code"]}],
        extensions=_ext({"code": row["code"], "level": row["level"], "parent": parent_code,
                         "name_km": row["name_km"], "kind": row["kind"]}),
    )


def _sharing(row: Row, group_names: Mapping[str, str]) -> dict[str, Any]:
    group = row["sharing_group_id"]
    return {"distribution": row["distribution"], "sharing_group": group_names.get(group) if group else None}


def _canonical(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parts in an order fixed by their content, not by row ids, which differ from node to node."""
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True, default=str))


def seizure_props(s: Row) -> dict[str, Any]:
    out = {k: s[k] for k in SEIZURE_FIELDS}
    out["transit_countries"] = s["transit_countries"].split() if s["transit_countries"] else []
    return out


def incident(row: Row, *, sid: str, owner_ref: str, reporting_code: str, seizures: Sequence[Row],
             arrests: Sequence[tuple[Row, str | None]], place_code: str | None, operation_ref: str | None,
             group_names: Mapping[str, str]) -> stix2.Incident:
    where = row["province_code"] or row["country"] or "unknown place"
    drugs = sorted({s["drug"] for s in seizures})
    name = f"{', '.join(drugs) or 'arrest'} — {where} — {row['occurred_on'] or 'undated'}"
    return stix2.Incident(
        id=sid,
        created=timestamp(row["created_at"]),
        modified=timestamp(row["updated_at"]),
        created_by_ref=owner_ref,
        name=name,
        **({"description": row["narrative"]} if row["narrative"] else {}),
        object_marking_refs=[TLP2_IDS[row["marking"]]],
        extensions=_ext({
            "occurred_on": _date(row["occurred_on"]), "place_code": place_code,
            "province_code": row["province_code"], "district_code": row["district_code"],
            "country": row["country"], "place_text": row["place_text"],
            "admin_division_text": row["admin_division_text"], "place_kind": row["place_kind"],
            "reporting_org": reporting_code, "operation_ref": operation_ref, "source": row["source"],
            "source_ref": row["source_ref"], **_sharing(row, group_names),
            "seizures": _canonical([seizure_props(s) for s in seizures]),
            "arrests": _canonical([{"person_ref": ref, "role": a["role"], "charges": list(a["charges"] or []),
                                    "outcome": a["outcome"], "age_at_arrest": a["age_at_arrest"]}
                                   for a, ref in arrests]),
        }),
    )


def person(row: Row, *, sid: str, owner_ref: str, identity: Row | None, pseudonym: str | None,
           group_names: Mapping[str, str]) -> stix2.Identity:
    """A suspect as an individual identity: named in full only when ``identity`` is given; otherwise the
    name is the reader's pseudonym and no identity field is sent."""
    props: dict[str, Any] = {"sex": row["sex"], "nationality": row["nationality"], "birth_year": row["birth_year"],
                             **_sharing(row, group_names)}
    if identity is not None:
        props["identity"] = "full"
        props.update({k: identity[k] for k in IDENTITY_FIELDS})
        props["aliases"] = list(props["aliases"] or [])
        props["id_numbers"] = list(props["id_numbers"] or [])
        props["date_of_birth"] = _date(props["date_of_birth"])
        name = identity["name_latin"] or identity["name_km"] or "(unnamed)"
    else:
        props["identity"] = "pseudonym" if pseudonym else "none"
        name = pseudonym or "(withheld)"
    return stix2.Identity(
        id=sid, created=timestamp(row["created_at"]), modified=timestamp(row["updated_at"]),
        created_by_ref=owner_ref, name=name, identity_class="individual",
        object_marking_refs=[TLP2_IDS[row["marking"]]], extensions=_ext(props),
    )


def operation(row: Row, *, sid: str, owner_ref: str, lead_code: str, participants: Sequence[tuple[str, str]],
              incident_refs: Sequence[str], group_names: Mapping[str, str]) -> stix2.Grouping:
    refs = sorted(incident_refs) + sorted(org_stix_id(code) for code, _ in participants) or [org_stix_id(lead_code)]
    return stix2.Grouping(
        id=sid, created=timestamp(row["created_at"]), modified=timestamp(row["updated_at"]),
        created_by_ref=owner_ref, name=row["name"], context="unspecified",
        **({"description": row["outcomes"]} if row["outcomes"] else {}),
        object_refs=list(dict.fromkeys(refs)),
        object_marking_refs=[TLP2_IDS[row["marking"]]],
        extensions=_ext({
            "code": row["code"], "kind": row["kind"], "lead_org": lead_code,
            "participants": [{"org": code, "role": role} for code, role in sorted(participants)],
            "start_date": _date(row["start_date"]), "end_date": _date(row["end_date"]),
            "outcomes": row["outcomes"], **_sharing(row, group_names),
        }),
    )


def relationship(source: str, kind: str, target: str, *, modified: str, marking: str,
                 owner_ref: str) -> stix2.Relationship:
    return stix2.Relationship(
        id=stix_id("relationship", source, kind, target), created=modified, modified=modified,
        created_by_ref=owner_ref, source_ref=source, relationship_type=kind, target_ref=target,
        object_marking_refs=[TLP2_IDS[marking]],
    )
