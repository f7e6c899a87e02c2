"""What the proof page shows, in a seller's words, built from the proof's records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.api.views import asset_view, verification_status
from service.domain.clock import as_utc
from service.domain.proof_progress import ProofProgress
from service.domain.review import NEW_PROOF_REQUESTED
from service.models import Asset, AssetType, RiftEvent, ScanStatus
from service.web.advice import advice_for, review_reason_words

TEXT_EXCERPT_CHARS = 240

KIND_LABELS = {
    AssetType.FILE: "File",
    AssetType.LICENSE_KEY: "License key",
    AssetType.TRACKING: "Tracking number",
    AssetType.URL: "Link",
    AssetType.TEXT: "Written summary",
}

SCAN_WORDS = {
    ScanStatus.PENDING: "Scanning for viruses…",
    ScanStatus.CLEAN: "No virus found",
    ScanStatus.INFECTED: "Virus found: the file is quarantined",
    ScanStatus.ERROR: "Could not be scanned for viruses",
}


@dataclass(frozen=True)
class Finding:
    kind: str  # "issue" or "deduction"
    message: str
    advice: str
    points: int = 0


@dataclass(frozen=True)
class AssetCard:
    asset_id: str
    kind: str
    label: str
    detail: str
    scan: str | None
    scan_state: str | None
    checked: bool
    passed: bool
    score: int | None
    findings: list[Finding] = field(default_factory=list)
    download_url: str | None = None
    deleted: bool = False


@dataclass(frozen=True)
class ProgressView:
    status: str
    headline: str
    explanation: str
    final: bool
    steps: list[tuple[str, str]]
    assets: list[AssetCard]
    review_reasons: list[str]
    auto_release_at: datetime | None
    requests: list[RiftEvent]
    events: list[RiftEvent]
    can_submit: bool


def _detail(asset: Asset) -> tuple[str, str]:
    if asset.type is AssetType.FILE:
        return asset.original_name or "file", asset.sniffed_mime or ""
    if asset.type is AssetType.LICENSE_KEY:
        return "License key", "stored encrypted; never shown again"
    text = asset.value_text or ""
    if len(text) > TEXT_EXCERPT_CHARS:
        text = text[:TEXT_EXCERPT_CHARS] + "…"
    return KIND_LABELS[asset.type], text


def asset_card(asset: Asset) -> AssetCard:
    view: dict[str, Any] = asset_view(asset)
    label, detail = _detail(asset)
    findings = [
        Finding("issue", i["message"], advice_for(i["code"])) for i in asset.issues or []
    ] + [
        Finding("deduction", d["message"], advice_for(d["code"]), int(d["points"]))
        for d in asset.deductions or []
    ]
    if asset.scan_status is ScanStatus.INFECTED:
        signature = f" ({asset.scan_signature})" if asset.scan_signature else ""
        findings.insert(
            0,
            Finding(
                "issue",
                f"The virus scanner flagged this file{signature}.",
                advice_for("scan.infected"),
            ),
        )
    elif asset.scan_status is ScanStatus.ERROR:
        findings.insert(
            0, Finding("issue", "The file could not be scanned.", advice_for("scan.error"))
        )
    servable = (
        asset.type is AssetType.FILE
        and asset.scan_status is ScanStatus.CLEAN
        and asset.deleted_at is None
        and asset.quarantined_at is None
    )
    scan = SCAN_WORDS.get(asset.scan_status)
    return AssetCard(
        asset_id=asset.id,
        kind=KIND_LABELS[asset.type],
        label=label,
        detail=detail,
        scan=scan,
        scan_state=asset.scan_status.value.lower() if scan else None,
        checked=asset.checked_at is not None,
        passed=bool(view["passed"]),
        score=asset.score,
        findings=findings,
        download_url=f"/api/assets/{asset.id}/content" if servable else None,
        deleted=asset.deleted_at is not None,
    )


def _headline(progress: ProofProgress, status: str) -> tuple[str, str]:
    proof = progress.proof
    if status == "not_started":
        return "No proof yet", "The seller has not submitted proof of delivery for this deal."
    if status == "pending":
        return "Waiting to be checked", "The proof is stored and queued for checking."
    if status == "processing":
        return "Being checked", "The files are being scanned and the proof checked."
    if status == "failed":
        return (
            "Checking stopped",
            "The checks could not finish; an operator has been told and will run them again.",
        )
    assert proof is not None
    if proof.auto_approved:
        return (
            "Approved",
            "Every check passed. The payment is released automatically on the date below "
            "unless the buyer disputes.",
        )
    if proof.route_to_review:
        return "A person will look at this proof", "The checks found something a person should see."
    return "Passed", "The proof passed the checks; the buyer releases the payment."


def _steps(progress: ProofProgress, status: str) -> list[tuple[str, str]]:
    proof = progress.proof
    if proof is None:
        return []
    steps = [("Submitted", "done")]
    for asset in proof.assets:
        if asset.type is AssetType.FILE:
            state = {
                ScanStatus.PENDING: "waiting",
                ScanStatus.CLEAN: "done",
                ScanStatus.INFECTED: "problem",
                ScanStatus.ERROR: "problem",
            }.get(asset.scan_status, "done")
            steps.append((f"Virus scan of {asset.original_name}", state))
    checks = "done" if proof.checks_done_at else ("problem" if status == "failed" else "waiting")
    steps.append(("Content checks", checks))
    steps.append(("Verdict", "done" if proof.verdict_at else "waiting"))
    return steps


def progress_view(progress: ProofProgress) -> ProgressView:
    """Everything the page's progress section shows, decided once for the template."""
    status = verification_status(progress.job, progress.proof)
    headline, explanation = _headline(progress, status)
    proof = progress.proof
    reasons = [
        review_reason_words(r.get("code", ""), r.get("message", ""))
        for r in (proof.verdict_reasons or [] if proof and proof.route_to_review else [])
    ]
    requests = [e for e in progress.events if e.kind == NEW_PROOF_REQUESTED]
    if proof is not None:
        submitted = as_utc(proof.submitted_at)
        requests = [e for e in requests if as_utc(e.created_at) >= submitted]
    return ProgressView(
        status=status,
        headline=headline,
        explanation=explanation,
        final=status in ("not_started", "completed", "failed"),
        steps=_steps(progress, status),
        assets=[asset_card(a) for a in proof.assets] if proof else [],
        review_reasons=reasons,
        auto_release_at=progress.rift.auto_release_at if proof and proof.auto_approved else None,
        requests=requests,
        events=progress.events,
        can_submit=progress.seller_may_submit,
    )
