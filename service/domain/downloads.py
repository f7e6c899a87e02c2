"""Reading a delivered file back: only for the deal's parties, only once it scanned clean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy.orm import Session

from service.blobs import BlobStore
from service.domain.errors import FileNotServable, NotFound
from service.domain.users import User
from service.models import Asset, AssetType, Rift, ScanStatus


@dataclass(frozen=True)
class FileDownload:
    name: str
    mime_type: str
    size_bytes: int
    content: BinaryIO


def _refusal(asset: Asset) -> str | None:
    name = asset.original_name or "the file"
    if asset.deleted_at is not None:
        return f"{name!r} was deleted when the deal closed; it can no longer be downloaded"
    if asset.quarantined_at is not None or asset.scan_status is ScanStatus.INFECTED:
        signature = f" ({asset.scan_signature})" if asset.scan_signature else ""
        return f"{name!r} was flagged by the virus scanner{signature} and is quarantined"
    if asset.scan_status is ScanStatus.PENDING:
        return f"{name!r} is still being scanned for viruses; try again in a few seconds"
    if asset.scan_status is ScanStatus.ERROR:
        return f"{name!r} could not be scanned for viruses, so it is not served; a person will look"
    if asset.scan_status is not ScanStatus.CLEAN or asset.storage_key is None:
        return f"{name!r} has no scanned content to serve"
    return None


def open_clean_file(session: Session, blobs: BlobStore, asset_id: str, user: User) -> FileDownload:
    """Open a file asset for its buyer, seller or an admin; refuse anything not scanned CLEAN."""
    asset = session.get(Asset, asset_id)
    rift = session.get(Rift, asset.rift_id) if asset is not None else None
    # A stranger's request answers exactly like a missing asset; so does a non-file asset.
    if asset is None or rift is None or user.relation_to(rift) is None:
        raise NotFound(f"no asset {asset_id}")
    if asset.type is not AssetType.FILE:
        raise NotFound(f"asset {asset_id} is a {asset.type.value.lower()}, not a file")
    refusal = _refusal(asset)
    if refusal is not None:
        raise FileNotServable(refusal)
    assert asset.storage_key is not None  # _refusal checked it
    # Only CLEAN, never-quarantined records reach here, so the blob is read from the served
    # store; quarantine is never a source of a download.
    try:
        content = blobs.open(asset.storage_key)
    except FileNotFoundError:
        raise FileNotServable(f"the stored copy of {asset.original_name!r} is gone") from None
    return FileDownload(
        name=asset.original_name or "download",
        mime_type=asset.sniffed_mime or "application/octet-stream",
        size_bytes=asset.size_bytes or 0,
        content=content,
    )
