"""What check_proof asks of the file rules: the inspector interface and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from service.models import AssetType
from service.verification.issues import AssetCheck


@dataclass(frozen=True)
class InspectedAsset:
    """What checking one asset found, ready to be stored with it."""

    check: AssetCheck
    sniffed_mime: str | None = None
    phash: int | None = None
    phash_bands: tuple[int, ...] = ()


class AssetRow(Protocol):
    """An asset as stored: a loaded row, or the verification job's read of one."""

    @property
    def id(self) -> str: ...

    @property
    def rift_id(self) -> str: ...

    @property
    def type(self) -> AssetType: ...

    @property
    def storage_key(self) -> str | None: ...

    @property
    def declared_mime(self) -> str | None: ...

    @property
    def size_bytes(self) -> int | None: ...

    @property
    def value_text(self) -> str | None: ...

    @property
    def value_encrypted(self) -> bytes | None: ...


@dataclass(frozen=True)
class AssetContent:
    """What inspecting one asset needs from its row, copied out so no session stays open."""

    id: str
    rift_id: str
    type: AssetType
    storage_key: str | None
    declared_mime: str | None
    size_bytes: int | None
    value_text: str | None
    value_encrypted: bytes | None
    uploaded_at: datetime

    @classmethod
    def of(cls, asset: AssetRow, uploaded_at: datetime) -> AssetContent:
        """Copy what the inspection reads from an asset row."""
        return cls(
            id=asset.id,
            rift_id=asset.rift_id,
            type=asset.type,
            storage_key=asset.storage_key,
            declared_mime=asset.declared_mime,
            size_bytes=asset.size_bytes,
            value_text=asset.value_text,
            value_encrypted=asset.value_encrypted,
            uploaded_at=uploaded_at,
        )


@dataclass(frozen=True)
class ToCrossCheck:
    """An examined asset with what its reuse lookups need, read under the proof's lock."""

    type: AssetType
    sha256: str | None
    key_fingerprint: str | None
    # Quarantined by a scan (possibly after the content was read): see RuleInspector.
    quarantined: bool
    found: InspectedAsset


class AssetInspector(Protocol):
    """The rules bound to storage: content first (no session), then the reuse lookups."""

    def examine(self, asset: AssetContent) -> InspectedAsset:
        """Check one asset's content; runs with no database session open."""
        ...

    def cross_check(
        self, session: Session, rift_id: str, assets: Sequence[ToCrossCheck]
    ) -> list[InspectedAsset]:
        """Add what indexed lookups on rifts other than rift_id find (the same file, key or
        picture), for all of a proof's assets in one round trip."""
        ...
