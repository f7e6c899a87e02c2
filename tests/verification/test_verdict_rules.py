"""The submission verdict: routing to review and auto-approval, with property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.scanning.status import ScanStatus
from service.verification import (
    AssetCheck,
    AssetVerdictInput,
    Issue,
    RiftRisk,
    ScoreCard,
    VerificationThresholds,
    decide,
)

DEFAULTS = VerificationThresholds()
CALM = RiftRisk(risk_score=10, requires_manual_review=False, subtotal_minor=50_000)
PERFECT = AssetCheck(score=100, issues=(), integrity_ok=True)
FILE_CLEAN = AssetVerdictInput(PERFECT, ScanStatus.CLEAN)
TEXT_ASSET = AssetVerdictInput(PERFECT)


def reason_codes(assets: list[AssetVerdictInput], risk: RiftRisk = CALM) -> set[str]:
    return {reason.code for reason in decide(assets, risk, DEFAULTS).reasons}


def test_clean_perfect_assets_on_a_calm_rift_are_auto_approved() -> None:
    verdict = decide([FILE_CLEAN, TEXT_ASSET], CALM, DEFAULTS)
    assert verdict.passed and verdict.auto_approved
    assert not verdict.route_to_review and not verdict.awaiting_scan
    assert verdict.reasons == ()


def test_a_failing_asset_routes_to_review() -> None:
    failing = AssetVerdictInput(AssetCheck(score=59, issues=(), integrity_ok=True))
    verdict = decide([FILE_CLEAN, failing], CALM, DEFAULTS)
    assert verdict.route_to_review and not verdict.passed and not verdict.auto_approved
    assert reason_codes([FILE_CLEAN, failing]) == {"asset.failed"}


def test_an_asset_with_broken_integrity_fails_whatever_its_score() -> None:
    broken = AssetVerdictInput(AssetCheck(score=100, issues=(), integrity_ok=False))
    assert reason_codes([broken]) == {"asset.failed"}


def test_any_issue_routes_to_review_even_at_full_score() -> None:
    flagged = AssetVerdictInput(AssetCheck(100, (Issue("pdf.encrypted", "x"),), True))
    verdict = decide([flagged], CALM, DEFAULTS)
    assert verdict.passed and verdict.route_to_review and not verdict.auto_approved
    assert reason_codes([flagged]) == {"asset.issues"}


@pytest.mark.parametrize(
    ("status", "code"), [(ScanStatus.INFECTED, "scan.infected"), (ScanStatus.ERROR, "scan.error")]
)
def test_an_infected_or_unscannable_file_routes_to_review(status: ScanStatus, code: str) -> None:
    verdict = decide([AssetVerdictInput(PERFECT, status)], CALM, DEFAULTS)
    assert verdict.route_to_review and not verdict.passed and not verdict.auto_approved
    assert reason_codes([AssetVerdictInput(PERFECT, status)]) == {code}


def test_a_pending_scan_is_not_final_and_never_approves() -> None:
    verdict = decide([AssetVerdictInput(PERFECT, ScanStatus.PENDING)], CALM, DEFAULTS)
    assert verdict.awaiting_scan
    assert not verdict.passed and not verdict.auto_approved and not verdict.route_to_review


def test_a_pending_scan_does_not_hide_another_reason_for_review() -> None:
    risky = RiftRisk(risk_score=80, requires_manual_review=False, subtotal_minor=0)
    verdict = decide([AssetVerdictInput(PERFECT, ScanStatus.PENDING)], risky, DEFAULTS)
    assert verdict.awaiting_scan and verdict.route_to_review


def test_a_rift_marked_for_manual_review_routes_to_review() -> None:
    risk = RiftRisk(risk_score=0, requires_manual_review=True, subtotal_minor=0)
    assert reason_codes([FILE_CLEAN], risk) == {"rift.manual_review"}


def test_a_subtotal_over_the_threshold_routes_to_review() -> None:
    at = RiftRisk(risk_score=0, requires_manual_review=False, subtotal_minor=1_000_000)
    over = RiftRisk(risk_score=0, requires_manual_review=False, subtotal_minor=1_000_001)
    assert reason_codes([FILE_CLEAN], at) == set()
    assert reason_codes([FILE_CLEAN], over) == {"rift.subtotal"}


def test_a_risk_score_over_50_routes_to_review() -> None:
    at = RiftRisk(risk_score=50, requires_manual_review=False, subtotal_minor=0)
    over = RiftRisk(risk_score=51, requires_manual_review=False, subtotal_minor=0)
    assert reason_codes([FILE_CLEAN], at) == set()
    assert reason_codes([FILE_CLEAN], over) == {"rift.risk"}


def test_a_risk_between_30_and_50_neither_reviews_nor_auto_approves() -> None:
    risk = RiftRisk(risk_score=31, requires_manual_review=False, subtotal_minor=0)
    verdict = decide([FILE_CLEAN], risk, DEFAULTS)
    assert verdict.passed and not verdict.route_to_review and not verdict.auto_approved
    at_limit = RiftRisk(risk_score=30, requires_manual_review=False, subtotal_minor=0)
    assert decide([FILE_CLEAN], at_limit, DEFAULTS).auto_approved


def test_a_score_under_90_without_issues_passes_but_is_not_auto_approved() -> None:
    good = AssetVerdictInput(AssetCheck(score=89, issues=(), integrity_ok=True))
    verdict = decide([good], CALM, DEFAULTS)
    assert verdict.passed and not verdict.route_to_review and not verdict.auto_approved
    assert decide([AssetVerdictInput(AssetCheck(90, (), True))], CALM, DEFAULTS).auto_approved


def test_an_empty_submission_routes_to_review() -> None:
    verdict = decide([], CALM, DEFAULTS)
    assert verdict.route_to_review and not verdict.passed and not verdict.auto_approved


def test_the_verdict_serialises_to_json_shapes() -> None:
    verdict = decide([AssetVerdictInput(PERFECT, ScanStatus.INFECTED)], CALM, DEFAULTS)
    assert verdict.to_dict()["reasons"] == [
        {"code": "scan.infected", "message": "A file is infected."}
    ]


# --- properties -------------------------------------------------------------------------

issues = st.lists(st.builds(Issue, st.sampled_from(["a.b", "c.d"]), st.just("m")), max_size=2)
checks = st.builds(
    AssetCheck,
    score=st.integers(0, 100),
    issues=issues.map(tuple),
    integrity_ok=st.booleans(),
)
assets = st.builds(
    AssetVerdictInput, check=checks, scan_status=st.none() | st.sampled_from(list(ScanStatus))
)
risks = st.builds(
    RiftRisk,
    risk_score=st.integers(0, 100),
    requires_manual_review=st.booleans(),
    subtotal_minor=st.integers(0, 5_000_000),
)


@given(st.lists(assets, max_size=6), risks)
def test_routing_rule_properties(submission: list[AssetVerdictInput], risk: RiftRisk) -> None:
    verdict = decide(submission, risk, DEFAULTS)
    if any(not asset.check.passed for asset in submission):
        assert verdict.route_to_review and not verdict.passed
    if any(asset.check.issues for asset in submission):
        assert verdict.route_to_review
    if any(a.scan_status in (ScanStatus.INFECTED, ScanStatus.ERROR) for a in submission):
        assert verdict.route_to_review and not verdict.passed
    if risk.requires_manual_review or risk.risk_score > 50 or risk.subtotal_minor > 1_000_000:
        assert verdict.route_to_review
    assert verdict.route_to_review == bool(verdict.reasons)
    if verdict.auto_approved:
        assert verdict.passed and not verdict.route_to_review and not verdict.awaiting_scan
        assert risk.risk_score <= 30
        assert all(a.check.score >= 90 and not a.check.issues for a in submission)
        assert all(
            a.scan_status in (None, ScanStatus.NOT_APPLICABLE, ScanStatus.CLEAN) for a in submission
        )


@given(st.lists(st.integers(0, 10_000), max_size=20), st.integers(0, 100))
def test_a_score_stays_within_0_and_100_for_any_deductions(
    points: list[int], pass_score: int
) -> None:
    card = ScoreCard(pass_score=pass_score)
    for index, amount in enumerate(points):
        card.deduct(f"rule.{index}", "m", amount)
    check = card.finish()
    assert 0 <= check.score <= 100
    assert check.score == max(0, 100 - sum(points))
    assert check.passed == (check.score >= pass_score)


def test_a_deduction_cannot_add_points() -> None:
    with pytest.raises(ValueError, match="cannot add"):
        ScoreCard(pass_score=60).deduct("x", "m", -5)


def test_an_asset_check_serialises_with_its_verdict() -> None:
    card = ScoreCard(pass_score=60)
    card.deduct("image.exif_stripped", "No EXIF.", 5)
    card.flag("image.too_small", "Tiny.")
    assert card.finish().to_dict() == {
        "score": 95,
        "passed": True,
        "integrity_ok": True,
        "issues": [{"code": "image.too_small", "message": "Tiny."}],
        "deductions": [{"code": "image.exif_stripped", "message": "No EXIF.", "points": 5}],
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"pass_score": 95},
        {"min_file_bytes": 10, "max_file_bytes": 5},
        {"max_image_pixels": -1},
        {"tracking_min_chars": 50},
    ],
)
def test_contradictory_thresholds_are_rejected(overrides: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        VerificationThresholds(**overrides)  # type: ignore[arg-type]
