"""Verification rules: pure checks of proof assets and the submission verdict.

Nothing here touches a database, a broker or HTTP; callers pass in paths, strings, the
results of their lookups, and a clock's reading.
"""

from service.verification.files import (
    ALLOWED_MIMES,
    FileCheck,
    apply_reuse,
    check_file,
    normalize_mime,
    sniff_mime,
)
from service.verification.images import band_probes, hamming, is_near_duplicate, phash_bands
from service.verification.issues import AssetCheck, Deduction, Issue, ScoreCard
from service.verification.license_keys import (
    LicenseKeyDecryptionError,
    LicenseKeyVault,
    check_license_key,
)
from service.verification.text import check_text
from service.verification.thresholds import VerificationThresholds
from service.verification.tracking import TrackingCheck, check_tracking_number, detect_carrier
from service.verification.urls import AddressPolicy, ProbeResult, UrlCheck, UrlProbe, check_url
from service.verification.verdict import (
    AssetVerdictInput,
    RiftRisk,
    ScanStatus,
    SubmissionVerdict,
    decide,
)

__all__ = [
    "ALLOWED_MIMES",
    "AddressPolicy",
    "AssetCheck",
    "AssetVerdictInput",
    "Deduction",
    "FileCheck",
    "Issue",
    "LicenseKeyDecryptionError",
    "LicenseKeyVault",
    "ProbeResult",
    "RiftRisk",
    "ScanStatus",
    "ScoreCard",
    "SubmissionVerdict",
    "TrackingCheck",
    "UrlCheck",
    "UrlProbe",
    "VerificationThresholds",
    "apply_reuse",
    "band_probes",
    "check_file",
    "check_license_key",
    "check_text",
    "check_tracking_number",
    "check_url",
    "decide",
    "detect_carrier",
    "hamming",
    "is_near_duplicate",
    "normalize_mime",
    "phash_bands",
    "sniff_mime",
]
