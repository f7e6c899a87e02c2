"""Rifts: creation, access and the one way their status changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain import transitions
from service.domain.clock import IdFactory
from service.domain.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    TransitionNotAllowed,
    VersionConflict,
)
from service.domain.jobs import new_job
from service.domain.queues import CLEAN_UP_RIFT
from service.domain.users import User
from service.models import ActorRole, ItemType, Job, Rift, RiftEvent, RiftStatus

CURRENCY_LENGTH = 3
MAX_SUBTOTAL_MINOR = 10**13


@dataclass(frozen=True)
class NewRift:
    title: str
    item_type: ItemType
    seller_id: str
    subtotal_minor: int
    currency: str
    risk_score: int = 0
    requires_manual_review: bool = False

    def __post_init__(self) -> None:
        if not self.title.strip() or len(self.title) > 200:
            raise InvalidInput("title must be 1-200 characters", field="title")
        if not 0 < self.subtotal_minor <= MAX_SUBTOTAL_MINOR:
            raise InvalidInput(
                "subtotal must be a positive amount in minor units", field="subtotal"
            )
        if len(self.currency) != CURRENCY_LENGTH or not self.currency.isalpha():
            raise InvalidInput("currency must be a 3-letter ISO 4217 code", field="currency")
        if not 0 <= self.risk_score <= 100:
            raise InvalidInput("risk_score must be between 0 and 100", field="risk_score")
        if not self.seller_id.strip():
            raise InvalidInput("seller_id is required", field="seller_id")


def system_note(rift_id: str, kind: str, reason: str, now: datetime) -> RiftEvent:
    """An event the system records on a rift without changing its status."""
    return RiftEvent(
        rift_id=rift_id,
        actor_role=ActorRole.SYSTEM,
        actor_id=None,
        from_status=None,
        to_status=None,
        kind=kind,
        reason=reason,
        created_at=now,
    )


def create_rift(
    session: Session, buyer: User, spec: NewRift, *, now: datetime, ids: IdFactory
) -> Rift:
    """Create a DRAFT rift with the caller as buyer."""
    if spec.seller_id == buyer.id:
        raise InvalidInput("the seller must be someone other than the buyer", field="seller_id")
    rift = Rift(
        id=ids(),
        title=spec.title.strip(),
        item_type=spec.item_type,
        buyer_id=buyer.id,
        seller_id=spec.seller_id,
        subtotal_minor=spec.subtotal_minor,
        currency=spec.currency.upper(),
        risk_score=spec.risk_score,
        requires_manual_review=spec.requires_manual_review,
        status=RiftStatus.DRAFT,
        created_at=now,
        updated_at=now,
    )
    session.add(rift)
    session.add(
        RiftEvent(
            rift_id=rift.id,
            actor_role=ActorRole.BUYER,
            actor_id=buyer.id,
            from_status=None,
            to_status=RiftStatus.DRAFT,
            kind="created",
            reason="rift created",
            created_at=now,
        )
    )
    session.flush()
    return rift


def load_rift(session: Session, rift_id: str, user: User, *, for_update: bool = False) -> Rift:
    """Return the rift if the user is its buyer, its seller or an admin; else NotFound."""
    rift = session.get(Rift, rift_id, with_for_update=for_update)
    # Not yours looks exactly like missing: ids must not leak whether a deal exists.
    if rift is None or user.relation_to(rift) is None:
        raise NotFound(f"no rift {rift_id}")
    return rift


def rift_events(session: Session, rift_id: str, user: User) -> list[RiftEvent]:
    """Return the rift's event log, oldest first, if the user may see the rift."""
    load_rift(session, rift_id, user)
    return list(
        session.scalars(
            select(RiftEvent).where(RiftEvent.rift_id == rift_id).order_by(RiftEvent.id)
        )
    )


def transition(
    session: Session,
    rift: Rift,
    target: RiftStatus,
    *,
    role: ActorRole,
    actor_id: str | None,
    reason: str,
    now: datetime,
    ids: IdFactory,
) -> list[Job]:
    """Move rift to target if the table allows it; log it; return jobs it calls for."""
    if not transitions.is_allowed(rift.status, target, role):
        allowed = [s.value for s in transitions.allowed_targets(rift.status, role)]
        raise TransitionNotAllowed(
            f"a {role.value.lower()} cannot move a rift from {rift.status.value} to {target.value}",
            allowed=allowed,
        )
    session.add(
        RiftEvent(
            rift_id=rift.id,
            actor_role=role,
            actor_id=actor_id,
            from_status=rift.status,
            to_status=target,
            reason=reason,
            created_at=now,
        )
    )
    rift.status = target
    rift.updated_at = now
    if target is RiftStatus.FUNDED:
        rift.funded_at = now
    elif target is RiftStatus.PROOF_SUBMITTED:
        rift.proof_submitted_at = now
    elif target is RiftStatus.RELEASED:
        rift.released_at = now
    jobs: list[Job] = []
    if target in transitions.CLEANUP_TARGETS:
        jobs.append(
            new_job(
                session,
                CLEAN_UP_RIFT,
                subject_id=rift.id,
                rift_id=rift.id,
                requested_by=actor_id,
                now=now,
                ids=ids,
            )
        )
    return jobs


def request_transition(
    session: Session,
    rift_id: str,
    user: User,
    target: RiftStatus,
    *,
    expected_version: int | None,
    reason: str,
    now: datetime,
    ids: IdFactory,
) -> tuple[Rift, list[Job]]:
    """Apply a transition a user asked for over the API."""
    rift = load_rift(session, rift_id, user, for_update=True)
    if expected_version is not None and expected_version != rift.version:
        raise VersionConflict(
            f"rift {rift_id} is at version {rift.version}, not {expected_version}; "
            "reload it and try again"
        )
    if target in transitions.PROOF_ONLY_TARGETS:
        raise Forbidden(
            f"{target.value} is reached by submitting proof to /api/rifts/{rift_id}/proofs"
        )
    role = user.relation_to(rift)
    assert role is not None  # load_rift guarantees a relation
    jobs = transition(
        session, rift, target, role=role, actor_id=user.id, reason=reason, now=now, ids=ids
    )
    session.flush()
    return rift, jobs
