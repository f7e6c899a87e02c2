"""Tracking numbers: length, character set and the known carrier patterns."""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.verification.issues import AssetCheck, ScoreCard
from service.verification.thresholds import VerificationThresholds

TRACKING_CHARS = re.compile(r"[A-Za-z0-9\- ]+")
# Checked against the number with spaces and dashes removed and letters upper-cased.
# The digit-only lengths do not overlap: DHL 10-11, FedEx 12-14, USPS 20-22.
CARRIER_PATTERNS = (
    ("UPS", re.compile(r"1Z[A-Z0-9]{16}")),
    ("FEDEX", re.compile(r"[0-9]{12,14}")),
    ("USPS", re.compile(r"[0-9]{20,22}|[A-Z]{2}[0-9]{9}[A-Z]{2}")),
    ("DHL", re.compile(r"[0-9]{10,11}")),
)


@dataclass(frozen=True)
class TrackingCheck:
    """The check of a tracking number and the carrier its pattern names, if any."""

    check: AssetCheck
    carrier: str | None


def detect_carrier(number: str) -> str | None:
    """Name the carrier whose pattern the number matches, or None."""
    compact = re.sub(r"[\s-]", "", number).upper()
    for carrier, pattern in CARRIER_PATTERNS:
        if pattern.fullmatch(compact):
            return carrier
    return None


def check_tracking_number(number: str, *, thresholds: VerificationThresholds) -> TrackingCheck:
    """Apply the tracking number rules."""
    card = ScoreCard(pass_score=thresholds.pass_score)
    number = number.strip()
    if not thresholds.tracking_min_chars <= len(number) <= thresholds.tracking_max_chars:
        card.deduct(
            "tracking.length",
            f"A tracking number is {thresholds.tracking_min_chars}-"
            f"{thresholds.tracking_max_chars} characters long.",
            thresholds.tracking_length_penalty,
        )
    if TRACKING_CHARS.fullmatch(number) is None:
        card.deduct(
            "tracking.characters",
            "A tracking number holds only letters, digits, dashes and spaces.",
            thresholds.tracking_charset_penalty,
        )
    carrier = detect_carrier(number)
    if carrier is None:
        card.deduct(
            "tracking.unknown_carrier",
            "The tracking number matches no known carrier's format.",
            thresholds.tracking_unknown_carrier_penalty,
        )
    return TrackingCheck(card.finish(), carrier)
