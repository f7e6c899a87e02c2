"""Run the verification rules on one stored asset, with the reuse lookups they need."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service.blobs import BlobStore
from service.domain.verification import AssetInspector, InspectedAsset
from service.models import Asset, AssetType, ImageHashBand, Rift
from service.verification.files import apply_reuse, check_file
from service.verification.images import band_probes, hamming, phash_bands
from service.verification.issues import ScoreCard
from service.verification.license_keys import LicenseKeyVault, check_license_key
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


def build_inspector(
    blobs: BlobStore, vault: LicenseKeyVault, thresholds: VerificationThresholds
) -> AssetInspector:
    """Bind the rules to storage, the key vault and the thresholds."""

    def inspect(
        session: Session, asset: Asset, rift: Rift, uploaded_at: datetime
    ) -> InspectedAsset:
        if asset.type is AssetType.FILE:
            return _inspect_file(session, asset, uploaded_at)
        if asset.type is AssetType.LICENSE_KEY:
            key = vault.decrypt(asset.value_encrypted or b"")
            check = check_license_key(
                key,
                reused_on_other_rift=key_reused_elsewhere(session, asset),
                thresholds=thresholds,
            )
            return InspectedAsset(check=check)
        value = asset.value_text or ""
        if asset.type is AssetType.TRACKING:
            return InspectedAsset(check=check_tracking_number(value, thresholds=thresholds).check)
        if asset.type is AssetType.URL:
            return InspectedAsset(check=check_url(value, thresholds=thresholds).check)
        if asset.type is AssetType.TEXT:
            return InspectedAsset(check=check_text(value, thresholds=thresholds))
        card = ScoreCard(pass_score=thresholds.pass_score)
        card.fail_integrity("asset.unknown_type", f"Unknown asset type {asset.type}.")
        return InspectedAsset(check=card.finish())

    def _inspect_file(session: Session, asset: Asset, uploaded_at: datetime) -> InspectedAsset:
        with blobs.local_path(asset.storage_key or "") as path:
            found = check_file(
                path,
                declared_mime=asset.declared_mime,
                size_bytes=asset.size_bytes or 0,
                uploaded_at=uploaded_at,
                thresholds=thresholds,
            )
        near = found.phash is not None and near_duplicate_elsewhere(
            session, asset, found.phash, thresholds
        )
        found = apply_reuse(
            found,
            exact_copy_on_other_rift=exact_copy_elsewhere(session, asset),
            near_duplicate_on_other_rift=near,
            thresholds=thresholds,
        )
        bands = phash_bands(found.phash, thresholds.phash_bands) if found.phash is not None else ()
        return InspectedAsset(
            check=found.check, sniffed_mime=found.sniffed_mime, phash=found.phash, phash_bands=bands
        )

    return inspect
