"""Validated input for organisations and sharing groups (their agreements), from forms and the JSON API.

Kinds come from the ``org_kinds`` vocabulary and countries from ISO 3166-1 (names and aliases resolve to
the alpha-2 code), so a new partner is data, never code. A patch names only the fields it changes: the
store tells "set to empty" from "not given" by ``model_fields_set``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from narcotrack.domain.places import resolve_country
from narcotrack.domain.vocab import vocabularies

HOME_COUNTRY = "KH"  # the country whose agencies are "domestic" on this node


def _kind(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("an organisation needs a kind")
    code = vocabularies().org_kinds.resolve(value)
    if code is None:
        raise ValueError(f"unknown organisation kind {value!r}; one of: {', '.join(vocabularies().org_kinds.codes())}")
    return code


def _country(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("an organisation needs a country (ISO 3166-1 alpha-2, e.g. KH)")
    code = resolve_country(str(value))
    if code is None:
        raise ValueError(f"unknown country {value!r}; give an ISO 3166-1 alpha-2 code such as KH or TH")
    return code


def _code(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _blank_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


OrgKind = Annotated[str, BeforeValidator(_kind)]
CountryCode = Annotated[str, BeforeValidator(_country)]
OrgCode = Annotated[str, BeforeValidator(_code), Field(min_length=2, max_length=40, pattern=r"^[A-Z0-9][A-Z0-9-]*$")]
OptionalOrgCode = Annotated[OrgCode | None, BeforeValidator(_blank_none)]
OptionalDate = Annotated[dt.date | None, BeforeValidator(_blank_none)]


def _check_domestic(country: str | None, domestic: bool | None) -> None:
    # A foreign agency marked domestic would receive every 'domestic' record and identities in full.
    if domestic and country is not None and country != HOME_COUNTRY:
        raise ValueError(f"an organisation in {country} cannot be domestic: only {HOME_COUNTRY} agencies are")


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("cannot be null")
    return value


def _dates_in_order(valid_to: dt.date | None, info: ValidationInfo) -> dt.date | None:
    start = info.data.get("valid_from")
    if valid_to is not None and start is not None and valid_to < start:
        raise ValueError("valid_to is before valid_from")
    return valid_to


class OrganisationIn(BaseModel):
    """A new organisation. ``domestic`` defaults to whether the country is Cambodia."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    code: OrgCode
    name_en: str = Field(min_length=2, max_length=200)
    name_km: str = Field(default="", max_length=200)
    kind: OrgKind
    country: CountryCode
    domestic: bool | None = Field(default=None, validate_default=True)
    parent: OptionalOrgCode = None

    @field_validator("domestic")
    @classmethod
    def _domestic(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        country = info.data.get("country")
        if value is None:
            return country == HOME_COUNTRY if country else None
        _check_domestic(country, value)
        return value


class OrganisationPatch(BaseModel):
    """Changes to an organisation; ``version`` (optional) is the version the change was made against."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name_en: str | None = Field(default=None, min_length=2, max_length=200)
    name_km: str | None = Field(default=None, max_length=200)
    kind: OrgKind | None = None
    country: CountryCode | None = None
    domestic: bool | None = None
    parent: OptionalOrgCode = None
    version: int | None = Field(default=None, ge=1)

    _given = field_validator("name_en", "name_km", "kind", "country", "domestic")(_not_null)

    def changes(self) -> dict[str, Any]:
        """The fields the caller gave (parent may be None: no parent), without the version."""
        return {k: getattr(self, k) for k in self.model_fields_set if k != "version"}


class SharingGroupIn(BaseModel):
    """A new sharing group: its agreement text, whether identities may be exchanged, validity, members.

    ``owner`` (an organisation code) defaults to the creating user's organisation; the owner is always
    a member.
    """

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=2, max_length=200)
    agreement: str = Field(default="", max_length=20_000)
    allows_identity: bool = False
    valid_from: OptionalDate = None
    valid_to: OptionalDate = None
    owner: OptionalOrgCode = None
    members: list[OrgCode] = Field(default_factory=list)

    _dates = field_validator("valid_to")(_dates_in_order)


class SharingGroupPatch(BaseModel):
    """Changes to a sharing group; ``version`` (optional) is the version the change was made against."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str | None = Field(default=None, min_length=2, max_length=200)
    agreement: str | None = Field(default=None, max_length=20_000)
    allows_identity: bool | None = None
    valid_from: OptionalDate = None
    valid_to: OptionalDate = None
    owner: OptionalOrgCode = None
    version: int | None = Field(default=None, ge=1)

    _given = field_validator("name", "agreement", "allows_identity", "owner")(_not_null)
    _dates = field_validator("valid_to")(_dates_in_order)

    def changes(self) -> dict[str, Any]:
        """The fields the caller gave (valid_from/valid_to may be None: open-ended), without the version."""
        return {k: getattr(self, k) for k in self.model_fields_set if k != "version"}
