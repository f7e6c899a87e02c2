"""Where a rift's latest proof stands, read once for the seller's page and its polling."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.proofs import latest_verification
from service.domain.users import User
from service.models import ActorRole, Job, Proof, Rift, RiftEvent, RiftStatus

# The statuses from which the seller may (re)submit proof, by the transition table.
SUBMITTABLE_STATUSES = frozenset({RiftStatus.FUNDED, RiftStatus.UNDER_REVIEW})


@dataclass(frozen=True)
class ProofProgress:
    rift: Rift
    proof: Proof | None
    job: Job | None
    events: list[RiftEvent]
    viewer: User
    viewer_role: ActorRole

    @property
    def seller_may_submit(self) -> bool:
        return self.viewer_role is ActorRole.SELLER and self.rift.status in SUBMITTABLE_STATUSES

    def fingerprint(self) -> str:
        """A digest of everything the page shows: equal digests render the same page."""
        parts: list[object] = [
            self.viewer.id,
            self.viewer_role.value,
            self.rift.version,
            self.rift.status.value,
            self.rift.auto_release_at,
            self.events[-1].id if self.events else None,
        ]
        if self.proof is not None:
            parts += [self.proof.id, self.proof.verdict_at, self.proof.checks_done_at]
            parts += [
                (a.id, a.scan_status.value, a.checked_at, a.deleted_at) for a in self.proof.assets
            ]
        if self.job is not None:
            parts += [self.job.state.value, self.job.attempts, self.job.updated_at]
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def load_proof_progress(session: Session, rift_id: str, user: User) -> ProofProgress:
    """Read the rift, its latest proof, that proof's job and the event log; else NotFound."""
    snapshot = latest_verification(session, rift_id, user)
    rift, proof, job = snapshot.rift, snapshot.proof, snapshot.job
    events = list(
        session.scalars(
            select(RiftEvent).where(RiftEvent.rift_id == rift_id).order_by(RiftEvent.id)
        )
    )
    role = user.relation_to(rift)
    assert role is not None  # load_rift guarantees a relation
    return ProofProgress(rift, proof, job, events, user, role)
