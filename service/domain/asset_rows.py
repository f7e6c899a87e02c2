"""The asset rows of one submission, ready for a single multi-row INSERT."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from service.domain.clock import IdFactory
from service.models import AssetType, ScanStatus

if TYPE_CHECKING:  # proofs.py imports this module to build its rows
    from service.domain.proofs import KeySealer, ProofSubmission

# Every asset row names the same columns (one multi-row INSERT needs that); those a row's
# type does not use are NULL. Columns left out (deductions) get their model defaults.
ASSET_VALUE_COLUMNS = (
    "storage_key",
    "original_name",
    "size_bytes",
    "sha256",
    "declared_mime",
    "sniffed_mime",
    "value_text",
    "value_encrypted",
    "key_fingerprint",
)


def asset_rows(
    proof_id: str,
    rift_id: str,
    submission: ProofSubmission,
    sealer: KeySealer,
    now: datetime,
    ids: IdFactory,
) -> list[dict[str, Any]]:
    """One row per asset, files first, in the order a seller sent them."""
    assets: list[dict[str, Any]] = []

    def add(asset_type: AssetType, **values: object) -> None:
        unknown = values.keys() - set(ASSET_VALUE_COLUMNS)
        assert not unknown, f"add {sorted(unknown)} to ASSET_VALUE_COLUMNS"
        scan = ScanStatus.PENDING if asset_type is AssetType.FILE else ScanStatus.NOT_APPLICABLE
        assets.append(
            {
                "id": ids(),
                "proof_id": proof_id,
                "rift_id": rift_id,
                "position": len(assets),
                "type": asset_type,
                "scan_status": scan,
                "issues": [],
                "created_at": now,
                **dict.fromkeys(ASSET_VALUE_COLUMNS),
                **values,
            }
        )

    for upload in submission.files:
        add(
            AssetType.FILE,
            storage_key=upload.blob.key,
            original_name=upload.original_name,
            size_bytes=upload.blob.size_bytes,
            sha256=upload.blob.sha256,
            declared_mime=upload.declared_mime,
            sniffed_mime=upload.sniffed_mime,
        )
    if submission.license_key is not None:
        # Only the ciphertext and a keyed fingerprint are stored, never the key itself.
        add(
            AssetType.LICENSE_KEY,
            value_encrypted=sealer.encrypt(submission.license_key),
            key_fingerprint=sealer.fingerprint(submission.license_key),
        )
    if submission.tracking_number is not None:
        add(AssetType.TRACKING, value_text=submission.tracking_number)
    if submission.url is not None:
        add(AssetType.URL, value_text=submission.url)
    if submission.text is not None:
        add(AssetType.TEXT, value_text=submission.text)
    return assets
