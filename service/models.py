"""SQLAlchemy 2 typed models: rifts, their event log, proofs, assets and job records."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Re-exported: the asset rows store the scanner's own vocabulary.
from service.scanning.status import ScanStatus as ScanStatus

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class ItemType(enum.StrEnum):
    DIGITAL_GOODS = "DIGITAL_GOODS"
    SERVICES = "SERVICES"
    PHYSICAL = "PHYSICAL"
    OWNERSHIP_TRANSFER = "OWNERSHIP_TRANSFER"


class RiftStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    FUNDED = "FUNDED"
    PROOF_SUBMITTED = "PROOF_SUBMITTED"
    UNDER_REVIEW = "UNDER_REVIEW"
    RELEASED = "RELEASED"
    DISPUTED = "DISPUTED"
    RESOLVED = "RESOLVED"
    PAYOUT_SCHEDULED = "PAYOUT_SCHEDULED"
    PAID_OUT = "PAID_OUT"
    CANCELED = "CANCELED"
    REFUNDED = "REFUNDED"


class ActorRole(enum.StrEnum):
    BUYER = "BUYER"
    SELLER = "SELLER"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


class AssetType(enum.StrEnum):
    FILE = "FILE"
    LICENSE_KEY = "LICENSE_KEY"
    TRACKING = "TRACKING"
    URL = "URL"
    TEXT = "TEXT"


class JobState(enum.StrEnum):
    PENDING = "PENDING"  # written, not yet handed to the broker (the outbox)
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # permanent error: not retried
    DEAD = "DEAD"  # retries or age limit exhausted: dead-lettered


FINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD})


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings: adding a member needs no ALTER TYPE on PostgreSQL.
    return Enum(cls, native_enum=False, length=32, validate_strings=True)


class Rift(Base):
    __tablename__ = "rifts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    item_type: Mapped[ItemType] = mapped_column(_enum(ItemType))
    buyer_id: Mapped[str] = mapped_column(String(64), index=True)
    seller_id: Mapped[str] = mapped_column(String(64), index=True)
    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    risk_score: Mapped[int] = mapped_column(Integer, default=0)
    requires_manual_review: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[RiftStatus] = mapped_column(_enum(RiftStatus))
    version: Mapped[int] = mapped_column(Integer)
    proof_valid: Mapped[bool | None] = mapped_column(Boolean, default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    funded_at: Mapped[datetime | None]
    proof_submitted_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    auto_release_at: Mapped[datetime | None]

    __mapper_args__ = {"version_id_col": version}


class RiftEvent(Base):
    """One transition of a rift; rows are only ever inserted."""

    __tablename__ = "rift_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    rift_id: Mapped[str] = mapped_column(ForeignKey("rifts.id"), index=True)
    actor_role: Mapped[ActorRole] = mapped_column(_enum(ActorRole))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    from_status: Mapped[RiftStatus | None] = mapped_column(_enum(RiftStatus))
    to_status: Mapped[RiftStatus | None] = mapped_column(_enum(RiftStatus))
    kind: Mapped[str] = mapped_column(String(40), default="transition")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class Proof(Base):
    __tablename__ = "proofs"
    __table_args__ = (UniqueConstraint("rift_id", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rift_id: Mapped[str] = mapped_column(ForeignKey("rifts.id"), index=True)
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime]
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    verification_job_id: Mapped[str] = mapped_column(String(36))
    checks_done_at: Mapped[datetime | None]
    verdict_at: Mapped[datetime | None]
    passed: Mapped[bool | None]
    route_to_review: Mapped[bool | None]
    auto_approved: Mapped[bool | None]
    verdict_reasons: Mapped[list[Any] | None]

    assets: Mapped[list[Asset]] = relationship(
        back_populates="proof", order_by="Asset.position", lazy="selectin"
    )


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    proof_id: Mapped[str] = mapped_column(ForeignKey("proofs.id"), index=True)
    rift_id: Mapped[str] = mapped_column(ForeignKey("rifts.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[AssetType] = mapped_column(_enum(AssetType))
    # Files: the blob, its server-side facts and its scan.
    storage_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    original_name: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    declared_mime: Mapped[str | None] = mapped_column(String(128))
    sniffed_mime: Mapped[str | None] = mapped_column(String(128))
    scan_status: Mapped[ScanStatus] = mapped_column(_enum(ScanStatus))
    scan_signature: Mapped[str | None] = mapped_column(String(200))
    scanned_at: Mapped[datetime | None]
    quarantined_at: Mapped[datetime | None]
    # Non-file values: license keys only ever encrypted, others as given.
    value_text: Mapped[str | None] = mapped_column(Text)
    value_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    phash: Mapped[int | None] = mapped_column(BigInteger)
    # Verification outcome of this asset.
    checked_at: Mapped[datetime | None]
    score: Mapped[int | None]
    integrity_ok: Mapped[bool | None]
    passed: Mapped[bool | None]
    issues: Mapped[list[Any]] = mapped_column(JSON, default=list)
    deductions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    proof: Mapped[Proof] = relationship(back_populates="assets")


class ImageHashBand(Base):
    """One band of an image's perceptual hash: the index behind near-duplicate lookup."""

    __tablename__ = "image_hash_bands"
    __table_args__ = (Index("ix_image_hash_bands_lookup", "band_no", "band_value"),)

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    band_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    band_value: Mapped[int] = mapped_column(Integer)
    rift_id: Mapped[str] = mapped_column(String(36))


class Job(Base):
    """The durable record of one background job; the broker message id is this id."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_updated", "state", "updated_at"),
        # Partial index: the relay's "not yet dispatched" scan stays small however many
        # job records accumulate.
        Index(
            "ix_jobs_outbox",
            "created_at",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
        # Operators' listings, newest first (service/domain/job_search.py): any filter,
        # and the default FAILED and DEAD one, which a partial index keeps off the hot path.
        Index("ix_jobs_created_at", "created_at"),
        Index(
            "ix_jobs_failures_created",
            "created_at",
            # A count of "DEAD scan_asset" reads the index alone, not a heap row per failure.
            "state",
            "actor_name",
            postgresql_where=text("state IN ('FAILED', 'DEAD')"),
            sqlite_where=text("state IN ('FAILED', 'DEAD')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    actor_name: Mapped[str] = mapped_column(String(64))
    queue_name: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(36))
    rift_id: Mapped[str | None] = mapped_column(String(36), index=True)
    proof_id: Mapped[str | None] = mapped_column(String(36))
    requested_by: Mapped[str | None] = mapped_column(String(64))
    # The X-Request-ID of the request that created the job (None for the scheduler's).
    request_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[JobState] = mapped_column(_enum(JobState))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class OperatorAction(Base):
    """One thing an operator did from the console or the CLI: who, when, what, to what."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    actor_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(36), index=True)
    rift_id: Mapped[str | None] = mapped_column(String(36), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)


@event.listens_for(RiftEvent, "before_update")
@event.listens_for(RiftEvent, "before_delete")
def _event_log_is_append_only(mapper: Any, connection: Any, target: RiftEvent) -> None:
    # The log is evidence in disputes: a change to history is a bug, never a feature.
    raise AppendOnlyViolation(f"rift event {target.id} is append-only")


class AppendOnlyViolation(RuntimeError):
    """Something tried to rewrite or delete a rift's event history."""
