"""Proof submission: one transaction for the proof, its assets, its jobs and the transition."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from service.blobs import StoredBlob
from service.domain.asset_rows import asset_rows
from service.domain.clock import IdFactory
from service.domain.errors import Forbidden, IdempotencyKeyReused, InvalidInput, NotFound
from service.domain.jobs import new_job
from service.domain.queues import SCAN_ASSET, VERIFY_PROOF
from service.domain.rifts import load_rift, transition
from service.domain.users import User
from service.models import (
    ActorRole,
    Asset,
    AssetType,
    Job,
    Proof,
    Rift,
    RiftStatus,
)

MAX_FIELD_CHARS = {"license_key": 1_000, "tracking_number": 200, "url": 2_048, "text": 20_000}
MAX_IDEMPOTENCY_KEY_CHARS = 128


def check_idempotency_key(key: str) -> None:
    """Refuse an Idempotency-Key the proofs table cannot hold (its column's length)."""
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} characters",
            field="Idempotency-Key",
        )


class KeySealer(Protocol):
    """Encrypts license keys at rest and fingerprints them for reuse detection."""

    def encrypt(self, key: str) -> bytes: ...

    def fingerprint(self, key: str) -> str: ...


@dataclass(frozen=True)
class UploadedFile:
    blob: StoredBlob
    original_name: str
    declared_mime: str | None
    sniffed_mime: str


@dataclass(frozen=True)
class ProofSubmission:
    files: Sequence[UploadedFile] = ()
    license_key: str | None = None
    tracking_number: str | None = None
    url: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        for name, limit in MAX_FIELD_CHARS.items():
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise InvalidInput(f"{name} is longer than {limit} characters", field=name)
        if not self.files and not any(
            (self.license_key, self.tracking_number, self.url, self.text)
        ):
            raise InvalidInput(
                "proof needs at least one of: files, license_key, tracking_number, url, text"
            )

    def fingerprint(self) -> str:
        """Hash what was submitted, so a reused Idempotency-Key with other content is caught."""
        canonical = {
            "files": [[f.blob.sha256, f.original_name] for f in self.files],
            "license_key": self.license_key,
            "tracking_number": self.tracking_number,
            "url": self.url,
            "text": self.text,
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class SubmissionReceipt:
    proof_id: str
    verification_job_id: str
    asset_ids: list[str]
    jobs: list[Job] = field(default_factory=list)
    replayed: bool = False


def find_replay(
    session: Session, rift_id: str, idempotency_key: str, fingerprint: str
) -> SubmissionReceipt | None:
    """Return the earlier receipt for this Idempotency-Key, or None if there is none."""
    proof = session.scalars(
        select(Proof).where(Proof.rift_id == rift_id, Proof.idempotency_key == idempotency_key)
    ).one_or_none()
    if proof is None:
        return None
    if proof.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different proof on this rift; "
            "use a new key for a new submission"
        )
    return SubmissionReceipt(
        proof_id=proof.id,
        verification_job_id=proof.verification_job_id,
        asset_ids=[asset.id for asset in proof.assets],
        replayed=True,
    )


@dataclass(frozen=True)
class VerificationSnapshot:
    """A rift with its latest proof and that proof's verification job, read together."""

    rift: Rift
    proof: Proof | None
    job: Job | None


def latest_verification(session: Session, rift_id: str, user: User) -> VerificationSnapshot:
    """Read where verification of the rift's latest proof stands, if the user may see it."""
    rift = load_rift(session, rift_id, user)
    proof = session.scalars(
        select(Proof).where(Proof.rift_id == rift_id).order_by(Proof.submitted_at.desc()).limit(1)
    ).one_or_none()
    if proof is not None and proof.verdict_at is not None:
        # The verdict and the rift's move commit together; the rift read above may
        # predate both, so read it again to show them side by side.
        session.refresh(rift)
    job = session.get(Job, proof.verification_job_id) if proof else None
    return VerificationSnapshot(rift=rift, proof=proof, job=job)


def authorise_submission(session: Session, rift_id: str, user: User) -> None:
    """Refuse early whoever may not submit proof to this rift: one read of two columns.

    The same answers as load_rift plus the seller check (not theirs: 404, as if missing;
    the buyer or an admin: 403) without loading the rift; submit_proof checks again under
    the row lock, so this only has to be cheap and agree with it.
    """
    row = (
        session.connection()
        .execute(select(Rift.buyer_id, Rift.seller_id).where(Rift.id == rift_id))
        .one_or_none()
    )
    if row is None or (user.id not in (row.buyer_id, row.seller_id) and not user.is_admin):
        raise NotFound(f"no rift {rift_id}")
    if row.seller_id != user.id:
        raise Forbidden("only the rift's seller can submit proof")


def submit_proof(
    session: Session,
    rift_id: str,
    seller: User,
    submission: ProofSubmission,
    *,
    idempotency_key: str | None,
    sealer: KeySealer,
    now: datetime,
    ids: IdFactory,
) -> SubmissionReceipt:
    """Store a seller's proof and everything that follows from it, in the caller's transaction."""
    rift = load_rift(session, rift_id, seller, for_update=True)
    if seller.relation_to(rift) is not ActorRole.SELLER:
        raise Forbidden("only the rift's seller can submit proof")
    fingerprint = submission.fingerprint()
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
        replay = find_replay(session, rift_id, idempotency_key, fingerprint)
        if replay is not None:
            return replay

    transition(
        session,
        rift,
        RiftStatus.PROOF_SUBMITTED,
        role=ActorRole.SELLER,
        actor_id=seller.id,
        reason="seller submitted proof",
        now=now,
        ids=ids,
    )
    rift.proof_valid = None
    rift.auto_release_at = None

    proof_id = ids()
    assets = asset_rows(proof_id, rift.id, submission, sealer, now, ids)
    jobs = _proof_jobs(session, rift.id, proof_id, assets, seller.id, now, ids)
    verification = jobs[0]
    session.flush()  # the rift, its event and the jobs, through the ORM
    # The proof and its assets are only ever inserted here: plain INSERTs on the session's
    # connection skip the unit of work's per-object bookkeeping.
    conn = session.connection()
    conn.execute(
        insert(Proof),
        [
            {
                "id": proof_id,
                "rift_id": rift.id,
                "submitted_by": seller.id,
                "submitted_at": now,
                "idempotency_key": idempotency_key,
                "request_fingerprint": fingerprint,
                "verification_job_id": verification.id,
            }
        ],
    )
    if assets:
        conn.execute(insert(Asset), assets)
    return SubmissionReceipt(
        proof_id=proof_id,
        verification_job_id=verification.id,
        asset_ids=[asset["id"] for asset in assets],
        jobs=jobs,
    )


def _proof_jobs(
    session: Session,
    rift_id: str,
    proof_id: str,
    assets: Sequence[dict[str, Any]],
    seller_id: str,
    now: datetime,
    ids: IdFactory,
) -> list[Job]:
    """The proof's verification job first, then one scan job per file asset."""
    subjects = [(VERIFY_PROOF, proof_id)] + [
        (SCAN_ASSET, asset["id"]) for asset in assets if asset["type"] is AssetType.FILE
    ]
    return [
        new_job(
            session,
            kind,
            subject_id=subject_id,
            rift_id=rift_id,
            proof_id=proof_id,
            requested_by=seller_id,
            now=now,
            ids=ids,
        )
        for kind, subject_id in subjects
    ]
