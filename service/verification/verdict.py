"""The submission verdict: pass, route to review, or auto-approve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.scanning.status import ScanStatus
from service.verification.issues import AssetCheck, Issue
from service.verification.thresholds import VerificationThresholds


@dataclass(frozen=True)
class RiftRisk:
    """The rift-level facts that can force a review whatever the assets say."""

    risk_score: int
    requires_manual_review: bool
    subtotal_minor: int


@dataclass(frozen=True)
class AssetVerdictInput:
    """One asset's check and, for file assets, its scan status.

    None and NOT_APPLICABLE both say "nothing to scan" (a tracking number, a URL...).
    """

    check: AssetCheck
    scan_status: ScanStatus | None = None


@dataclass(frozen=True)
class SubmissionVerdict:
    """What the verification of one proof submission decided.

    `awaiting_scan` is true while any file's scan is PENDING: the verdict is not final.
    It may still route to review (a reason already forces it), but it never passes or
    auto-approves; the caller should decide again once the scans finish.
    """

    passed: bool
    route_to_review: bool
    auto_approved: bool
    awaiting_scan: bool
    reasons: tuple[Issue, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape of this verdict."""
        return {
            "passed": self.passed,
            "route_to_review": self.route_to_review,
            "auto_approved": self.auto_approved,
            "awaiting_scan": self.awaiting_scan,
            "reasons": [reason.to_dict() for reason in self.reasons],
        }


def decide(
    assets: Sequence[AssetVerdictInput], risk: RiftRisk, thresholds: VerificationThresholds
) -> SubmissionVerdict:
    """Combine the asset checks, scan results and rift risk into the submission verdict."""
    reasons = _review_reasons(assets, risk, thresholds)
    statuses = [
        asset.scan_status
        for asset in assets
        if asset.scan_status not in (None, ScanStatus.NOT_APPLICABLE)
    ]
    awaiting_scan = ScanStatus.PENDING in statuses
    scans_clean = all(status == ScanStatus.CLEAN for status in statuses)
    route_to_review = bool(reasons)
    passed = bool(assets) and scans_clean and all(asset.check.passed for asset in assets)
    auto_approved = (
        passed
        and not route_to_review
        and risk.risk_score <= thresholds.auto_approve_max_risk
        and all(
            asset.check.score >= thresholds.auto_approve_min_score and not asset.check.issues
            for asset in assets
        )
    )
    return SubmissionVerdict(passed, route_to_review, auto_approved, awaiting_scan, reasons)


def _review_reasons(
    assets: Sequence[AssetVerdictInput], risk: RiftRisk, thresholds: VerificationThresholds
) -> tuple[Issue, ...]:
    reasons: list[Issue] = []
    if not assets:
        reasons.append(Issue("submission.empty", "The submission holds no assets."))
    failed = sum(1 for asset in assets if not asset.check.passed)
    if failed:
        reasons.append(Issue("asset.failed", f"{failed} asset(s) failed verification."))
    flagged = sum(1 for asset in assets if asset.check.issues)
    if flagged:
        reasons.append(Issue("asset.issues", f"{flagged} asset(s) raised issues."))
    statuses = [asset.scan_status for asset in assets]
    if ScanStatus.INFECTED in statuses:
        reasons.append(Issue("scan.infected", "A file is infected."))
    if ScanStatus.ERROR in statuses:
        reasons.append(Issue("scan.error", "A file could not be scanned."))
    if risk.requires_manual_review:
        reasons.append(Issue("rift.manual_review", "The rift is marked for manual review."))
    if risk.subtotal_minor > thresholds.review_subtotal_above_minor:
        reasons.append(
            Issue(
                "rift.subtotal",
                "The rift's subtotal is over "
                f"{thresholds.review_subtotal_above_minor} minor units.",
            )
        )
    if risk.risk_score > thresholds.review_risk_above:
        reasons.append(
            Issue("rift.risk", f"The rift's risk score is over {thresholds.review_risk_above}.")
        )
    return tuple(reasons)
