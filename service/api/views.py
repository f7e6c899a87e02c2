"""JSON shapes of the domain's records (snake_case keys, ISO-8601 UTC times)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.domain.clock import as_utc
from service.domain.reconciler import waiting_for_redelivery
from service.models import Asset, Job, JobState, Proof, Rift, RiftEvent, ScanStatus


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


def rift_view(rift: Rift) -> dict[str, Any]:
    return {
        "id": rift.id,
        "title": rift.title,
        "item_type": rift.item_type.value,
        "buyer_id": rift.buyer_id,
        "seller_id": rift.seller_id,
        "subtotal": rift.subtotal_minor,
        "currency": rift.currency,
        "risk_score": rift.risk_score,
        "requires_manual_review": rift.requires_manual_review,
        "status": rift.status.value,
        "version": rift.version,
        "proof_valid": rift.proof_valid,
        "created_at": iso(rift.created_at),
        "funded_at": iso(rift.funded_at),
        "proof_submitted_at": iso(rift.proof_submitted_at),
        "released_at": iso(rift.released_at),
        "auto_release_at": iso(rift.auto_release_at),
    }


def event_view(event: RiftEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "actor_role": event.actor_role.value,
        "actor_id": event.actor_id,
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value if event.to_status else None,
        "reason": event.reason,
        "created_at": iso(event.created_at),
    }


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "actor": job.actor_name,
        "queue": job.queue_name,
        "state": job.state.value,
        "rift_id": job.rift_id,
        "proof_id": job.proof_id,
        "attempts": job.attempts,
        "progress": job.progress,
        "last_error": job.last_error,
        "waiting_for_redelivery": waiting_for_redelivery(job),
        "result": job.result,
        "created_at": iso(job.created_at),
        "dispatched_at": iso(job.dispatched_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "updated_at": iso(job.updated_at),
    }


def asset_view(asset: Asset) -> dict[str, Any]:
    view: dict[str, Any] = {
        "asset_id": asset.id,
        "type": asset.type.value,
        # An infected or unscannable file never reads as passed, whatever its content score.
        "passed": asset.passed and asset.scan_status not in (ScanStatus.INFECTED, ScanStatus.ERROR),
        "score": asset.score,
        "issues": asset.issues,
        "deductions": asset.deductions,
        "scan_status": None
        if asset.scan_status is ScanStatus.NOT_APPLICABLE
        else asset.scan_status.value,
        # Tombstones of a closed deal: every kind of asset says it was deleted.
        "deleted": asset.deleted_at is not None,
    }
    if asset.original_name is not None:
        view.update(
            name=asset.original_name,
            size_bytes=asset.size_bytes,
            sha256=asset.sha256,
            mime_type=asset.sniffed_mime,
            scan_signature=asset.scan_signature,
            quarantined=asset.quarantined_at is not None,
        )
    return view


def verification_status(job: Job | None, proof: Proof | None) -> str:
    """Map the proof and its job onto the five states a seller's UI shows."""
    if proof is None:
        return "not_started"
    if proof.verdict_at is not None:
        return "completed"
    if job is None or job.state in (JobState.PENDING, JobState.QUEUED):
        return "pending"
    if job.state in (JobState.FAILED, JobState.DEAD):
        return "failed"
    return "processing"


def status_view(rift: Rift, proof: Proof | None, job: Job | None) -> dict[str, Any]:
    result = None
    if proof is not None and proof.verdict_at is not None:
        result = {
            "passed": proof.passed,
            "route_to_review": proof.route_to_review,
            "auto_approved": proof.auto_approved,
            "reasons": proof.verdict_reasons or [],
            "decided_at": iso(proof.verdict_at),
            "assets": [asset_view(a) for a in proof.assets],
        }
    return {
        "rift_id": rift.id,
        "rift_status": rift.status.value,
        "proof_id": proof.id if proof else None,
        "status": verification_status(job, proof),
        "job": job_view(job) if job else None,
        "result": result,
        "auto_release_at": iso(rift.auto_release_at),
    }
