"""From per-asset checks and scans to one verdict per proof, decided exactly once."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from service.db import SessionFactory, transaction
from service.domain.clock import Clock, IdFactory, as_utc
from service.domain.inspector import AssetContent, AssetInspector, InspectedAsset
from service.domain.jobs import PermanentJobError
from service.domain.rifts import system_note, transition
from service.domain.verdicts import FinalVerdict, VerdictRules
from service.models import (
    ActorRole,
    Asset,
    ImageHashBand,
    Proof,
    Rift,
    RiftEvent,
    RiftStatus,
    ScanStatus,
)
from service.verification.issues import (
    UNSCANNED_CONTENT_CODES,
    AssetCheck,
    Deduction,
    Issue,
)
from service.verification.thresholds import VerificationThresholds
from service.verification.verdict import AssetVerdictInput, RiftRisk, decide


def check_proof(
    sessions: SessionFactory,
    proof_id: str,
    inspect: AssetInspector,
    rules: VerdictRules,
    *,
    clock: Clock,
    ids: IdFactory,
) -> tuple[dict[str, Any], FinalVerdict | None]:
    """Check every asset of a proof, store the results, and decide if the scans are done.

    Files are parsed with no session open (on SQLite an open transaction holds the write
    lock, so the API, the scans and the job records would wait on the parsing); what the
    checks need is read first in a short session, and the results are written under the
    proof's lock in a short transaction, so a redelivered message rewrites the same results
    and the verdict is still decided once.
    """
    with sessions() as session:
        proof = session.get(Proof, proof_id)
        if proof is None:
            raise ProofMissing(f"no proof {proof_id}")
        uploaded_at = as_utc(proof.submitted_at)
        contents = (
            []
            if proof.checks_done_at is not None
            else [AssetContent.of(a, uploaded_at) for a in proof.assets if a.deleted_at is None]
        )

    examined = dict(zip((c.id for c in contents), _examine_all(inspect, contents), strict=True))

    with transaction(sessions) as session:
        proof = _lock_proof(session, proof_id)
        now = clock()
        if proof.checks_done_at is None:
            for asset in proof.assets:
                found = examined.get(asset.id)
                if found is not None:
                    _store_check(session, asset, inspect.cross_check(session, asset, found), now)
            proof.checks_done_at = now
        verdict = finalize_if_complete(session, proof, rules, now=now, ids=ids)
        return _job_result(proof, verdict), verdict


# Files are each checked in a child process of their own (service/verification/budget.py),
# so a proof's files checked at once overlap instead of queueing; at most this many, as
# each child may use the per-file memory budget.
FILES_CHECKED_AT_ONCE = 2


def _examine_all(inspect: AssetInspector, contents: list[AssetContent]) -> list[InspectedAsset]:
    """Examine every asset, FILES_CHECKED_AT_ONCE at a time; an infrastructure error raises."""
    if len(contents) <= 1:
        return [inspect.examine(content) for content in contents]
    with ThreadPoolExecutor(
        max_workers=min(FILES_CHECKED_AT_ONCE, len(contents)), thread_name_prefix="examine"
    ) as pool:
        return list(pool.map(inspect.examine, contents))


def record_scan(
    sessions: SessionFactory,
    asset_id: str,
    status: ScanStatus,
    signature: str | None,
    rules: VerdictRules,
    *,
    on_infected: Callable[[Asset], None],
    clock: Clock,
    ids: IdFactory,
    proof_id: str | None = None,
) -> tuple[dict[str, Any], FinalVerdict | None]:
    """Store a scan verdict for a file asset; decide the proof's verdict if it was the last.

    `proof_id`, the asset's proof, saves a read when the caller has it (an asset never
    moves to another proof).
    """
    if proof_id is None:
        with sessions() as session:
            asset = session.get(Asset, asset_id)
            if asset is None:
                raise ProofMissing(f"no asset {asset_id}")
            proof_id = asset.proof_id
    with transaction(sessions) as session:
        proof = _lock_proof(session, proof_id)
        asset = session.get_one(Asset, asset_id)
        now = clock()
        if asset.scan_status is ScanStatus.PENDING:
            asset.scan_status = status
            asset.scan_signature = signature
            asset.scanned_at = now
            _distrust_partial_clean(asset)
            if status is ScanStatus.INFECTED:
                on_infected(asset)
                asset.quarantined_at = now
                session.add(
                    system_note(
                        asset.rift_id,
                        "asset_quarantined",
                        f"asset {asset.id} infected ({signature}); quarantined",
                        now,
                    )
                )
        verdict = finalize_if_complete(session, proof, rules, now=now, ids=ids)
        result = {
            "asset_id": asset.id,
            "scan_status": asset.scan_status.value,
            "signature": asset.scan_signature,
        }
        return result, verdict


# Asset.scan_signature is String(200): a signature name, or why a file is unscannable.
SCAN_NOTE_MAX_CHARS = 200


def scan_note(text: str | None) -> str | None:
    """Fit a signature or an error to the asset's column (PostgreSQL refuses longer text)."""
    if text is None or len(text) <= SCAN_NOTE_MAX_CHARS:
        return text
    return text[: SCAN_NOTE_MAX_CHARS - 1] + "…"


class ProofMissing(PermanentJobError):
    """The proof or asset a job names does not exist (deleted or never committed)."""


def _lock_proof(session: Session, proof_id: str) -> Proof:
    proof = session.get(Proof, proof_id, with_for_update=True)
    if proof is None:
        raise ProofMissing(f"no proof {proof_id}")
    return proof


def _distrust_partial_clean(asset: Asset) -> None:
    """A CLEAN scan of a file whose check found parts the scanner skips is no CLEAN.

    clamd passes over archive members larger than its MaxFileSize without a word; the zip
    rule names them, and whichever of the check and the scan lands second makes it ERROR.
    """
    if asset.scan_status is ScanStatus.CLEAN and any(
        issue["code"] in UNSCANNED_CONTENT_CODES for issue in asset.issues
    ):
        asset.scan_status = ScanStatus.ERROR
        asset.scan_signature = "part of the file is over the scanner's size limit, unscanned"


def _store_check(session: Session, asset: Asset, found: InspectedAsset, now: datetime) -> None:
    asset.checked_at = now
    asset.score = found.check.score
    asset.integrity_ok = found.check.integrity_ok
    asset.passed = found.check.passed
    asset.issues = [issue.to_dict() for issue in found.check.issues]
    asset.deductions = [d.to_dict() for d in found.check.deductions]
    _distrust_partial_clean(asset)
    if found.sniffed_mime:
        asset.sniffed_mime = found.sniffed_mime
    if found.phash is not None:
        # The bands are written with the hash, in one transaction: an asset without a hash
        # has none, and only a re-check could find a copy to keep.
        had_hash = asset.phash is not None
        asset.phash = found.phash
        if not had_hash or not session.scalar(
            select(exists().where(ImageHashBand.asset_id == asset.id))
        ):
            session.add_all(
                ImageHashBand(
                    asset_id=asset.id, band_no=no, band_value=value, rift_id=asset.rift_id
                )
                for no, value in enumerate(found.phash_bands)
            )


def finalize_if_complete(
    session: Session, proof: Proof, rules: VerdictRules, *, now: datetime, ids: IdFactory
) -> FinalVerdict | None:
    """Decide the proof's verdict once its checks and every file scan are in.

    The caller holds the proof's lock; whichever of the check and the scans finishes
    last gets here with everything in place, and verdict_at makes the decision once-only.
    """
    if proof.verdict_at is not None or proof.checks_done_at is None:
        return None
    live = [a for a in proof.assets if a.deleted_at is None]
    if any(a.scan_status is ScanStatus.PENDING for a in live):
        return None
    rift = session.get_one(Rift, proof.rift_id, with_for_update=True)
    verdict = decide(
        [
            AssetVerdictInput(check=stored_check(a, rules.thresholds), scan_status=a.scan_status)
            for a in live
        ],
        RiftRisk(
            risk_score=rift.risk_score,
            requires_manual_review=rift.requires_manual_review,
            subtotal_minor=rift.subtotal_minor,
        ),
        rules.thresholds,
    )
    proof.verdict_at = now
    proof.passed = verdict.passed
    proof.route_to_review = verdict.route_to_review
    proof.auto_approved = verdict.auto_approved
    proof.verdict_reasons = [reason.to_dict() for reason in verdict.reasons]

    # Only the newest proof of a rift still in PROOF_SUBMITTED moves the rift: a verdict
    # on superseded proof, or on a rift cancelled meanwhile, is recorded and nothing more.
    if rift.status is RiftStatus.PROOF_SUBMITTED and is_latest_proof(session, proof):
        if verdict.route_to_review:
            transition(
                session,
                rift,
                RiftStatus.UNDER_REVIEW,
                role=ActorRole.SYSTEM,
                actor_id=None,
                reason="verification: " + "; ".join(r.message for r in verdict.reasons),
                now=now,
                ids=ids,
            )
        else:
            rift.proof_valid = True
            rift.updated_at = now
            if verdict.auto_approved:
                rift.auto_release_at = now + rules.release.release_delay(rift.item_type)
            session.add(
                RiftEvent(
                    rift_id=rift.id,
                    actor_role=ActorRole.SYSTEM,
                    actor_id=None,
                    from_status=rift.status,
                    to_status=rift.status,
                    kind="proof_verified",
                    reason=(
                        f"auto-approved; auto release at {rift.auto_release_at.isoformat()}"
                        if rift.auto_release_at
                        else "proof passed verification; awaiting buyer"
                    ),
                    created_at=now,
                )
            )
    return FinalVerdict(
        proof_id=proof.id,
        rift_id=rift.id,
        passed=verdict.passed,
        route_to_review=verdict.route_to_review,
        auto_approved=verdict.auto_approved,
        submitted_at=as_utc(proof.submitted_at),
        decided_at=now,
    )


def stored_check(asset: Asset, thresholds: VerificationThresholds) -> AssetCheck:
    """Rebuild an asset's check from its stored columns."""
    return AssetCheck(
        score=asset.score or 0,
        issues=tuple(Issue(i["code"], i["message"]) for i in asset.issues),
        integrity_ok=bool(asset.integrity_ok),
        deductions=tuple(Deduction(d["code"], d["message"], d["points"]) for d in asset.deductions),
        pass_score=thresholds.pass_score,
    )


def is_latest_proof(session: Session, proof: Proof) -> bool:
    """Whether no later proof was submitted to the rift (only the newest moves it)."""
    newer = (
        select(Proof.id)
        .where(Proof.rift_id == proof.rift_id, Proof.submitted_at > proof.submitted_at)
        .limit(1)
    )
    return session.scalar(newer) is None


def _job_result(proof: Proof, verdict: FinalVerdict | None) -> dict[str, Any]:
    waiting = [a.id for a in proof.assets if a.scan_status is ScanStatus.PENDING]
    return {
        "proof_id": proof.id,
        "checked_assets": len(proof.assets),
        "verdict": None
        if proof.verdict_at is None
        else {
            "passed": proof.passed,
            "route_to_review": proof.route_to_review,
            "auto_approved": proof.auto_approved,
        },
        "waiting_for_scans": waiting,
        "decided_now": verdict is not None,
    }
