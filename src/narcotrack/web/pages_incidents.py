"""Incident pages for people: the filtered list, one incident, the data-entry form, and place search.

Routes read through store/ and access/ and render; recording goes through access.recording, showing
persons through api_persons.persons_as_shown (identity by policy, every identity read audited). The list
and the form work as plain HTML forms; htmx only makes them quicker (swapping the results table, fetching
place matches as one types, adding seizure and arrest rows in place).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pycountry
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, QueryParams

from narcotrack.access.policy import (
    Principal,
    can_see,
    check_may_record,
    get_visible,
    may_set_distribution,
    visible_filter,
)
from narcotrack.access.recording import record_incident_with_release
from narcotrack.domain.models import IncidentIn
from narcotrack.domain.places import (
    SEARCH_LEVELS,
    GazetteerPlace,
    country_name,
    place_by_code,
    place_path,
    search_places,
)
from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import InvalidInput, NarcotrackError
from narcotrack.store.provenance import provenance_of
from narcotrack.store.queries import IncidentFilters, list_incidents, seizures_of
from narcotrack.store.repo import get_incident, history
from narcotrack.store.schema import (
    Incident,
    Operation,
    Organisation,
    Person,
    Place,
    Seizure,
    SharingGroup,
    User,
)
from narcotrack.web.api_persons import persons_as_shown
from narcotrack.web.auth import Actor, check_csrf, client_address, require_actor

Render = Callable[..., HTMLResponse]
PAGE_SIZE = 50
MAX_ROWS = 100  # seizure or arrest rows one form may carry
TOP_FIELDS = (
    "occurred_on",
    "place",
    "place_q",
    "place_level",
    "place_text",
    "place_kind",
    "reporting_org",
    "operation_id",
    "narrative",
    "marking",
    "distribution",
    "sharing_group_id",
)
# What goes to IncidentIn as typed; the place fields become province/district/commune codes.
INCIDENT_FIELDS = frozenset(TOP_FIELDS) - {"place", "place_q", "place_level"}
SEIZURE_FIELDS = (
    "drug",
    "quantity",
    "unit",
    "concealment",
    "transport_mode",
    "origin_country",
    "destination_country",
)
ARREST_FIELDS = ("name_km", "name_latin", "sex", "nationality", "age", "role")
# Model-wide validation messages and the field each belongs next to.
_MODEL_ERRORS = (
    ("occurred_on", "occurred_on"),
    ("sharing group", "sharing_group_id"),
    ("at least one", "seizures"),
)


def N_(message: str) -> str:
    """Marks a message for the catalogue; templates translate it when they show it."""
    return message


def named(thing: Any, lang: str) -> str:
    """A vocabulary term's, place's or organisation's name in the page language (English if none)."""
    if thing is None:
        return ""
    km = getattr(thing, "name_km", "")
    return str(km if lang == "km" and km else thing.name_en)


@dataclass(frozen=True)
class Label:
    """Something with a name in both languages that the vocabularies or the gazetteer do not hold."""

    name_en: str
    name_km: str = ""


@dataclass
class FormState:
    """What the entry form shows: the user's input as typed, and the errors by field name."""

    values: dict[str, str]
    seizures: list[tuple[int, dict[str, str]]]
    arrests: list[tuple[int, dict[str, Any]]]
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)



def _is_htmx_swap(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )


def _place_choices(q: str, level: str | None, selected: str | None) -> list[tuple[GazetteerPlace, list[Any]]]:
    """The chosen place first (so a new search does not drop it), then the matches of ``q``."""
    found: list[GazetteerPlace] = []
    chosen = place_by_code(selected) if selected else None
    if chosen is not None:
        found.append(chosen)
    if q.strip():
        found += [p for p in search_places(q, level=level) if chosen is None or p.code != chosen.code]
    return [(p, place_path(p.code)[:-1]) for p in found]


def _level(value: str | None) -> str | None:
    if not value:
        return None
    if value not in SEARCH_LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(SEARCH_LEVELS)}")
    return value


class PlaceOut(BaseModel):
    code: str
    level: str
    name_en: str
    name_km: str
    parent_code: str | None


# --- the list -----------------------------------------------------------------------------------------


def _filters(qp: QueryParams) -> tuple[IncidentFilters, dict[str, Any], list[str]]:
    """Filters from the query string; values echo the form, errors say what was ignored and why."""
    errors: list[str] = []
    values: dict[str, Any] = {
        k: qp.get(k, "") for k in ("date_from", "date_to", "agency", "operation", "place_q", "place_level")
    }
    dates: dict[str, dt.date | None] = {}
    for key in ("date_from", "date_to"):
        try:
            dates[key] = dt.date.fromisoformat(values[key]) if values[key] else None
        except ValueError:
            dates[key] = None
            errors.append(N_("A date was not understood (use YYYY-MM-DD); it is ignored."))
    place = qp.get("place", "").strip()
    if not place and values["place_q"].strip():
        hits = search_places(values["place_q"], level=values["place_level"] or None, limit=1)
        place = hits[0].code if hits else ""
        if not hits:
            errors.append(N_("No place matches the search; the place filter is ignored."))
    if place and place_by_code(place) is None and not re.fullmatch(r"[A-Z]{2}", place):
        errors.append(N_("The place is not a known place code; it is ignored."))
        place = ""
    values.update(
        place=place,
        drug=[d for d in qp.getlist("drug") if d],
        marking=[m for m in qp.getlist("marking") if m],
    )
    filters = IncidentFilters(
        date_from=dates["date_from"],
        date_to=dates["date_to"],
        place=place or None,
        drug=values["drug"],
        agency=values["agency"] or None,
        operation_id=values["operation"] or None,
        marking=values["marking"],
    )
    return filters, values, errors


def _query(values: dict[str, Any]) -> str:
    """The effective filters as a query string (the resolved place code, not the search text)."""
    pairs: list[tuple[str, str]] = []
    for key in ("date_from", "date_to", "place", "agency", "operation"):
        if values.get(key):
            pairs.append((key, str(values[key])))
    pairs += [("drug", d) for d in values["drug"]] + [("marking", m) for m in values["marking"]]
    return urlencode(pairs)


def _places_of(session: Session, place_ids: Iterable[str | None]) -> dict[str, Place]:
    ids = sorted({i for i in place_ids if i})
    return {p.id: p for p in session.scalars(select(Place).where(Place.id.in_(ids)))} if ids else {}


def _where(incident: Incident, places: dict[str, Place]) -> list[Any]:
    """Where it happened, province first, as things with name_en/name_km."""
    place = places.get(incident.place_id or "")
    if place is not None and place.code.startswith("KH-"):
        return place_path(place.code) or [place]
    if place is not None:
        return [place]
    if incident.province_code:
        return place_path(incident.district_code or incident.province_code)
    return [Label(country_name(incident.country))] if incident.country else []


def _drugs(seizures: Sequence[Seizure]) -> tuple[list[Any], float | None]:
    terms = vocabularies().drugs.terms
    drugs = list(dict.fromkeys(terms.get(s.drug) or Label(s.drug) for s in seizures))
    masses = [s.mass_kg for s in seizures if s.mass_kg is not None]
    return drugs, (sum(masses) if masses else None)


def _choices(session: Session, p: Principal) -> dict[str, Any]:
    """Organisations, operations the user may see, and sharing groups the user's organisation is in."""
    orgs = list(session.scalars(select(Organisation).order_by(Organisation.code)))
    ops = list(
        session.scalars(
            select(Operation)
            .where(visible_filter(p, Operation))
            .order_by(Operation.start_date.desc())
            .limit(300)
        )
    )
    groups = list(
        session.scalars(
            select(SharingGroup)
            .where(or_(SharingGroup.id.in_(sorted(p.groups)), SharingGroup.owner_org_id == p.org_id))
            .order_by(SharingGroup.name)
        )
    )
    return {"orgs": orgs, "operations": ops, "groups": groups}


# --- the form -----------------------------------------------------------------------------------------


def _rows(
    form: FormData, prefix: str, names: Sequence[str], many: Sequence[str] = ()
) -> list[tuple[int, dict[str, Any]]]:
    indices = sorted(
        {int(m.group(1)) for key in form if (m := re.fullmatch(rf"{prefix}\.(\d{{1,3}})\.\w+", key))}
    )
    rows = []
    for i in indices[:MAX_ROWS]:
        row: dict[str, Any] = {n: str(form.get(f"{prefix}.{i}.{n}") or "").strip() for n in names}
        row.update({n: [str(v) for v in form.getlist(f"{prefix}.{i}.{n}") if v] for n in many})
        rows.append((i, row))
    return rows


def _read_form(form: FormData) -> FormState:
    return FormState(
        values={k: str(form.get(k) or "").strip() for k in TOP_FIELDS},
        seizures=_rows(form, "seizures", SEIZURE_FIELDS),
        arrests=_rows(form, "arrests", ARREST_FIELDS, many=("charges",)),
    )


def _filled(row: dict[str, Any]) -> dict[str, Any]:
    """Only what was given: a blank field is 'missing' to the model, so it says 'Field required'."""
    return {k: v for k, v in row.items() if v not in ("", [], None)}


def _build(state: FormState) -> tuple[dict[str, Any], list[int], list[int]]:
    """The IncidentIn input from the form, and the form row index of each seizure and arrest kept."""
    v = state.values
    data = _filled({k: v[k] for k in TOP_FIELDS if k in INCIDENT_FIELDS})
    chosen = place_by_code(v["place"]) if v["place"] else None
    if chosen is not None:
        for p in place_path(chosen.code):
            data[p.level] = p.code
    elif v["place"]:
        state.error("place", N_("This is not a place of the gazetteer; search again and pick one."))
    elif v["place_q"]:
        state.error("place", N_("Pick one of the places found (or search again)."))
    else:
        state.error("place", N_("Choose the province, district or commune where it happened."))
    sharing = {k: v[k] for k in ("marking", "distribution", "sharing_group_id") if v[k]}
    seizure_idx, seizures = [], []
    for i, row in state.seizures:
        if any(row.values()):
            seizure_idx.append(i)
            seizures.append(_filled(row))
    arrest_idx, arrests = [], []
    for i, row in state.arrests:
        if any(row.values()):
            arrest_idx.append(i)
            # A person arrested is shared as the incident is; the policy still decides who sees identity.
            person = _filled({k: row[k] for k in ("name_km", "name_latin", "sex", "nationality", "age")})
            arrests.append(
                _filled({"role": row["role"], "charges": row["charges"]}) | {"person": person | sharing}
            )
    return data | {"seizures": seizures, "arrests": arrests}, seizure_idx, arrest_idx


def _field_of(loc: Sequence[int | str], message: str, seizure_idx: list[int], arrest_idx: list[int]) -> str:
    """Form field name of a pydantic error location: seizures.0.quantity, arrests.1.name_latin, ..."""
    if not loc:
        return next((name for word, name in _MODEL_ERRORS if word in message), "")
    head = str(loc[0])
    if head in ("seizures", "arrests") and len(loc) > 1 and isinstance(loc[1], int):
        idx = (seizure_idx if head == "seizures" else arrest_idx)[loc[1]]
        rest = [str(x) for x in loc[2:] if x != "person"][:1]
        return ".".join([head, str(idx), *rest])
    return head


def _validate(state: FormState) -> IncidentIn | None:
    data, seizure_idx, arrest_idx = _build(state)
    try:
        incident = IncidentIn.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors():
            message = str(e["msg"]).removeprefix("Value error, ")
            state.error(_field_of(e["loc"], message, seizure_idx, arrest_idx), message)
        return None
    return None if state.errors else incident


def _blank_form(actor: Actor, session: Session) -> FormState:
    own = session.scalar(select(Organisation.code).where(Organisation.id == actor.principal.org_id)) or ""
    values = dict.fromkeys(TOP_FIELDS, "") | {
        "occurred_on": dt.date.today().isoformat(),
        "reporting_org": own,
        "marking": "AMBER",
        "distribution": "domestic",
    }
    return FormState(values=values, seizures=[(0, dict.fromkeys(SEIZURE_FIELDS, ""))], arrests=[])


def _may_write(p: Principal) -> None:
    # The plainest recording there is (own organisation, owner only): refused exactly when the role may
    # not record at all. The policy module decides; this page only asks.
    check_may_record(p, p.org_id, "owner")


def router(render: Render) -> APIRouter:
    r = APIRouter()
    v = vocabularies()

    def page(request: Request, name: str, ctx: dict[str, Any], status_code: int = 200) -> HTMLResponse:
        return render(
            request, name, {"v": v, "named": named, "levels": SEARCH_LEVELS, **ctx}, status_code=status_code
        )

    @r.get("/places/search", response_class=HTMLResponse, summary="Place matches (HTML fragment)")
    def place_search(request: Request) -> HTMLResponse:
        """Provinces, districts and communes matching ``q`` in Khmer or English, as radio options for htmx."""
        qp = request.query_params
        q, level = qp.get("q") or qp.get("place_q") or "", _level(qp.get("level") or qp.get("place_level"))
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            require_actor(request, session)
            session.commit()
        return page(
            request,
            "place_options.html",
            {"q": q, "selected": qp.get("place", ""), "places": _place_choices(q, level, qp.get("place"))},
        )

    @r.get("/api/v1/places", summary="Search places", response_model=list[PlaceOut], tags=["places"])
    def places_api(request: Request, q: str = "", level: str | None = None) -> list[PlaceOut]:
        """Up to 20 provinces, districts and communes whose Khmer or English name (or a spelling) matches."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            require_actor(request, session)
            session.commit()
        return [
            PlaceOut(
                code=p.code, level=p.level, name_en=p.name_en, name_km=p.name_km, parent_code=p.parent_code
            )
            for p in search_places(q, level=_level(level))
        ]

    @r.get("/incidents", response_class=HTMLResponse, summary="Incident list page")
    def incidents(request: Request) -> HTMLResponse:
        """Incidents the user may see, newest first, 50 a page, with filters and export links."""
        filters, values, errors = _filters(request.query_params)
        cursor = request.query_params.get("cursor") or None
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            result = list_incidents(
                session,
                functools.partial(visible_filter, actor.principal),
                filters,
                cursor=cursor,
                limit=PAGE_SIZE,
            )
            seizures = seizures_of(session, [i.id for i in result.rows])
            places = _places_of(session, (i.place_id for i in result.rows))
            choices = _choices(session, actor.principal)
            session.commit()
        orgs = {o.id: o for o in choices["orgs"]}
        rows = [
            {
                "incident": i,
                "where": _where(i, places),
                "org": orgs.get(i.reporting_org_id),
                "drugs": _drugs(seizures[i.id]),
            }
            for i in result.rows
        ]
        query = _query(values)
        place = values["place"]
        where = (
            place_path(place) if place.startswith("KH-") else [Label(country_name(place))] if place else []
        )
        ctx = {
            "actor": actor,
            "rows": rows,
            "values": values,
            "errors": errors,
            "query": query,
            "cursor": cursor,
            "next_cursor": result.next_cursor,
            **choices,
            "places": _place_choices("", None, values["place"] or None),
            "selected": values["place"],
            "place_filter": where,
        }
        return page(request, "incidents_table.html" if _is_htmx_swap(request) else "incidents.html", ctx)

    @r.get("/incidents/new", response_class=HTMLResponse, summary="New incident form")
    def new_form(request: Request) -> HTMLResponse:
        """The data-entry form: when, where, who reported, sharing, seizures and arrests."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            _may_write(actor.principal)
            state = _blank_form(actor, session)
            choices = _choices(session, actor.principal)
            session.commit()
        return _form_page(request, actor, state, choices)

    @r.post("/incidents/new", summary="Record an incident from the form")
    async def new_submit(request: Request) -> Response:
        """Validate; on errors show the form again with the input kept, else record and go to the incident."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            _may_write(actor.principal)
            form = await request.form()
            state = _read_form(form)
            choices = _choices(session, actor.principal)
            status, incident_id, proposed = 200, None, False
            add = str(form.get("add") or "")
            if add in ("seizure", "arrest"):  # the "add" buttons without JavaScript: one more row, no save
                rows: list[Any] = state.seizures if add == "seizure" else state.arrests
                names = SEIZURE_FIELDS if add == "seizure" else (*ARREST_FIELDS, "charges")
                rows.append((max((i for i, _row in rows), default=-1) + 1, dict.fromkeys(names, "")))
            elif (data := _validate(state)) is None:
                status = 422
            else:
                try:
                    done = record_incident_with_release(
                        session, actor.principal, data, address=client_address(request), source="form"
                    )
                    incident_id, proposed = done.record_id, done.release_request_id is not None
                except NarcotrackError as exc:
                    session.rollback()  # expires what was loaded: the page below reloads it in this session
                    state.error("", str(exc))
                    status = exc.http_status
            session.commit()
            if incident_id is None:
                return _form_page(request, actor, state, choices, status_code=status)
        # wider sharing than the role may set alone waits for a supervisor: the incident page says so
        suffix = "?release_requested=1" if proposed else ""
        return RedirectResponse(f"/incidents/{incident_id}{suffix}", status_code=303)

    @r.get(
        "/incidents/new/seizure-row", response_class=HTMLResponse, summary="One more seizure row (fragment)"
    )
    def seizure_row(request: Request, index: int = 0) -> HTMLResponse:
        """A blank seizure row for the form (htmx), and the "add seizure" button for the row after it."""
        return _row_fragment(request, "incident_seizure_row.html", index, dict.fromkeys(SEIZURE_FIELDS, ""))

    @r.get("/incidents/new/arrest-row", response_class=HTMLResponse, summary="One more arrest row (fragment)")
    def arrest_row(request: Request, index: int = 0) -> HTMLResponse:
        """A blank arrest row for the form (htmx), and the "add arrest" button for the row after it."""
        return _row_fragment(
            request, "incident_arrest_row.html", index, dict.fromkeys(ARREST_FIELDS, "") | {"charges": []}
        )

    @r.get("/incidents/{incident_id}", response_class=HTMLResponse, summary="Incident page")
    def incident_page(request: Request, incident_id: str) -> HTMLResponse:
        """One incident with seizures, arrests (identity by policy, audited) and its change history."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            p = actor.principal
            incident = get_visible(session, p, Incident, incident_id)
            record = get_incident(session, incident_id)
            people = {
                x.id: x
                for x in session.scalars(
                    select(Person).where(Person.id.in_([a.person_id for a in record["arrests"]]))
                )
            }
            shown = {
                x.id: x
                for x in persons_as_shown(session, request, p, [x for x in people.values() if can_see(p, x)])
            }
            changes = history(session, "incident", incident_id)
            user_ids = {h.user_id for h in changes if h.user_id} | ({incident.created_by} - {None})
            users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(sorted(user_ids))))}
            operation = session.get(Operation, incident.operation_id) if incident.operation_id else None
            group = (
                session.get(SharingGroup, incident.sharing_group_id) if incident.sharing_group_id else None
            )
            ctx = {
                "actor": actor,
                "incident": incident,
                "seizures": record["seizures"],
                "arrests": [(a, shown.get(a.person_id)) for a in record["arrests"]],
                "where": _where(incident, _places_of(session, [incident.place_id])),
                "org": session.get(Organisation, incident.reporting_org_id),
                "operation": operation if operation is not None and can_see(p, operation) else None,
                "group": group,
                "provenance": provenance_of(session, "incident", incident_id),
                "history": changes,
                "users": users,
            }
            session.commit()
        return page(request, "incident.html", ctx | {"country_name": country_name})

    def _form_page(
        request: Request, actor: Actor, state: FormState, choices: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        p = actor.principal
        ctx = {
            "actor": actor,
            "form": state,
            "values": state.values,
            "errors": state.errors,
            **choices,
            # wider than the role may set alone is stored at its limit and proposed for release
            "distributions": [(t, may_set_distribution(p, t.code)) for t in v.distributions.terms.values()],
            "for_others": bool(p.rule("may_record_for_others")),
            "countries": _countries(),
            "places": _place_choices(
                state.values["place_q"], state.values["place_level"] or None, state.values["place"] or None
            ),
            "selected": state.values["place"],
        }
        return page(request, "incident_form.html", ctx, status_code=status_code)

    def _row_fragment(request: Request, name: str, index: int, row: dict[str, Any]) -> HTMLResponse:
        if not 0 <= index < 1000:
            raise InvalidInput("index must be between 0 and 999")
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            _may_write(actor.principal)
            session.commit()
        return page(request, name, {"i": index, "row": row, "errors": {}, "oob": True})

    return r


@functools.cache
def _countries() -> list[tuple[str, str]]:
    """ISO countries for the country boxes' suggestions (code, English name), by name."""
    return sorted(((str(c.alpha_2), str(c.name)) for c in pycountry.countries), key=lambda c: c[1])
