"""Run the verification rules on one stored asset, with the reuse lookups they need."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    String,
    and_,
    bindparam,
    cast,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from service.blobs import BlobStore
from service.domain.inspector import AssetContent, InspectedAsset, ToCrossCheck
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


@dataclass(frozen=True)
class ReuseFound:
    """What the reuse lookups found on other rifts, for all of a proof's assets at once."""

    copied_sha256s: frozenset[str] = frozenset()
    reused_keys: frozenset[str] = frozenset()
    # Other rifts' perceptual hashes sharing a band with one of the proof's pictures.
    picture_candidates: frozenset[int] = frozenset()

    def near_duplicate(self, phash: int, thresholds: VerificationThresholds) -> bool:
        return any(
            hamming(phash, other) <= thresholds.near_duplicate_max_distance
            for other in self.picture_candidates
        )


@functools.cache
def _reuse_lookup(bands: int) -> CompoundSelect[str, str | None, int | None]:
    """The three reuse lookups of a proof in one statement (one round trip), built once.

    Exact copies by sha256 and reused keys by fingerprint use their indexes; pictures go
    through the band index: two hashes within distance d < bands share at least one band
    exactly (pigeonhole), so an equality lookup per band finds every candidate, and only
    those few are compared bit by bit. Probing the bands of all the proof's pictures at
    once finds a superset of each picture's candidates; the bitwise comparison is exact.
    """
    other_rift = bindparam("rift_id", type_=Asset.rift_id.type)
    no_text, no_hash = cast(null(), String), cast(null(), BigInteger)
    copies = (
        select(literal("sha256").label("kind"), Asset.sha256.label("value"), no_hash)
        .where(Asset.sha256.in_(bindparam("sha256s", expanding=True)), Asset.rift_id != other_rift)
        .distinct()
    )
    keys = (
        select(literal("key"), Asset.key_fingerprint, no_hash)
        .where(
            Asset.key_fingerprint.in_(bindparam("fingerprints", expanding=True)),
            Asset.rift_id != other_rift,
        )
        .distinct()
    )
    matches = or_(
        *(
            and_(
                ImageHashBand.band_no == no,
                ImageHashBand.band_value.in_(bindparam(f"band_{no}", expanding=True)),
            )
            for no in range(bands)
        )
    )
    pictures = (
        select(literal("phash"), no_text, Asset.phash)
        .join(ImageHashBand, ImageHashBand.asset_id == Asset.id)
        .where(matches, ImageHashBand.rift_id != other_rift, Asset.phash.is_not(None))
        .distinct()
    )
    return union_all(copies, keys, pictures)


def reuse_elsewhere(
    session: Session,
    rift_id: str,
    *,
    sha256s: Collection[str],
    fingerprints: Collection[str],
    phashes: Collection[int],
    thresholds: VerificationThresholds,
) -> ReuseFound:
    """Look up, on rifts other than rift_id, the files, keys and pictures of one proof."""
    if not (sha256s or fingerprints or phashes):
        return ReuseFound()
    probes: list[set[int]] = [set() for _ in range(thresholds.phash_bands)]
    for phash in phashes:
        for values, band in zip(
            probes,
            band_probes(phash, thresholds.phash_bands, thresholds.near_duplicate_max_distance),
            strict=True,
        ):
            values |= band
    params: dict[str, object] = {
        "rift_id": rift_id,
        "sha256s": sorted(sha256s),
        "fingerprints": sorted(fingerprints),
    }
    params.update({f"band_{no}": sorted(values) for no, values in enumerate(probes)})
    copies: set[str] = set()
    keys: set[str] = set()
    pictures: set[int] = set()
    for kind, value, candidate in session.execute(_reuse_lookup(thresholds.phash_bands), params):
        if candidate is not None:
            pictures.add(candidate)
        elif value is not None:
            (copies if kind == "sha256" else keys).add(value)
    return ReuseFound(frozenset(copies), frozenset(keys), frozenset(pictures))


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

    def cross_check(
        self, session: Session, rift_id: str, assets: Sequence[ToCrossCheck]
    ) -> list[InspectedAsset]:
        """Add the reuse findings of other rifts' assets, looked up for all at once."""
        found = reuse_elsewhere(
            session,
            rift_id,
            sha256s={a.sha256 for a in assets if a.type is AssetType.FILE and a.sha256},
            fingerprints={
                a.key_fingerprint
                for a in assets
                if a.type is AssetType.LICENSE_KEY and a.key_fingerprint
            },
            phashes={
                a.found.phash
                for a in assets
                if a.type is AssetType.FILE and a.found.phash is not None
            },
            thresholds=self.thresholds,
        )
        return [self._with_reuse(asset, found) for asset in assets]

    def _with_reuse(self, asset: ToCrossCheck, reuse: ReuseFound) -> InspectedAsset:
        found = asset.found
        if asset.type is AssetType.LICENSE_KEY:
            key_check = apply_key_reuse(
                found.check,
                reused_on_other_rift=asset.key_fingerprint in reuse.reused_keys,
                thresholds=self.thresholds,
            )
            return replace(found, check=key_check)
        if asset.type is not AssetType.FILE:
            return found
        if asset.quarantined and _file_missing(found.check):
            return self._quarantined_unchecked()
        file_check = apply_reuse(
            FileCheck(found.check, sniffed_mime=found.sniffed_mime or "", phash=found.phash),
            exact_copy_on_other_rift=asset.sha256 in reuse.copied_sha256s,
            near_duplicate_on_other_rift=found.phash is not None
            and reuse.near_duplicate(found.phash, self.thresholds),
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
) -> RuleInspector:
    """Bind the rules to storage, the key vault and the thresholds."""
    return RuleInspector(blobs, vault, thresholds)
