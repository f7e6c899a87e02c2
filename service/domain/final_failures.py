"""Compensate a job that will never succeed, as its kind declares (`JobKind.on_final_failure`)."""

from __future__ import annotations

from dataclasses import dataclass

from service.db import SessionFactory, transaction
from service.domain.clock import Clock, IdFactory, as_utc
from service.domain.queues import JobKind, OnFinalFailure
from service.domain.rifts import transition
from service.domain.verdicts import FinalVerdict, VerdictRules
from service.domain.verification import is_latest_proof, record_scan, scan_note
from service.models import ActorRole, Proof, Rift, RiftStatus, ScanStatus

# Proof.verdict_reasons entry and rift event reason of a proof no check could finish.
VERIFICATION_FAILED = "verification_failed"


@dataclass(frozen=True)
class CompensationServices:
    """What a compensation may use: the database and the verdict rules, nothing of a worker."""

    sessions: SessionFactory
    rules: VerdictRules
    clock: Clock
    ids: IdFactory


@dataclass(frozen=True)
class Compensated:
    """What a compensation changed, for the caller's metrics."""

    verdict: FinalVerdict | None = None
    #: The scan status a compensation recorded for a file, if it recorded one.
    scan_status: ScanStatus | None = None


def compensate_final_failure(
    kind: JobKind, services: CompensationServices, subject_id: str, error: str | None
) -> Compensated:
    """Run the compensation kind declares for its job on subject_id, which finally failed."""
    if kind.on_final_failure is OnFinalFailure.MARK_FILE_UNSCANNABLE:
        return give_up_scan(services, subject_id, error)
    if kind.on_final_failure is OnFinalFailure.SEND_PROOF_TO_REVIEW:
        return give_up_verification(services, subject_id, error)
    return Compensated()


def give_up_verification(
    services: CompensationServices, proof_id: str, error: str | None
) -> Compensated:
    """The checks will never finish: decide the proof "to review" with the reason, once.

    Under the proof's lock, like every verdict: if one was decided meanwhile (a late
    attempt succeeded), nothing changes. The rift moves to UNDER_REVIEW as SYSTEM.
    """
    reason = f"verification could not finish: {error or 'no error recorded'}"
    with transaction(services.sessions) as session:
        proof = session.get(Proof, proof_id, with_for_update=True)
        if proof is None or proof.verdict_at is not None:
            return Compensated()
        rift = session.get_one(Rift, proof.rift_id, with_for_update=True)
        now = services.clock()
        proof.verdict_at = now
        proof.passed = False
        proof.route_to_review = True
        proof.auto_approved = False
        proof.verdict_reasons = [{"code": VERIFICATION_FAILED, "message": reason}]
        if rift.status is RiftStatus.PROOF_SUBMITTED and is_latest_proof(session, proof):
            transition(
                session,
                rift,
                RiftStatus.UNDER_REVIEW,
                role=ActorRole.SYSTEM,
                actor_id=None,
                reason=reason,
                now=now,
                ids=services.ids,
            )
        verdict = FinalVerdict(
            proof_id=proof.id,
            rift_id=rift.id,
            passed=False,
            route_to_review=True,
            auto_approved=False,
            submitted_at=as_utc(proof.submitted_at),
            decided_at=now,
        )
    return Compensated(verdict=verdict)


def give_up_scan(services: CompensationServices, asset_id: str, error: str | None) -> Compensated:
    """Retries ran out: the file is unscannable, which sends its proof to review."""
    _, verdict = record_scan(
        services.sessions,
        asset_id,
        ScanStatus.ERROR,
        scan_note(f"scan failed: {error}"),
        services.rules,
        on_infected=lambda _asset: None,
        clock=services.clock,
        ids=services.ids,
    )
    return Compensated(verdict=verdict, scan_status=ScanStatus.ERROR)
