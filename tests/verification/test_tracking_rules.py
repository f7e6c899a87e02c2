"""Tracking numbers: each carrier's format, length and character rules."""

from __future__ import annotations

import pytest
from proof_fixtures import deduction_codes

from service.verification import VerificationThresholds, check_tracking_number, detect_carrier

DEFAULTS = VerificationThresholds()


@pytest.mark.parametrize(
    ("number", "carrier"),
    [
        ("1Z999AA10123456784", "UPS"),
        ("1z 999 aa1 0123 4567 84", "UPS"),
        ("123456789012", "FEDEX"),
        ("1234567890123", "FEDEX"),
        ("12345678901234", "FEDEX"),
        ("9400111899223100012345", "USPS"),
        ("94001118992231000123", "USPS"),
        ("940011189922310001234", "USPS"),
        ("EC123456789US", "USPS"),
        ("1234567890", "DHL"),
        ("12345678901", "DHL"),
        ("1234-5678-90", "DHL"),
    ],
)
def test_each_carrier_format_is_recognised_at_full_score(number: str, carrier: str) -> None:
    result = check_tracking_number(number, thresholds=DEFAULTS)
    assert result.carrier == carrier
    assert result.check.score == 100
    assert result.check.issues == ()


@pytest.mark.parametrize(
    "number", ["123456789012345", "1Z999AA1012345678", "E123456789US", "ABCDEFGHIJ"]
)
def test_a_well_formed_number_matching_no_carrier_loses_5(number: str) -> None:
    result = check_tracking_number(number, thresholds=DEFAULTS)
    assert result.carrier is None
    assert deduction_codes(result.check) == {"tracking.unknown_carrier"}
    assert result.check.score == 95


def test_a_number_that_is_too_short_loses_20_plus_5() -> None:
    result = check_tracking_number("1234567", thresholds=DEFAULTS)
    assert deduction_codes(result.check) == {"tracking.length", "tracking.unknown_carrier"}
    assert result.check.score == 75


def test_a_number_that_is_too_long_loses_20() -> None:
    result = check_tracking_number("A" * 41, thresholds=DEFAULTS)
    assert "tracking.length" in deduction_codes(result.check)


def test_bad_characters_lose_15() -> None:
    result = check_tracking_number("1Z999AA1012345678/", thresholds=DEFAULTS)
    assert deduction_codes(result.check) == {"tracking.characters", "tracking.unknown_carrier"}
    assert result.check.score == 80


def test_non_ascii_digits_are_not_digits() -> None:
    assert detect_carrier("١٢٣٤٥٦٧٨٩٠") is None
    result = check_tracking_number("١٢٣٤٥٦٧٨٩٠", thresholds=DEFAULTS)
    assert "tracking.characters" in deduction_codes(result.check)
