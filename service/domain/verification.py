"""From per-asset checks and scans to one verdict per proof, decided exactly once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, insert, select, update
from sqlalchemy.orm import Session

from service.db import SessionFactory, autocommit_reads, pipeline_rest, transaction
from service.domain.clock import Clock, IdFactory, as_utc
from service.domain.inspector import AssetContent, AssetInspector, InspectedAsset, ToCrossCheck
from service.domain.jobs import PermanentJobError
from service.domain.rifts import (
    check_transition,
    system_note_row,
    transition_event,
    transition_values,
)
from service.domain.verdicts import FinalVerdict, VerdictRules
from service.models import (
    ActorRole,
    Asset,
    AssetType,
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
from service.verification.verdict import (
    AssetVerdictInput,
    RiftRisk,
    SubmissionVerdict,
    decide,
)


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
    checks need is read first, in one statement outside any transaction, and the results
    are written under the proof's lock in a short transaction, so a redelivered message
    rewrites the same results and the verdict is still decided once. That transaction
    reads the locked proof with its assets (one statement), the reuse lookups of all of
    them (one), the rift if this decides (two); its writes go with the COMMIT.
    """
    with autocommit_reads(sessions) as conn:
        read = _proof_state(conn.execute(_PROOF_WITH_ASSETS, {"proof_id": proof_id}).all())
    if read is None:
        raise ProofMissing(f"no proof {proof_id}")
    contents = (
        []
        if read.checks_done_at is not None
        else [
            AssetContent.of(a, as_utc(read.submitted_at))
            for a in read.assets
            if a.deleted_at is None
        ]
    )

    examined = dict(zip((c.id for c in contents), _examine_all(inspect, contents), strict=True))

    with transaction(sessions) as session:
        proof = _lock_proof(session, _LOCK_PROOF, {"proof_id": proof_id})
        now = clock()
        checked: list[tuple[StoredAsset, InspectedAsset]] = []
        checking = proof.checks_done_at is None
        if checking:
            to_check = [a for a in proof.assets if a.id in examined]
            cross_checked = inspect.cross_check(
                session,
                proof.rift_id,
                [
                    ToCrossCheck(
                        type=a.type,
                        sha256=a.sha256,
                        key_fingerprint=a.key_fingerprint,
                        quarantined=a.quarantined_at is not None,
                        found=examined[a.id],
                    )
                    for a in to_check
                ],
            )
            checked = list(zip(to_check, cross_checked, strict=True))
            proof = _with_checks(proof, checked, now)
        decision = _decide_if_complete(session, proof, rules, now=now)
        bands = _bands_to_add(session, checked)
        pipeline_rest(session)
        conn = session.connection()
        if checked:
            conn.execute(
                _STORE_CHECK, [_check_values(a, now) for a in proof.assets if a.id in examined]
            )
        if bands:
            conn.execute(_INSERT_BANDS, bands)
        if checking:
            conn.execute(_CHECKS_DONE, {"proof_id": proof.id, "now": now})
        verdict = _store_decision(conn, proof, decision, rules, now=now, ids=ids)
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
    on_infected: Callable[[StoredAsset], None],
    clock: Clock,
    ids: IdFactory,
    proof_id: str | None = None,
) -> tuple[dict[str, Any], FinalVerdict | None]:
    """Store a scan verdict for a file asset; decide the proof's verdict if it was the last.

    One statement locks the asset's proof and reads its assets (`proof_id`, when the caller
    has it, saves looking the proof up by the asset: an asset never moves to another
    proof); the rift is read only if this decides; the writes go with the COMMIT.
    """
    with transaction(sessions) as session:
        if proof_id is None:
            proof = _lock_proof(session, _LOCK_PROOF_OF_ASSET, {"asset_id": asset_id})
        else:
            proof = _lock_proof(session, _LOCK_PROOF, {"proof_id": proof_id})
        asset = next((a for a in proof.assets if a.id == asset_id), None)
        if asset is None:
            raise ProofMissing(f"no asset {asset_id}")
        now = clock()
        scanned = asset.scan_status is ScanStatus.PENDING
        if scanned:
            status, signature = _distrust_partial_clean(status, signature, asset.issues)
            infected = status is ScanStatus.INFECTED
            if infected:
                on_infected(asset)
            asset = replace(
                asset,
                scan_status=status,
                scan_signature=signature,
                quarantined_at=now if infected else asset.quarantined_at,
            )
            proof = replace(proof, assets=[asset if a.id == asset_id else a for a in proof.assets])
        decision = _decide_if_complete(session, proof, rules, now=now)
        pipeline_rest(session)
        conn = session.connection()
        if scanned:
            conn.execute(
                _STORE_SCAN,
                {
                    "asset_id": asset.id,
                    "scan_status": asset.scan_status,
                    "scan_signature": asset.scan_signature,
                    "scanned_at": now,
                    "quarantined_at": asset.quarantined_at,
                },
            )
            if asset.scan_status is ScanStatus.INFECTED:
                conn.execute(
                    _INSERT_EVENT,
                    [
                        system_note_row(
                            asset.rift_id,
                            "asset_quarantined",
                            f"asset {asset.id} infected ({signature}); quarantined",
                            now,
                        )
                    ],
                )
        verdict = _store_decision(conn, proof, decision, rules, now=now, ids=ids)
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


@dataclass(frozen=True)
class StoredAsset:
    """An asset's row as the checks, the scans and the verdict read it."""

    id: str
    rift_id: str
    type: AssetType
    storage_key: str | None
    declared_mime: str | None
    size_bytes: int | None
    value_text: str | None
    value_encrypted: bytes | None
    sha256: str | None
    key_fingerprint: str | None
    sniffed_mime: str | None
    phash: int | None
    scan_status: ScanStatus
    scan_signature: str | None
    quarantined_at: datetime | None
    deleted_at: datetime | None
    score: int | None
    integrity_ok: bool | None
    passed: bool | None
    issues: list[Any]
    deductions: list[Any]


@dataclass(frozen=True)
class ProofState:
    """A proof's row and its assets (by position), read in one statement."""

    id: str
    rift_id: str
    submitted_at: datetime
    checks_done_at: datetime | None
    verdict_at: datetime | None
    passed: bool | None
    route_to_review: bool | None
    auto_approved: bool | None
    assets: list[StoredAsset]


_ASSET_FIELDS = [f.name for f in fields(StoredAsset)]
_PROOF_WITH_ASSETS = (
    select(
        Proof.id.label("proof_id"),
        Proof.rift_id.label("proof_rift_id"),
        Proof.submitted_at,
        Proof.checks_done_at,
        Proof.verdict_at,
        Proof.passed.label("proof_passed"),
        Proof.route_to_review,
        Proof.auto_approved,
        *(getattr(Asset, name) for name in _ASSET_FIELDS),
    )
    .select_from(Proof)
    .outerjoin(Asset, Asset.proof_id == Proof.id)
    .order_by(Asset.position)
)
# The statements of the verification and scan jobs, built once (building one costs more
# than running it). The lock is taken by a statement of its own and the assets are read
# by the next one: under READ COMMITTED a statement that waited for the lock still reads
# the rows it joins as they were when it started, so one locking join would miss the scan
# or the checks committed while it waited, and neither job would decide the verdict.
_LOCK_PROOF = select(Proof.id).where(Proof.id == bindparam("proof_id")).with_for_update()
_LOCK_PROOF_OF_ASSET = (
    select(Proof.id)
    .where(
        Proof.id
        == select(Asset.proof_id).where(Asset.id == bindparam("asset_id")).scalar_subquery()
    )
    .with_for_update()
)
_PROOF_WITH_ASSETS = _PROOF_WITH_ASSETS.where(Proof.id == bindparam("proof_id"))
_LOCK_RIFT = (
    select(
        Rift.id,
        Rift.status,
        Rift.item_type,
        Rift.risk_score,
        Rift.requires_manual_review,
        Rift.subtotal_minor,
        Rift.auto_release_at,
    )
    .where(Rift.id == bindparam("rift_id"))
    .with_for_update()
)
# Read after the rift's lock is held, so a proof submitted meanwhile is seen.
_NEWER_PROOF = (
    select(Proof.id)
    .where(Proof.rift_id == bindparam("rift_id"), Proof.submitted_at > bindparam("submitted_at"))
    .limit(1)
)
_HAS_BANDS = select(ImageHashBand.asset_id).where(
    ImageHashBand.asset_id.in_(bindparam("asset_ids", expanding=True))
)
_STORE_CHECK = (
    update(Asset)
    .where(Asset.id == bindparam("asset_id"))
    .values(
        checked_at=bindparam("checked_at"),
        score=bindparam("score"),
        integrity_ok=bindparam("integrity_ok"),
        passed=bindparam("passed"),
        issues=bindparam("issues", type_=Asset.issues.type),
        deductions=bindparam("deductions", type_=Asset.deductions.type),
        sniffed_mime=bindparam("sniffed_mime"),
        phash=bindparam("phash"),
        scan_status=bindparam("scan_status", type_=Asset.scan_status.type),
        scan_signature=bindparam("scan_signature"),
    )
)
_STORE_SCAN = (
    update(Asset)
    .where(Asset.id == bindparam("asset_id"))
    .values(
        scan_status=bindparam("scan_status", type_=Asset.scan_status.type),
        scan_signature=bindparam("scan_signature"),
        scanned_at=bindparam("scanned_at"),
        quarantined_at=bindparam("quarantined_at"),
    )
)
_CHECKS_DONE = (
    update(Proof)
    .where(Proof.id == bindparam("proof_id"))
    .values(checks_done_at=bindparam("now", type_=Proof.checks_done_at.type))
)
_STORE_VERDICT = (
    update(Proof)
    .where(Proof.id == bindparam("proof_id"))
    .values(
        verdict_at=bindparam("now", type_=Proof.verdict_at.type),
        passed=bindparam("passed"),
        route_to_review=bindparam("route_to_review"),
        auto_approved=bindparam("auto_approved"),
        verdict_reasons=bindparam("verdict_reasons", type_=Proof.verdict_reasons.type),
    )
)
# Rift is versioned (its mapper's version_id_col): every change to it moves the version.
_MOVE_RIFT_TO_REVIEW = (
    update(Rift)
    .where(Rift.id == bindparam("rift_id"))
    .values(
        transition_values(RiftStatus.UNDER_REVIEW, bindparam("now", type_=Rift.updated_at.type))
        | {"version": Rift.version + 1}
    )
)
_PROOF_VALID = (
    update(Rift)
    .where(Rift.id == bindparam("rift_id"))
    .values(
        proof_valid=True,
        updated_at=bindparam("now", type_=Rift.updated_at.type),
        auto_release_at=bindparam("auto_release_at", type_=Rift.auto_release_at.type),
        version=Rift.version + 1,
    )
)
# Inline: no RETURNING of generated keys, which pipeline mode could not read back.
_INSERT_EVENT = insert(RiftEvent).inline()
_INSERT_BANDS = insert(ImageHashBand).inline()


def _proof_state(rows: Sequence[Row[Any]]) -> ProofState | None:
    if not rows:
        return None
    first = rows[0]
    return ProofState(
        id=first.proof_id,
        rift_id=first.proof_rift_id,
        submitted_at=first.submitted_at,
        checks_done_at=first.checks_done_at,
        verdict_at=first.verdict_at,
        passed=first.proof_passed,
        route_to_review=first.route_to_review,
        auto_approved=first.auto_approved,
        assets=[
            StoredAsset(
                **{name: getattr(row, name) for name in _ASSET_FIELDS}
                | {"issues": row.issues or [], "deductions": row.deductions or []}
            )
            for row in rows
            if row.id is not None
        ],
    )


def _lock_proof(session: Session, statement: Select[Any], params: dict[str, str]) -> ProofState:
    """Lock the proof row, then read it and its assets as they are once the lock is held."""
    conn = session.connection()
    proof_id = conn.execute(statement, params).scalar_one_or_none()
    proof = None
    if proof_id is not None:
        proof = _proof_state(conn.execute(_PROOF_WITH_ASSETS, {"proof_id": proof_id}).all())
    if proof is None:
        raise ProofMissing(f"no proof for {params}")
    return proof


def _distrust_partial_clean(
    status: ScanStatus, signature: str | None, issues: list[Any]
) -> tuple[ScanStatus, str | None]:
    """A CLEAN scan of a file whose check found parts the scanner skips is no CLEAN.

    clamd passes over archive members larger than its MaxFileSize without a word; the zip
    rule names them, and whichever of the check and the scan lands second makes it ERROR.
    """
    if status is ScanStatus.CLEAN and any(
        issue["code"] in UNSCANNED_CONTENT_CODES for issue in issues
    ):
        return ScanStatus.ERROR, "part of the file is over the scanner's size limit, unscanned"
    return status, signature


def _with_checks(
    proof: ProofState, checked: list[tuple[StoredAsset, InspectedAsset]], now: datetime
) -> ProofState:
    """The proof as it is once the checks are stored (what the verdict is decided on)."""
    updated = {}
    for asset, found in checked:
        issues = [issue.to_dict() for issue in found.check.issues]
        status, signature = _distrust_partial_clean(asset.scan_status, asset.scan_signature, issues)
        updated[asset.id] = replace(
            asset,
            score=found.check.score,
            integrity_ok=found.check.integrity_ok,
            passed=found.check.passed,
            issues=issues,
            deductions=[d.to_dict() for d in found.check.deductions],
            sniffed_mime=found.sniffed_mime or asset.sniffed_mime,
            phash=found.phash if found.phash is not None else asset.phash,
            scan_status=status,
            scan_signature=signature,
        )
    return replace(proof, checks_done_at=now, assets=[updated.get(a.id, a) for a in proof.assets])


def _check_values(asset: StoredAsset, now: datetime) -> dict[str, Any]:
    return {
        "asset_id": asset.id,
        "checked_at": now,
        "score": asset.score,
        "integrity_ok": asset.integrity_ok,
        "passed": asset.passed,
        "issues": asset.issues,
        "deductions": asset.deductions,
        "sniffed_mime": asset.sniffed_mime,
        "phash": asset.phash,
        "scan_status": asset.scan_status,
        "scan_signature": asset.scan_signature,
    }


def _bands_to_add(
    session: Session, checked: list[tuple[StoredAsset, InspectedAsset]]
) -> list[dict[str, Any]]:
    """The hash bands to write with the hashes, in one transaction: an asset without a
    hash has none, and only a re-check could find a copy to keep (one read, then)."""
    hashed = [(a, found) for a, found in checked if found.phash is not None]
    rechecked = [a.id for a, _ in hashed if a.phash is not None]
    has_bands = (
        set(session.connection().scalars(_HAS_BANDS, {"asset_ids": rechecked}))
        if rechecked
        else set()
    )
    return [
        {"asset_id": a.id, "band_no": no, "band_value": value, "rift_id": a.rift_id}
        for a, found in hashed
        if a.id not in has_bands
        for no, value in enumerate(found.phash_bands)
    ]


@dataclass(frozen=True)
class _Decision:
    """A verdict decided under the proof's and the rift's locks, not yet stored."""

    verdict: SubmissionVerdict
    rift: Any  # a row of _LOCK_RIFT
    moves_rift: bool


def _decide_if_complete(
    session: Session, proof: ProofState, rules: VerdictRules, *, now: datetime
) -> _Decision | None:
    """Decide the proof's verdict once its checks and every file scan are in.

    The caller holds the proof's lock; whichever of the check and the scans finishes
    last gets here with everything in place, and verdict_at makes the decision once-only.
    Reads only (the rift, locked, and whether a newer proof exists): the caller writes.
    """
    if proof.verdict_at is not None or proof.checks_done_at is None:
        return None
    live = [a for a in proof.assets if a.deleted_at is None]
    if any(a.scan_status is ScanStatus.PENDING for a in live):
        return None
    conn = session.connection()
    rift = conn.execute(_LOCK_RIFT, {"rift_id": proof.rift_id}).one()
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
    # Only the newest proof of a rift still in PROOF_SUBMITTED moves the rift: a verdict
    # on superseded proof, or on a rift cancelled meanwhile, is recorded and nothing more.
    moves_rift = (
        rift.status is RiftStatus.PROOF_SUBMITTED
        and conn.execute(
            _NEWER_PROOF, {"rift_id": proof.rift_id, "submitted_at": proof.submitted_at}
        ).first()
        is None
    )
    if moves_rift and verdict.route_to_review:
        check_transition(rift.status, RiftStatus.UNDER_REVIEW, ActorRole.SYSTEM)
    return _Decision(verdict, rift, moves_rift)


def _store_decision(
    conn: Connection,
    proof: ProofState,
    decision: _Decision | None,
    rules: VerdictRules,
    *,
    now: datetime,
    ids: IdFactory,
) -> FinalVerdict | None:
    """Write a decided verdict and what it does to the rift (writes only: pipelined)."""
    if decision is None:
        return None
    verdict, rift = decision.verdict, decision.rift
    conn.execute(
        _STORE_VERDICT,
        {
            "proof_id": proof.id,
            "now": now,
            "passed": verdict.passed,
            "route_to_review": verdict.route_to_review,
            "auto_approved": verdict.auto_approved,
            "verdict_reasons": [reason.to_dict() for reason in verdict.reasons],
        },
    )
    if decision.moves_rift and verdict.route_to_review:
        # UNDER_REVIEW is no clean-up target: the move calls for no job.
        conn.execute(_MOVE_RIFT_TO_REVIEW, {"rift_id": rift.id, "now": now})
        event = transition_event(
            rift.id,
            rift.status,
            RiftStatus.UNDER_REVIEW,
            role=ActorRole.SYSTEM,
            actor_id=None,
            reason="verification: " + "; ".join(r.message for r in verdict.reasons),
            now=now,
        )
        conn.execute(_INSERT_EVENT, [event])
    elif decision.moves_rift:
        auto_release_at = (
            now + rules.release.release_delay(rift.item_type)
            if verdict.auto_approved
            else rift.auto_release_at
        )
        conn.execute(
            _PROOF_VALID, {"rift_id": rift.id, "now": now, "auto_release_at": auto_release_at}
        )
        conn.execute(
            _INSERT_EVENT,
            [
                {
                    "rift_id": rift.id,
                    "actor_role": ActorRole.SYSTEM,
                    "actor_id": None,
                    "from_status": rift.status,
                    "to_status": rift.status,
                    "kind": "proof_verified",
                    "reason": (
                        f"auto-approved; auto release at {auto_release_at.isoformat()}"
                        if auto_release_at
                        else "proof passed verification; awaiting buyer"
                    ),
                    "created_at": now,
                }
            ],
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


def stored_check(asset: StoredAsset | Asset, thresholds: VerificationThresholds) -> AssetCheck:
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


def _job_result(proof: ProofState, verdict: FinalVerdict | None) -> dict[str, Any]:
    waiting = [a.id for a in proof.assets if a.scan_status is ScanStatus.PENDING]
    decided: dict[str, bool | None] | None = (
        None
        if proof.verdict_at is None
        else {
            "passed": proof.passed,
            "route_to_review": proof.route_to_review,
            "auto_approved": proof.auto_approved,
        }
    )
    if verdict is not None:
        decided = {
            "passed": verdict.passed,
            "route_to_review": verdict.route_to_review,
            "auto_approved": verdict.auto_approved,
        }
    return {
        "proof_id": proof.id,
        "checked_assets": len(proof.assets),
        "verdict": decided,
        "waiting_for_scans": waiting,
        "decided_now": verdict is not None,
    }
