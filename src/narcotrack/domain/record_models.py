"""Input models of the record types that hang off the core (training, campaigns, indicators) and of
seizures and arrests added to an existing incident. Same conventions as ``models``: coded fields accept
any alias of their vocabulary and store the code.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from narcotrack.domain.models import ArrestIn, Drug, SeizureIn, Sex, Sharing, _coded

TrainingTopic = Annotated[str, _coded("training_topics")]
Audience = Annotated[str, _coded("campaign_audiences")]
Measure = Annotated[str, _coded("indicator_measures")]
AgeBand = Annotated[str, _coded("age_bands")]


class _Dated(BaseModel):
    start_date: dt.date
    end_date: dt.date | None = None

    @model_validator(mode="after")
    def _dates(self) -> _Dated:
        if self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class Participation(BaseModel):
    org: str
    participants: int = Field(ge=0)
    female: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _female(self) -> Participation:
        if self.female > self.participants:
            raise ValueError("female participants exceed participants")
        return self


class TrainingEventIn(Sharing, _Dated):
    model_config = ConfigDict(str_strip_whitespace=True)

    title: str = Field(min_length=2, max_length=300)
    topic: TrainingTopic
    provider_org: str
    province: str | None = None
    participation: list[Participation] = Field(default_factory=list)


class CampaignIn(Sharing, _Dated):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=300)
    org: str
    province: str
    audience: Audience
    reach: int = Field(ge=0)


class IndicatorIn(Sharing):
    model_config = ConfigDict(str_strip_whitespace=True)

    measure: Measure
    period_start: dt.date
    period_end: dt.date
    province: str | None = None
    drug: Drug | None = None
    sex: Sex = "X"
    age_band: AgeBand = "all"
    value: float = Field(ge=0)
    source_text: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _period(self) -> IndicatorIn:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class SeizureAdd(SeizureIn):
    """A seizure added to an incident that is already recorded."""

    incident_id: str


class ArrestAdd(ArrestIn):
    """An arrest added to an incident that is already recorded."""

    incident_id: str
