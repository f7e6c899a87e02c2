"""Run the verification rules on one stored asset, with the reuse lookups they need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service.blobs import BlobStore
from service.domain.inspector import AssetContent, AssetInspector, InspectedAsset
from service.models import Asset, AssetType, ImageHashBand
from service.verification.budget import BudgetedInspector
from service.verification.files import FileCheck, apply_reuse
from service.verification.images import band_probes, hamming, phash_bands
from service.verification.issues import AssetCheck, ScoreCard, describe
from service.verification.license_keys import (
    LicenseKeyVault,
    apply_key_reuse,
    check_license_key,
)
from service.verification.text import check_text
from service.verification.thresholds import VerificationThresholds
from service.verification.tracking import check_tracking_number
from service.verification.urls import check_url


def exact_copy_elsewhere(session: Session, asset: Asset) -> bool:
    """Is a file with the same sha256 stored as proof on another rift? (index on sha256)"""
    if asset.sha256 is None:
        return False
    query = select(Asset.id).where(Asset.sha256 == asset.sha256, Asset.rift_id != asset.rift_id)
    return session.scalar(query.limit(1)) is not None


def key_reused_elsewhere(session: Session, asset: Asset) -> bool:
    """Was the same license key (by keyed fingerprint) submitted on another rift?"""
    if asset.key_fingerprint is None:
        return False
    query = select(Asset.id).where(
        Asset.key_fingerprint == asset.key_fingerprint, Asset.rift_id != asset.rift_id
    )
    return session.scalar(query.limit(1)) is not None


def near_duplicate_elsewhere(
    session: Session, asset: Asset, phash: int, thresholds: VerificationThresholds
) -> bool:
    """Find an image on another rift within the Hamming threshold, through the band index.

    Two hashes within distance d < bands share at least one band exactly (pigeonhole), so
    an indexed equality lookup per band finds every candidate; only those few candidates
    are compared bit by bit. The cost grows with the candidates, not with the table.
    """
    probes = band_probes(phash, thresholds.phash_bands, thresholds.near_duplicate_max_distance)
    matches = or_(
        *(
            and_(ImageHashBand.band_no == no, ImageHashBand.band_value.in_(sorted(values)))
            for no, values in enumerate(probes)
        )
    )
    candidates = session.scalars(
        select(Asset.phash)
        .join(ImageHashBand, ImageHashBand.asset_id == Asset.id)
        .where(matches, ImageHashBand.rift_id != asset.rift_id, Asset.phash.is_not(None))
        .distinct()
    )
    return any(
        hamming(phash, other) <= thresholds.near_duplicate_max_distance
        for other in candidates
        if other is not None
    )


@dataclass(frozen=True)
class RuleInspector:
    """The verification rules bound to storage, the key vault and the thresholds.

    `examine` is fenced: whatever an asset's content provokes becomes an issue on that
    asset ("unreadable", with what was wrong) and the other assets are still checked. Only
    infrastructure errors escape it, to be retried: the blob store failing to produce the
    file, the key vault failing to decrypt, the inspector unable to start a process.
    """

    blobs: BlobStore
    vault: LicenseKeyVault
    thresholds: VerificationThresholds
    files: BudgetedInspector = field(default_factory=BudgetedInspector)

    def examine(self, asset: AssetContent) -> InspectedAsset:
        """Check one asset's content, with no database session open."""
        if asset.type is AssetType.FILE:
            return self._examine_file(asset)
        if asset.type is AssetType.LICENSE_KEY:
            key = self.vault.decrypt(asset.value_encrypted or b"")
            return self._fenced(
                lambda: check_license_key(
                    key, reused_on_other_rift=False, thresholds=self.thresholds
                )
            )
        value = asset.value_text or ""
        if asset.type is AssetType.TRACKING:
            return self._fenced(
                lambda: check_tracking_number(value, thresholds=self.thresholds).check
            )
        if asset.type is AssetType.URL:
            return self._fenced(lambda: check_url(value, thresholds=self.thresholds).check)
        if asset.type is AssetType.TEXT:
            return self._fenced(lambda: check_text(value, thresholds=self.thresholds))
        card = ScoreCard(pass_score=self.thresholds.pass_score)
        card.fail_integrity("asset.unknown_type", f"Unknown asset type {asset.type}.")
        return InspectedAsset(check=card.finish())

    def cross_check(self, session: Session, asset: Asset, found: InspectedAsset) -> InspectedAsset:
        """Add the reuse findings of indexed lookups on other rifts' assets."""
        if asset.type is AssetType.LICENSE_KEY:
            key_check = apply_key_reuse(
                found.check,
                reused_on_other_rift=key_reused_elsewhere(session, asset),
                thresholds=self.thresholds,
            )
            return replace(found, check=key_check)
        if asset.type is not AssetType.FILE:
            return found
        if asset.quarantined_at is not None and _file_missing(found.check):
            return self._quarantined_unchecked()
        near = found.phash is not None and near_duplicate_elsewhere(
            session, asset, found.phash, self.thresholds
        )
        file_check = apply_reuse(
            FileCheck(found.check, sniffed_mime=found.sniffed_mime or "", phash=found.phash),
            exact_copy_on_other_rift=exact_copy_elsewhere(session, asset),
            near_duplicate_on_other_rift=near,
            thresholds=self.thresholds,
        )
        return replace(found, check=file_check.check)

    def _examine_file(self, asset: AssetContent) -> InspectedAsset:
        found = self._check_stored_file(asset)
        if _file_missing(found.check):
            # A scan may have moved the file to quarantine between finding and reading it;
            # the store looks there too, so a second look reads it.
            found = self._check_stored_file(asset)
        bands = (
            phash_bands(found.phash, self.thresholds.phash_bands) if found.phash is not None else ()
        )
        return InspectedAsset(
            check=found.check, sniffed_mime=found.sniffed_mime, phash=found.phash, phash_bands=bands
        )

    def _check_stored_file(self, asset: AssetContent) -> FileCheck:
        with self.blobs.local_path(asset.storage_key or "") as path:
            return self.files.check_file(
                path,
                declared_mime=asset.declared_mime,
                size_bytes=asset.size_bytes or 0,
                uploaded_at=asset.uploaded_at,
                thresholds=self.thresholds,
            )

    def _quarantined_unchecked(self) -> InspectedAsset:
        # The scan won the race and moved the file to quarantine before the content checks
        # read it: say so, rather than "could not be read" (which asks for a re-upload).
        card = ScoreCard(pass_score=self.thresholds.pass_score)
        card.fail_integrity(
            "file.quarantined",
            "Not checked: the virus scanner found this file infected and quarantined it first.",
        )
        return InspectedAsset(check=card.finish())

    def _fenced(self, rule: Callable[[], AssetCheck]) -> InspectedAsset:
        try:
            return InspectedAsset(check=rule())
        # The text rules read bounded strings; a failure is a bug the asset must not pay
        # for with a stuck proof, so it is an issue that sends the proof to review.
        except Exception as exc:
            card = ScoreCard(pass_score=self.thresholds.pass_score)
            card.fail_integrity(
                "asset.unreadable", f"The asset could not be checked ({describe(exc)})."
            )
            return InspectedAsset(check=card.finish())


def _file_missing(check: AssetCheck) -> bool:
    return any(issue.code == "file.missing" for issue in check.issues)


def build_inspector(
    blobs: BlobStore, vault: LicenseKeyVault, thresholds: VerificationThresholds
) -> AssetInspector:
    """Bind the rules to storage, the key vault and the thresholds."""
    return RuleInspector(blobs, vault, thresholds)
