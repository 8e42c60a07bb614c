"""The relational schema (SQLAlchemy 2 declarative).

Conventions, the same on every table: a UUID string primary key ``id``; ``created_at``/``updated_at``
stamps in UTC; ``version`` counts changes (every change after creation is kept in ``record_history``).
Shareable records carry the owner organisation, TLP 2.0 marking, distribution and sharing group.
Identity fields of persons live in ``person_identity`` alone, so access to them is one table to guard,
encrypt or erase.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MARKINGS = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")
DISTRIBUTIONS = ("owner", "domestic", "group", "partners")

ID = String(36)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Stamped:
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Shareable:
    """Sharing fields of every record an organisation may share (DESIGN.md, 'Sharing')."""

    @declared_attr
    def owner_org_id(cls) -> Mapped[str]:
        return mapped_column(ID, ForeignKey("organisation.id"), index=True)

    marking: Mapped[str] = mapped_column(String(16), default="AMBER")
    distribution: Mapped[str] = mapped_column(String(16), default="domestic")

    @declared_attr
    def sharing_group_id(cls) -> Mapped[str | None]:
        return mapped_column(ID, ForeignKey("sharing_group.id"), nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            CheckConstraint(_in("marking", MARKINGS), name="marking"),
            CheckConstraint(_in("distribution", DISTRIBUTIONS), name="distribution"),
            CheckConstraint("distribution <> 'group' OR sharing_group_id IS NOT NULL", name="group_needs_id"),
        )


class Organisation(Stamped, Base):
    __tablename__ = "organisation"
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_km: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(40))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    domestic: Mapped[bool] = mapped_column(Boolean, default=True)
    parent_id: Mapped[str | None] = mapped_column(ID, ForeignKey("organisation.id"), nullable=True)


class SharingGroup(Stamped, Base):
    __tablename__ = "sharing_group"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    owner_org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"))
    agreement: Mapped[str] = mapped_column(Text, default="")
    allows_identity: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_from: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    valid_to: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class SharingGroupMember(Base):
    __tablename__ = "sharing_group_member"
    group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("sharing_group.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"), primary_key=True)


class User(Stamped, Base):
    __tablename__ = "app_user"
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (
        CheckConstraint(_in("role", ("admin", "analyst", "officer", "liaison", "viewer")), name="role"),
    )


class UserSession(Base):
    """A server-side login session; the browser holds only a random token whose hash is the key."""

    __tablename__ = "user_session"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    second_factor_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiToken(Base):
    """A revocable token for machine clients, scoped to one user; only its hash is stored."""

    __tablename__ = "api_token"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginAttempt(Base):
    """Every login attempt, for the lock-out rule (5 failures in 15 minutes)."""

    __tablename__ = "login_attempt"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    username: Mapped[str] = mapped_column(String(80))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    success: Mapped[bool] = mapped_column(Boolean)


Index("ix_login_attempt_user_at", LoginAttempt.username, LoginAttempt.at)


class Place(Stamped, Base):
    """A gazetteer unit (province to village), a country, or a named point such as a checkpoint."""

    __tablename__ = "place"
    code: Mapped[str] = mapped_column(String(40), unique=True)
    level: Mapped[str] = mapped_column(
        String(16)
    )  # country | province | district | commune | village | point
    parent_id: Mapped[str | None] = mapped_column(ID, ForeignKey("place.id"), nullable=True, index=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_km: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str] = mapped_column(String(2))
    kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)


class ImportBatch(Stamped, Base):
    """One file imported: what it was, who imported it, what came of it."""

    __tablename__ = "import_batch"
    file_name: Mapped[str] = mapped_column(String(400))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(20))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_imported: Mapped[int] = mapped_column(Integer, default=0)
    rows_skipped_existing: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[str | None] = mapped_column(ID, ForeignKey("app_user.id"), nullable=True)
    org_id: Mapped[str | None] = mapped_column(ID, ForeignKey("organisation.id"), nullable=True)


class Operation(Stamped, Shareable, Base):
    __tablename__ = "operation"
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(60), unique=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    lead_org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    outcomes: Mapped[str] = mapped_column(Text, default="")


class OperationParticipant(Base):
    __tablename__ = "operation_participant"
    operation_id: Mapped[str] = mapped_column(
        ID, ForeignKey("operation.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(40), default="participant")


class Incident(Stamped, Shareable, Base):
    """One law-enforcement event: a seizure, an arrest, or both."""

    __tablename__ = "incident"
    occurred_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    place_id: Mapped[str | None] = mapped_column(ID, ForeignKey("place.id"), nullable=True)
    province_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    district_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    place_text: Mapped[str] = mapped_column(String(400), default="")
    admin_division_text: Mapped[str] = mapped_column(String(200), default="")
    place_kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reporting_org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"))
    operation_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("operation.id"), nullable=True, index=True
    )
    narrative: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(20))
    source_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)
    import_batch_id: Mapped[str | None] = mapped_column(ID, ForeignKey("import_batch.id"), nullable=True)
    created_by: Mapped[str | None] = mapped_column(ID, ForeignKey("app_user.id"), nullable=True)


Index("ix_incident_occurred_on", Incident.occurred_on)
Index("ix_incident_province_date", Incident.province_code, Incident.occurred_on)
Index("ix_incident_district", Incident.district_code)
Index("ix_incident_reporting_org", Incident.reporting_org_id, Incident.occurred_on)
Index("ix_incident_country_date", Incident.country, Incident.occurred_on)
Index("uq_incident_source_ref", Incident.source, Incident.source_ref, unique=True)
# The list's filters with id and the sharing columns: candidates are filtered by the policy and sorted
# without reading incident rows (migration 0005).
_SHARING = ("owner_org_id", "marking", "distribution", "sharing_group_id")
Index("ix_incident_list_province", Incident.province_code, Incident.occurred_on, Incident.id,
      *(getattr(Incident, c) for c in _SHARING))


class DataVersion(Base):
    """Row 0 counts changes to what the dashboard counts; triggers keep it (migration 0005, store.figures).

    ``epoch`` changes when the row is recreated, so a version number seen before can never come back.
    """

    __tablename__ = "data_version"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[str] = mapped_column(String(32))


# -- monthly trend summaries (migration 0006, narcotrack.store.summary) --------------------------------------
# Counts per month x where x agency x sharing columns, so that trends read a hundred thousand summary rows
# instead of joining a million seizures to their incidents. A column that is NULL in the store is '' here
# (a NULL in a group key would make every row its own group). They are derived data: triggers log the
# months that changed in ``trend_month_dirty`` and ``summary.refresh`` recomputes those months.
_SUMMARY_KEYS = (
    Column("month", String(7), nullable=False),  # 'YYYY-MM' of occurred_on
    Column("province_code", String(12), nullable=False),
    Column("country", String(2), nullable=False),
    Column("reporting_org_id", ID, nullable=False),
    Column("owner_org_id", ID, nullable=False),
    Column("marking", String(16), nullable=False),
    Column("distribution", String(16), nullable=False),
    Column("sharing_group_id", ID, nullable=False),
)
trend_month_incident = Table(
    "trend_month_incident",
    Base.metadata,
    *(c._copy() for c in _SUMMARY_KEYS),
    Column("incidents", Integer, nullable=False),  # every dated incident
    Column("persons", Integer, nullable=False),  # arrest rows (person x incident)
)
trend_month_drug = Table(
    "trend_month_drug",
    Base.metadata,
    *(c._copy() for c in _SUMMARY_KEYS),
    Column("drug", String(40), nullable=False),
    Column("incidents", Integer, nullable=False),  # distinct incidents with a seizure of the drug
    Column("seizures", Integer, nullable=False),
    Column("kg", Float, nullable=True),  # NULL when no seizure of the group has a mass
    Column("persons", Integer, nullable=False),  # arrest rows of those incidents
)
# Covering indexes in the order of the commonest grouping (month x drug x province): the trend reads the
# index alone, already grouped (52 ms instead of 150 ms for 135,000 rows on SQLite); month first also
# serves the refresh's deletes.
SUMMARY_INDEXES = {
    "trend_month_drug": ("month", "drug", "province_code", "country", "reporting_org_id", "owner_org_id",
                         "marking", "distribution", "sharing_group_id", "incidents", "seizures", "kg", "persons"),
    "trend_month_incident": ("month", "province_code", "country", "reporting_org_id", "owner_org_id", "marking",
                             "distribution", "sharing_group_id", "incidents", "persons"),
}
for _table, _columns in SUMMARY_INDEXES.items():
    Index(f"ix_{_table}_month", *(Base.metadata.tables[_table].c[c] for c in _columns))
trend_month_dirty = Table(
    "trend_month_dirty",
    Base.metadata,
    Column("month", String(7), nullable=False),
    Column("txid", BigInteger, nullable=True),  # PostgreSQL: the writing transaction (one row per month each)
    Index("ix_trend_month_dirty_month", "month"),
)


class Seizure(Stamped, Base):
    __tablename__ = "seizure"
    incident_id: Mapped[str] = mapped_column(ID, ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    drug: Mapped[str] = mapped_column(String(40))
    drug_reported: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    unit_reported: Mapped[str] = mapped_column(String(60), default="")
    mass_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    purity_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    concealment: Mapped[str | None] = mapped_column(String(20), nullable=True)
    transport_mode: Mapped[str | None] = mapped_column(String(20), nullable=True)
    packaging_marking: Mapped[str] = mapped_column(String(200), default="")
    producing_country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    origin_country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    transit_countries: Mapped[str] = mapped_column(String(60), default="")  # space-separated ISO codes
    destination_country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    routing: Mapped[str | None] = mapped_column(String(40), nullable=True)
    likely_duplicate_of: Mapped[str | None] = mapped_column(ID, nullable=True)
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_nonneg"),
        CheckConstraint("purity_pct IS NULL OR (purity_pct >= 0 AND purity_pct <= 100)", name="purity_pct"),
    )


Index("ix_seizure_drug", Seizure.drug)
Index("ix_seizure_incident_drug", Seizure.incident_id, Seizure.drug, Seizure.mass_kg)


class Person(Stamped, Shareable, Base):
    """A suspect. Only non-identifying attributes live here; names and numbers are in PersonIdentity."""

    __tablename__ = "person"
    sex: Mapped[str] = mapped_column(String(1), default="X")
    nationality: Mapped[str | None] = mapped_column(String(2), nullable=True)
    birth_year: Mapped[int | None] = mapped_column(Integer, nullable=True)


Index("ix_person_sharing", *(getattr(Person, c) for c in _SHARING))


class PersonIdentity(Base):
    """Personal data of a person, kept apart so that one policy, encryption or erasure covers it all."""

    __tablename__ = "person_identity"
    person_id: Mapped[str] = mapped_column(ID, ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    name_km: Mapped[str] = mapped_column(String(200), default="")
    name_latin: Mapped[str] = mapped_column(String(200), default="")
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    age_reported: Mapped[int | None] = mapped_column(Integer, nullable=True)
    id_numbers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class PersonTruth(Base):
    """Ground truth for entity-resolution tests: which person records are the same human (demo only)."""

    __tablename__ = "person_truth"
    person_id: Mapped[str] = mapped_column(ID, ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    truth_key: Mapped[str] = mapped_column(String(40), index=True)
    group_key: Mapped[str | None] = mapped_column(String(40), nullable=True)


class Arrest(Stamped, Base):
    __tablename__ = "arrest"
    incident_id: Mapped[str] = mapped_column(ID, ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[str] = mapped_column(ID, ForeignKey("person.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    charges: Mapped[list[Any]] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(String(30), nullable=True)
    age_at_arrest: Mapped[int | None] = mapped_column(Integer, nullable=True)
    __table_args__ = (UniqueConstraint("incident_id", "person_id", name="incident_person"),)


class IntelReport(Stamped, Shareable, Base):
    """Free-text intelligence graded on the Admiralty scale (source reliability x information credibility)."""

    __tablename__ = "intel_report"
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    reported_on: Mapped[dt.date] = mapped_column(Date)
    source_reliability: Mapped[str] = mapped_column(String(1))
    info_credibility: Mapped[str] = mapped_column(String(1))
    reporting_org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"))


class IntelLink(Base):
    __tablename__ = "intel_link"
    report_id: Mapped[str] = mapped_column(
        ID, ForeignKey("intel_report.id", ondelete="CASCADE"), primary_key=True
    )
    entity_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    entity_id: Mapped[str] = mapped_column(ID, primary_key=True)


class TrainingEvent(Stamped, Shareable, Base):
    __tablename__ = "training_event"
    title: Mapped[str] = mapped_column(String(300))
    topic: Mapped[str] = mapped_column(String(40))
    provider_org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"))
    place_id: Mapped[str | None] = mapped_column(ID, ForeignKey("place.id"), nullable=True)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class TrainingParticipation(Base):
    __tablename__ = "training_participation"
    event_id: Mapped[str] = mapped_column(
        ID, ForeignKey("training_event.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"), primary_key=True)
    participants: Mapped[int] = mapped_column(Integer)
    female: Mapped[int] = mapped_column(Integer, default=0)


class CommunityCampaign(Stamped, Shareable, Base):
    __tablename__ = "community_campaign"
    name: Mapped[str] = mapped_column(String(300))
    org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"))
    province_code: Mapped[str] = mapped_column(String(12))
    audience: Mapped[str] = mapped_column(String(20))
    reach: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class DrugUseIndicator(Stamped, Shareable, Base):
    """One figure: a measure for a period, province, drug, sex and age band (e.g. treatment admissions)."""

    __tablename__ = "drug_use_indicator"
    measure: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    province_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    drug: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sex: Mapped[str] = mapped_column(String(1), default="X")
    age_band: Mapped[str] = mapped_column(String(10), default="all")
    value: Mapped[float] = mapped_column(Float)
    source_text: Mapped[str] = mapped_column(String(300), default="")


class RecordHistory(Base):
    """Every change to a record after its creation: which fields, from what, to what, by whom."""

    __tablename__ = "record_history"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(ID)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    action: Mapped[str] = mapped_column(String(20))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


Index("ix_record_history_record", RecordHistory.record_type, RecordHistory.record_id)


class AuditEvent(Base):
    """Append-only, hash-chained log of who did what (the chain itself is built by narcotrack.access)."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    org_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    record_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    record_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


SHAREABLE_TABLES = (
    "incident",
    "person",
    "operation",
    "intel_report",
    "training_event",
    "community_campaign",
    "drug_use_indicator",
)


RELEASE_STATUSES = ("pending", "released", "rejected", "withdrawn")


class ReleaseRequest(Base):
    """A proposal to share a record more widely, and its decision: one person proposes, another releases.

    The sharing at proposal time is kept (``from_*``) so that a release never silently undoes a change
    made after the proposal (narcotrack.access.release refuses when they differ).
    """

    __tablename__ = "release_request"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(ID)
    owner_org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"))
    marking: Mapped[str] = mapped_column(String(16))
    distribution: Mapped[str] = mapped_column(String(16))
    sharing_group_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    from_marking: Mapped[str] = mapped_column(String(16))
    from_distribution: Mapped[str] = mapped_column(String(16))
    from_sharing_group_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    proposed_by: Mapped[str] = mapped_column(ID, ForeignKey("app_user.id"))
    proposed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(ID, ForeignKey("app_user.id"), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (
        CheckConstraint(_in("record_type", SHAREABLE_TABLES), name="record_type"),
        CheckConstraint(_in("status", RELEASE_STATUSES), name="status"),
        CheckConstraint(_in("marking", MARKINGS), name="marking"),
        CheckConstraint(_in("distribution", DISTRIBUTIONS), name="distribution"),
        CheckConstraint(_in("from_marking", MARKINGS), name="from_marking"),
        CheckConstraint(_in("from_distribution", DISTRIBUTIONS), name="from_distribution"),
        CheckConstraint("distribution <> 'group' OR sharing_group_id IS NOT NULL", name="group_needs_id"),
    )


Index("ix_release_request_org_status", ReleaseRequest.owner_org_id, ReleaseRequest.status)
Index("ix_release_request_record", ReleaseRequest.record_type, ReleaseRequest.record_id)
Index("ix_release_request_proposed_by", ReleaseRequest.proposed_by)


# -- exchange with partner nodes (migration 0007, narcotrack.exchange) ----------------------------------------
class StixProvenance(Base):
    """Which STIX object a record came from, from whom and when: re-exports reuse the partner's id, and a
    pull upserts by it, so the same object never becomes two records."""

    __tablename__ = "stix_provenance"
    stix_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(ID)
    source_org_id: Mapped[str | None] = mapped_column(ID, ForeignKey("organisation.id"), nullable=True)
    partner_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    modified: Mapped[str] = mapped_column(String(40))  # the object's STIX 'modified', as sent
    # A person shared under a pseudonym keeps it; a person arrested in a shared incident but not shared
    # is an unnamed stand-in, never exported (migration 0008).
    pseudonym: Mapped[str | None] = mapped_column(String(80), nullable=True)
    withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("record_type", "record_id", name="uq_stix_provenance_record"),)


# Partner feeds (TAXII, `export stix --since`) page by the time a record was added or changed.
Index("ix_incident_feed", Incident.updated_at, Incident.id)
Index("ix_person_feed", Person.updated_at, Person.id)
Index("ix_operation_feed", Operation.updated_at, Operation.id)


class TaxiiStatus(Base):
    """The outcome of one TAXII upload, which the sending partner reads back by its id (migration 0008)."""

    __tablename__ = "taxii_status"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(ID, ForeignKey("app_user.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class PartnerNode(Stamped, Base):
    """A partner's TAXII 2.1 API root that this node pulls from and pushes to, for one organisation."""

    __tablename__ = "partner_node"
    org_id: Mapped[str] = mapped_column(ID, ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    api_root: Mapped[str] = mapped_column(String(400))
    token: Mapped[str] = mapped_column(String(400), default="")  # the partner's token for this node
    # Where pulled records are shared on this node (TLP and owner come from the partner).
    distribution: Mapped[str] = mapped_column(String(16), default="domestic")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PartnerCursor(Base):
    """How far a pull from one partner collection got: resumed from here after a dropped connection."""

    __tablename__ = "partner_cursor"
    partner_id: Mapped[str] = mapped_column(ID, ForeignKey("partner_node.id", ondelete="CASCADE"),
                                            primary_key=True)
    collection_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    added_after: Mapped[str | None] = mapped_column(String(40), nullable=True)
    pushed_until: Mapped[str | None] = mapped_column(String(40), nullable=True)
    objects: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
