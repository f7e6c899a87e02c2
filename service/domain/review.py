"""Human review: the rifts waiting for a person, and the decisions an operator takes on them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.clock import IdFactory
from service.domain.errors import InvalidInput, VersionConflict
from service.domain.operator_actions import record_action
from service.domain.rifts import lock_rift_at_version, transition
from service.domain.users import User
from service.models import ActorRole, Job, Proof, Rift, RiftEvent, RiftStatus

MAX_REASON_CHARS = 500
NEW_PROOF_REQUESTED = "new_proof_requested"


class ReviewDecision(enum.StrEnum):
    RELEASE = "release"
    REFUND = "refund"
    REQUEST_NEW_PROOF = "request_new_proof"


DECISION_TARGETS = {
    ReviewDecision.RELEASE: RiftStatus.RELEASED,
    ReviewDecision.REFUND: RiftStatus.REFUNDED,
}


@dataclass(frozen=True)
class ReviewItem:
    rift: Rift
    proof: Proof | None


def review_queue(session: Session, *, limit: int = 50) -> list[ReviewItem]:
    """Rifts UNDER_REVIEW, the longest waiting first, each with its latest proof."""
    rifts = list(
        session.scalars(
            select(Rift)
            .where(Rift.status == RiftStatus.UNDER_REVIEW)
            # The move to review is the rift's last update while it waits there.
            .order_by(Rift.updated_at, Rift.id)
            .limit(limit)
        )
    )
    items = []
    for rift in rifts:
        proof = session.scalars(
            select(Proof)
            .where(Proof.rift_id == rift.id)
            .order_by(Proof.submitted_at.desc())
            .limit(1)
        ).one_or_none()
        items.append(ReviewItem(rift, proof))
    return items


def decide_review(
    session: Session,
    rift_id: str,
    operator: User,
    decision: ReviewDecision,
    *,
    reason: str,
    expected_version: int | None,
    now: datetime,
    ids: IdFactory,
) -> tuple[Rift, list[Job]]:
    """Release, refund, or ask the seller for new proof; logged on the rift and as an action."""
    rift = lock_rift_at_version(
        session,
        rift_id,
        operator,
        expected_version,
        then="it changed since you loaded it: reload the review queue and decide again",
    )
    if rift.status is not RiftStatus.UNDER_REVIEW:
        raise VersionConflict(
            f"rift {rift_id} is {rift.status.value}, no longer under review; reload the queue"
        )
    reason = reason.strip()[:MAX_REASON_CHARS]
    jobs: list[Job] = []
    target = DECISION_TARGETS.get(decision)
    if target is not None:
        jobs = transition(
            session,
            rift,
            target,
            role=ActorRole.ADMIN,
            actor_id=operator.id,
            reason=reason or f"{decision.value} after review",
            now=now,
            ids=ids,
        )
    else:
        if not reason:
            raise InvalidInput("say what the seller should send instead", field="reason")
        # The rift stays UNDER_REVIEW, from where the seller may submit again.
        session.add(
            RiftEvent(
                rift_id=rift.id,
                actor_role=ActorRole.ADMIN,
                actor_id=operator.id,
                from_status=None,
                to_status=None,
                kind=NEW_PROOF_REQUESTED,
                reason=reason,
                created_at=now,
            )
        )
    record_action(
        session,
        operator.id,
        decision.value,
        now,
        rift_id=rift.id,
        detail={"reason": reason, "status": rift.status.value},
    )
    session.flush()
    return rift, jobs
