"""The one role-aware transition table: the only authority on who may move a rift where."""

from __future__ import annotations

from collections.abc import Mapping

from service.models import ActorRole, RiftStatus

B, S, A, SYS = ActorRole.BUYER, ActorRole.SELLER, ActorRole.ADMIN, ActorRole.SYSTEM
St = RiftStatus

TRANSITIONS: Mapping[tuple[RiftStatus, RiftStatus], frozenset[ActorRole]] = {
    (St.DRAFT, St.FUNDED): frozenset({B}),
    (St.DRAFT, St.CANCELED): frozenset({B, S, A}),
    (St.FUNDED, St.PROOF_SUBMITTED): frozenset({S}),
    (St.FUNDED, St.CANCELED): frozenset({B, S, A}),
    (St.FUNDED, St.REFUNDED): frozenset({A}),
    (St.PROOF_SUBMITTED, St.UNDER_REVIEW): frozenset({A, SYS}),
    (St.PROOF_SUBMITTED, St.RELEASED): frozenset({B, A, SYS}),
    (St.PROOF_SUBMITTED, St.DISPUTED): frozenset({B}),
    (St.UNDER_REVIEW, St.PROOF_SUBMITTED): frozenset({S}),
    (St.UNDER_REVIEW, St.RELEASED): frozenset({B, A}),
    (St.UNDER_REVIEW, St.DISPUTED): frozenset({B}),
    (St.UNDER_REVIEW, St.REFUNDED): frozenset({A}),
    (St.DISPUTED, St.RESOLVED): frozenset({A}),
    (St.DISPUTED, St.REFUNDED): frozenset({A}),
    (St.RESOLVED, St.RELEASED): frozenset({A}),
    (St.RESOLVED, St.REFUNDED): frozenset({A}),
    (St.RELEASED, St.PAYOUT_SCHEDULED): frozenset({A, SYS}),
    (St.PAYOUT_SCHEDULED, St.PAID_OUT): frozenset({A, SYS}),
}

# Reached only through proof submission, never through the generic transitions endpoint,
# so a status change can never claim proof that was not stored.
PROOF_ONLY_TARGETS = frozenset({St.PROOF_SUBMITTED})

# Entering these ends the deal: the rift's stored proof is deleted by the cleanup job.
CLEANUP_TARGETS = frozenset({St.CANCELED, St.REFUNDED})


def is_allowed(current: RiftStatus, target: RiftStatus, role: ActorRole) -> bool:
    """Say whether role may move a rift from current to target."""
    return role in TRANSITIONS.get((current, target), frozenset())


def allowed_targets(current: RiftStatus, role: ActorRole) -> list[RiftStatus]:
    """List the statuses role may move a rift to from current."""
    return sorted(
        (to for (frm, to), roles in TRANSITIONS.items() if frm == current and role in roles),
        key=list(RiftStatus).index,
    )
