"""Proof submission: one transaction for the proof, its assets, its jobs and the transition."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from service.blobs import StoredBlob
from service.db import pipeline_rest
from service.domain.asset_rows import asset_rows
from service.domain.clock import IdFactory
from service.domain.errors import Forbidden, IdempotencyKeyReused, InvalidInput, NotFound
from service.domain.jobs import NewJob, insert_jobs
from service.domain.queues import SCAN_ASSET, VERIFY_PROOF
from service.domain.rifts import check_transition, load_rift, transition_event, transition_values
from service.domain.users import User
from service.models import (
    ActorRole,
    Asset,
    AssetType,
    Job,
    Proof,
    Rift,
    RiftEvent,
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
    jobs: list[NewJob] = field(default_factory=list)
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


# The submission's statements, built once (building one costs more than running it).
_SUBMITTER = select(Rift.buyer_id, Rift.seller_id).where(Rift.id == bindparam("rift_id"))
# The rift, locked for the submission, with the proof an Idempotency-Key already names.
_LOCK_RIFT = (
    select(
        Rift.buyer_id,
        Rift.seller_id,
        Rift.status,
        select(Proof.id)
        .where(Proof.rift_id == Rift.id, Proof.idempotency_key == bindparam("idempotency_key"))
        .scalar_subquery()
        .label("replay_of"),
    )
    .where(Rift.id == bindparam("rift_id"))
    .with_for_update(of=Rift)
)
# Inline: no RETURNING of generated keys, which pipeline mode could not read back.
_INSERT_EVENT = insert(RiftEvent).inline()
_INSERT_PROOF = insert(Proof).inline()
_INSERT_ASSETS = insert(Asset).inline()
_MOVE_RIFT = (
    update(Rift)
    .where(Rift.id == bindparam("rift_id"))
    .values(
        transition_values(RiftStatus.PROOF_SUBMITTED, bindparam("now", type_=Rift.updated_at.type))
        | {
            "version": Rift.version + 1,
            # A new proof voids the last verdict's outcome until it has its own.
            "proof_valid": None,
            "auto_release_at": None,
        }
    )
)


class _Parties(Protocol):
    @property
    def buyer_id(self) -> str: ...

    @property
    def seller_id(self) -> str: ...


def _check_submitter(row: _Parties | None, rift_id: str, user: User) -> None:
    """Not the user's rift: 404, as if missing; the buyer or an admin: 403."""
    if row is None or (user.id not in (row.buyer_id, row.seller_id) and not user.is_admin):
        raise NotFound(f"no rift {rift_id}")
    if row.seller_id != user.id:
        raise Forbidden("only the rift's seller can submit proof")


def authorise_submission(conn: Connection, rift_id: str, user: User) -> None:
    """Refuse early whoever may not submit proof to this rift: one read of two columns.

    The same answers as the submission gives under the row lock, without the lock or a
    transaction, so a stranger's upload is refused before a byte of it is read.
    """
    _check_submitter(conn.execute(_SUBMITTER, {"rift_id": rift_id}).one_or_none(), rift_id, user)


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
    """Store a seller's proof and everything that follows from it, in the caller's transaction.

    One read (the rift, locked, with any proof its Idempotency-Key names), then writes
    only: on PostgreSQL they travel with the COMMIT in one round trip (`pipeline_rest`).
    The receipt carries the jobs, for the caller to send once this commits.
    """
    fingerprint = submission.fingerprint()
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
    conn = session.connection()
    rift = conn.execute(
        _LOCK_RIFT, {"rift_id": rift_id, "idempotency_key": idempotency_key}
    ).one_or_none()
    _check_submitter(rift, rift_id, seller)
    assert rift is not None
    if rift.replay_of is not None:
        assert idempotency_key is not None
        replay = find_replay(session, rift_id, idempotency_key, fingerprint)
        assert replay is not None  # found under the lock: it cannot have gone
        return replay
    check_transition(rift.status, RiftStatus.PROOF_SUBMITTED, ActorRole.SELLER)

    proof_id = ids()
    assets = asset_rows(proof_id, rift_id, submission, sealer, now, ids)
    pipeline_rest(session)
    jobs = insert_jobs(session, _proof_jobs(rift_id, proof_id, assets, seller.id, now, ids))
    conn.execute(_MOVE_RIFT, {"rift_id": rift_id, "now": now})
    conn.execute(
        _INSERT_EVENT,
        [
            transition_event(
                rift_id,
                rift.status,
                RiftStatus.PROOF_SUBMITTED,
                role=ActorRole.SELLER,
                actor_id=seller.id,
                reason="seller submitted proof",
                now=now,
            )
        ],
    )
    conn.execute(
        _INSERT_PROOF,
        [
            {
                "id": proof_id,
                "rift_id": rift_id,
                "submitted_by": seller.id,
                "submitted_at": now,
                "idempotency_key": idempotency_key,
                "request_fingerprint": fingerprint,
                "verification_job_id": jobs[0].id,
            }
        ],
    )
    if assets:
        conn.execute(_INSERT_ASSETS, assets)
    return SubmissionReceipt(
        proof_id=proof_id,
        verification_job_id=jobs[0].id,
        asset_ids=[asset["id"] for asset in assets],
        jobs=jobs,
    )


def _proof_jobs(
    rift_id: str,
    proof_id: str,
    assets: Sequence[dict[str, Any]],
    seller_id: str,
    now: datetime,
    ids: IdFactory,
) -> list[NewJob]:
    """The proof's verification job first, then one scan job per file asset."""
    subjects = [(VERIFY_PROOF, proof_id)] + [
        (SCAN_ASSET, asset["id"]) for asset in assets if asset["type"] is AssetType.FILE
    ]
    return [
        NewJob.of(
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
