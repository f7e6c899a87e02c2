"""Verification rules: pure checks of proof assets and the submission verdict.

Nothing here touches a database, a broker or HTTP; callers pass in paths, strings, the
results of their lookups, and a clock's reading.

The package face loads nothing itself: each name is imported from its module on first use
(PEP 562), so a caller that only sniffs types (the API) never loads the PDF, image, zip or
URL rules. Import from the modules directly in code that the type checker sees.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.verification.addresses import AddressPolicy
    from service.verification.files import FileCheck, apply_reuse, check_file
    from service.verification.images import (
        band_probes,
        hamming,
        is_near_duplicate,
        phash_bands,
    )
    from service.verification.issues import AssetCheck, Deduction, Issue, ScoreCard
    from service.verification.license_keys import (
        LicenseKeyDecryptionError,
        LicenseKeyVault,
        check_license_key,
    )
    from service.verification.probe import ProbeResult, UrlProbe
    from service.verification.sniffing import ALLOWED_MIMES, normalize_mime, sniff_mime
    from service.verification.text import check_text
    from service.verification.thresholds import VerificationThresholds
    from service.verification.tracking import (
        TrackingCheck,
        check_tracking_number,
        detect_carrier,
    )
    from service.verification.urls import UrlCheck, check_url
    from service.verification.verdict import (
        AssetVerdictInput,
        RiftRisk,
        SubmissionVerdict,
        decide,
    )

_MODULE_OF = {
    "ALLOWED_MIMES": "sniffing",
    "AddressPolicy": "addresses",
    "AssetCheck": "issues",
    "AssetVerdictInput": "verdict",
    "Deduction": "issues",
    "FileCheck": "files",
    "Issue": "issues",
    "LicenseKeyDecryptionError": "license_keys",
    "LicenseKeyVault": "license_keys",
    "ProbeResult": "probe",
    "RiftRisk": "verdict",
    "ScoreCard": "issues",
    "SubmissionVerdict": "verdict",
    "TrackingCheck": "tracking",
    "UrlCheck": "urls",
    "UrlProbe": "probe",
    "VerificationThresholds": "thresholds",
    "apply_reuse": "files",
    "band_probes": "images",
    "check_file": "files",
    "check_license_key": "license_keys",
    "check_text": "text",
    "check_tracking_number": "tracking",
    "check_url": "urls",
    "decide": "verdict",
    "detect_carrier": "tracking",
    "hamming": "images",
    "is_near_duplicate": "images",
    "normalize_mime": "sniffing",
    "phash_bands": "images",
    "sniff_mime": "sniffing",
}

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


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"service.verification.{module}"), name)
    globals()[name] = value
    return value
