"""Validated input models (pydantic): what a form, an API call or an imported row must satisfy.

Each coded field accepts a code or any alias from its vocabulary and stores the code, so "yaba",
"Ya Ba" and "methamphetamine_tablets" all validate to the same drug.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from narcotrack.domain.places import resolve_country
from narcotrack.domain.vocab import Vocabulary, vocabularies


def _coded(name: str) -> Any:
    def check(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        vocab: Vocabulary = getattr(vocabularies(), name)
        code = vocab.resolve(value)
        if code is None:
            raise ValueError(f"unknown {name.replace('_', ' ')} {value!r}")
        return code

    return BeforeValidator(check)


def _country(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    code = resolve_country(str(value))
    if code is None:
        raise ValueError(f"unknown country {value!r}")
    return code


def _countries(value: Any) -> Any:
    if value is None or value == "":
        return []
    items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value)
    return [_country(v) for v in items if str(v).strip()]


Drug = Annotated[str, _coded("drugs")]
Unit = Annotated[str, _coded("units")]
Transport = Annotated[str | None, _coded("transport")]
Concealment = Annotated[str | None, _coded("concealment")]
PlaceKind = Annotated[str | None, _coded("place_kinds")]
Role = Annotated[str, _coded("roles")]
Outcome = Annotated[str | None, _coded("outcomes")]
Marking = Annotated[str, _coded("markings")]
Distribution = Annotated[str, _coded("distributions")]
Sex = Annotated[str, _coded("sexes")]
Country = Annotated[str | None, BeforeValidator(_country)]
Countries = Annotated[list[str], BeforeValidator(_countries)]
OperationKind = Annotated[str, _coded("operation_kinds")]
UserRole = Annotated[str, _coded("user_roles")]


def _charges(values: list[str]) -> list[str]:
    vocab = vocabularies().charges
    out = []
    for v in values:
        code = vocab.resolve(v)
        if code is None:
            raise ValueError(f"unknown charge {v!r}")
        out.append(code)
    return out


class Sharing(BaseModel):
    marking: Marking = "AMBER"
    distribution: Distribution = "domestic"
    sharing_group_id: str | None = None

    def sharing_fields(self) -> dict[str, Any]:
        """The sharing columns every shareable row carries, as stored."""
        return {"marking": self.marking, "distribution": self.distribution, "sharing_group_id": self.sharing_group_id}

    @model_validator(mode="after")
    def _group_needs_id(self) -> Sharing:
        if self.distribution == "group" and not self.sharing_group_id:
            raise ValueError("distribution 'group' needs a sharing group")
        return self


class SeizureIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    drug: Drug
    quantity: float = Field(ge=0)
    unit: Unit
    purity_pct: float | None = Field(default=None, ge=0, le=100)
    concealment: Concealment = None
    transport_mode: Transport = None
    packaging_marking: str = ""
    producing_country: Country = None
    origin_country: Country = None
    transit_countries: Countries = Field(default_factory=list)
    destination_country: Country = None


class PersonIn(Sharing):
    model_config = ConfigDict(str_strip_whitespace=True)

    name_km: str = ""
    name_latin: str = ""
    aliases: list[str] = Field(default_factory=list)
    sex: Sex = "X"
    nationality: Country = None
    date_of_birth: dt.date | None = None
    age: int | None = Field(default=None, ge=0, le=120)
    id_numbers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _named(self) -> PersonIn:
        if not (self.name_km or self.name_latin):
            raise ValueError("a person needs a name in Khmer or Latin script")
        return self


class ArrestIn(BaseModel):
    person_id: str | None = None
    person: PersonIn | None = None
    role: Role
    charges: Annotated[list[str], AfterValidator(_charges)] = Field(default_factory=list)
    outcome: Outcome = None

    @model_validator(mode="after")
    def _one_person(self) -> ArrestIn:
        if (self.person_id is None) == (self.person is None):
            raise ValueError("give either an existing person_id or a new person")
        return self


class IncidentIn(Sharing):
    model_config = ConfigDict(str_strip_whitespace=True)

    occurred_on: dt.date
    province: str | None = None
    district: str | None = None
    commune: str | None = None
    country: Country = "KH"
    place_text: str = ""
    place_kind: PlaceKind = None
    reporting_org: str
    operation_id: str | None = None
    narrative: str = ""
    seizures: list[SeizureIn] = Field(default_factory=list)
    arrests: list[ArrestIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_in_future(self) -> IncidentIn:
        if self.occurred_on > dt.date.today():
            raise ValueError("occurred_on is in the future")
        if not self.seizures and not self.arrests:
            raise ValueError("an incident records at least one seizure or one arrest")
        return self


class OperationIn(Sharing):
    name: str = Field(min_length=2)
    code: str | None = None
    kind: OperationKind
    lead_org: str
    participants: list[str] = Field(default_factory=list)
    start_date: dt.date
    end_date: dt.date | None = None
    outcomes: str = ""

    @model_validator(mode="after")
    def _dates(self) -> OperationIn:
        if self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class UserIn(BaseModel):
    username: str = Field(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9_.@-]+$")
    display_name: str = ""
    org: str
    role: UserRole
    password: str = Field(min_length=8)
