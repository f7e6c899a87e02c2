"""A verification that finally fails still ends the proof: to review, with the reason, once."""

from __future__ import annotations

from sqlalchemy import select

from service.domain.clock import new_id, utcnow
from service.domain.final_failures import (
    VERIFICATION_FAILED,
    CompensationServices,
    compensate_final_failure,
)
from service.domain.queues import VERIFY_PROOF
from service.domain.verdicts import ReleasePolicy, VerdictRules
from service.models import ActorRole, Proof, Rift, RiftEvent, RiftStatus
from tests.support.flows import funded_rift, submit

ERROR = "TimeoutError: clamd did not answer"


def test_a_dead_verification_sends_the_proof_to_review_as_system_once(
    client, auth, settings, sessions
):
    # Given a submitted proof whose verification job will never succeed
    rift = funded_rift(client, auth)
    submitted = submit(client, auth, rift["id"], fields={"tracking_number": "1Z999AA10123456784"})
    assert submitted.status_code == 202, submitted.text
    proof_id = submitted.json["proof_id"]
    services = CompensationServices(
        sessions,
        VerdictRules(thresholds=settings.thresholds(), release=ReleasePolicy()),
        utcnow,
        new_id,
    )

    # When its final failure is compensated (twice: the worker, then the reconciler)
    first = compensate_final_failure(VERIFY_PROOF, services, proof_id, ERROR)
    second = compensate_final_failure(VERIFY_PROOF, services, proof_id, ERROR)

    # Then the proof has a verdict "to review" that says why, decided once
    assert first.verdict is not None and first.verdict.route_to_review
    assert second.verdict is None
    with sessions() as session:
        proof = session.get_one(Proof, proof_id)
        assert proof.verdict_at is not None
        assert proof.route_to_review is True and proof.passed is False
        assert proof.verdict_reasons == [
            {"code": VERIFICATION_FAILED, "message": f"verification could not finish: {ERROR}"}
        ]
        # And the rift is under review, moved by the system, with one event
        assert session.get_one(Rift, rift["id"]).status is RiftStatus.UNDER_REVIEW
        moves = session.scalars(
            select(RiftEvent).where(
                RiftEvent.rift_id == rift["id"], RiftEvent.to_status == RiftStatus.UNDER_REVIEW
            )
        ).all()
        assert len(moves) == 1
        assert moves[0].actor_role is ActorRole.SYSTEM
        assert ERROR in moves[0].reason
