"""Rifts: creation, access and the one way their status changes."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BindParameter, select
from sqlalchemy.orm import Session

from service.domain import transitions
from service.domain.clock import IdFactory
from service.domain.currencies import is_iso_4217
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

MAX_SUBTOTAL_MINOR = 10**13
MAX_TITLE_CHARS = 200
#: The rifts table's buyer_id / seller_id columns (and the event log's actor_id).
MAX_USER_ID_CHARS = 64
MAX_REASON_CHARS = 500
# Bidirectional formatting characters (Unicode category Cf) make a title read differently
# from what is stored ("Trojan Source"); they and control characters are refused.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def check_title(title: str) -> None:
    """Refuse a title that is empty, too long, or carries control or bidi characters."""
    if not title.strip() or len(title) > MAX_TITLE_CHARS:
        raise InvalidInput(f"title must be 1-{MAX_TITLE_CHARS} characters", field="title")
    if any(unicodedata.category(ch) == "Cc" or ch in BIDI_CONTROLS for ch in title):
        raise InvalidInput(
            "title must not contain control characters (NUL, BEL, line breaks) or "
            "bidirectional overrides; send plain text",
            field="title",
        )


@dataclass(frozen=True)
class NewRift:
    title: str
    item_type: ItemType
    seller_id: str
    subtotal_minor: int
    currency: str

    def __post_init__(self) -> None:
        check_title(self.title)
        if not 0 < self.subtotal_minor <= MAX_SUBTOTAL_MINOR:
            raise InvalidInput(
                "subtotal must be a positive amount in minor units", field="subtotal"
            )
        if not is_iso_4217(self.currency.upper()):
            raise InvalidInput(
                f"currency must be a 3-letter ISO 4217 code such as USD or EUR, "
                f"not {self.currency[:8]!r}",
                field="currency",
            )
        if not self.seller_id.strip() or len(self.seller_id) > MAX_USER_ID_CHARS:
            raise InvalidInput(
                f"seller_id must be a user id of 1-{MAX_USER_ID_CHARS} characters",
                field="seller_id",
            )


@dataclass(frozen=True)
class RiskAssessment:
    """The platform's view of a rift's risk: only an admin (or a server-side rule) sets it."""

    risk_score: int
    requires_manual_review: bool
    reason: str

    def __post_init__(self) -> None:
        if not 0 <= self.risk_score <= 100:
            raise InvalidInput("risk_score must be between 0 and 100", field="risk_score")
        if not self.reason.strip() or len(self.reason) > MAX_REASON_CHARS:
            raise InvalidInput(
                f"reason must be 1-{MAX_REASON_CHARS} characters: say why the risk changed",
                field="reason",
            )


def system_note_row(rift_id: str, kind: str, reason: str, now: datetime) -> dict[str, object]:
    """The event-log row of something the system records without changing the status."""
    return {
        "rift_id": rift_id,
        "actor_role": ActorRole.SYSTEM,
        "actor_id": None,
        "from_status": None,
        "to_status": None,
        "kind": kind,
        "reason": reason,
        "created_at": now,
    }


def system_note(rift_id: str, kind: str, reason: str, now: datetime) -> RiftEvent:
    """An event the system records on a rift without changing its status."""
    return RiftEvent(**system_note_row(rift_id, kind, reason, now))


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
        # Risk is the platform's: a new rift starts neutral, an admin assesses it.
        risk_score=0,
        requires_manual_review=False,
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


def assess_risk(
    session: Session, rift_id: str, admin: User, assessment: RiskAssessment, *, now: datetime
) -> Rift:
    """Set the rift's risk inputs (admin only) and record who changed what in its log."""
    if not admin.is_admin:
        raise Forbidden("only an admin sets a rift's risk")
    rift = load_rift(session, rift_id, admin, for_update=True)
    changes = (
        f"risk_score {rift.risk_score} -> {assessment.risk_score}, requires_manual_review "
        f"{str(rift.requires_manual_review).lower()} -> "
        f"{str(assessment.requires_manual_review).lower()}"
    )
    rift.risk_score = assessment.risk_score
    rift.requires_manual_review = assessment.requires_manual_review
    rift.updated_at = now
    session.add(
        RiftEvent(
            rift_id=rift.id,
            actor_role=ActorRole.ADMIN,
            actor_id=admin.id,
            from_status=None,
            to_status=None,
            kind="risk_assessed",
            reason=f"{changes}: {assessment.reason.strip()}",
            created_at=now,
        )
    )
    session.flush()
    return rift


def rift_events(session: Session, rift_id: str, user: User) -> list[RiftEvent]:
    """Return the rift's event log, oldest first, if the user may see the rift."""
    load_rift(session, rift_id, user)
    return list(
        session.scalars(
            select(RiftEvent).where(RiftEvent.rift_id == rift_id).order_by(RiftEvent.id)
        )
    )


def check_transition(status: RiftStatus, target: RiftStatus, role: ActorRole) -> None:
    """Refuse a move the transition table does not allow this role, naming what it allows."""
    if not transitions.is_allowed(status, target, role):
        allowed = [s.value for s in transitions.allowed_targets(status, role)]
        raise TransitionNotAllowed(
            f"a {role.value.lower()} cannot move a rift from {status.value} to {target.value}",
            allowed=allowed,
        )


def transition_values(
    target: RiftStatus, now: datetime | BindParameter[datetime]
) -> dict[str, object]:
    """The rift columns a move to target sets (besides its version); now may be a bind."""
    values: dict[str, object] = {"status": target, "updated_at": now}
    if target is RiftStatus.FUNDED:
        values["funded_at"] = now
    elif target is RiftStatus.PROOF_SUBMITTED:
        values["proof_submitted_at"] = now
    elif target is RiftStatus.RELEASED:
        values["released_at"] = now
    return values


def transition_event(
    rift_id: str,
    status: RiftStatus,
    target: RiftStatus,
    *,
    role: ActorRole,
    actor_id: str | None,
    reason: str,
    now: datetime,
) -> dict[str, object]:
    """The event-log row of a move from status to target."""
    return {
        "rift_id": rift_id,
        "actor_role": role,
        "actor_id": actor_id,
        "from_status": status,
        "to_status": target,
        "kind": "transition",
        "reason": reason,
        "created_at": now,
    }


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
    check_transition(rift.status, target, role)
    session.add(
        RiftEvent(
            **transition_event(
                rift.id, rift.status, target, role=role, actor_id=actor_id, reason=reason, now=now
            )
        )
    )
    for column, value in transition_values(target, now).items():
        setattr(rift, column, value)
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


def lock_rift_at_version(
    session: Session, rift_id: str, user: User, expected_version: int | None, *, then: str
) -> Rift:
    """Load the rift for update; a version other than the caller's is a VersionConflict."""
    rift = load_rift(session, rift_id, user, for_update=True)
    if expected_version is not None and expected_version != rift.version:
        raise VersionConflict(
            f"rift {rift_id} is at version {rift.version}, not {expected_version}; {then}"
        )
    return rift


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
    rift = lock_rift_at_version(
        session, rift_id, user, expected_version, then="reload it and try again"
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
