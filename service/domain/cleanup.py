"""Cancelled and refunded deals: delete their stored proof, keep tombstones for audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.blobs import BlobStore
from service.db import SessionFactory, transaction
from service.domain.clock import Clock
from service.domain.jobs import PermanentJobError
from service.domain.rifts import system_note
from service.domain.transitions import CLEANUP_TARGETS
from service.models import Asset, Rift


class CleanupRefused(PermanentJobError):
    """The rift is not cancelled or refunded: nothing may be deleted."""


def clean_up_rift(
    sessions: SessionFactory, blobs: BlobStore, rift_id: str, clock: Clock
) -> dict[str, Any]:
    """Delete a closed rift's blobs and mark its assets deleted; safe to run again.

    Each blob is deleted before its row is marked, so a crash in between leaves a row
    whose blob is already gone: the next run finds nothing to delete and marks it.
    Quarantined blobs stay for the quarantine retention; the sweep removes them.
    """
    with sessions() as session:
        rift = session.get(Rift, rift_id)
        if rift is None:
            raise CleanupRefused(f"no rift {rift_id}")
        if rift.status not in CLEANUP_TARGETS:
            raise CleanupRefused(f"rift {rift_id} is {rift.status.value}; not cleaning up")
        pending = list(
            session.scalars(
                select(Asset).where(Asset.rift_id == rift_id, Asset.deleted_at.is_(None))
            )
        )

    deleted_blobs = 0
    for asset in pending:
        if asset.storage_key and asset.quarantined_at is None and blobs.delete(asset.storage_key):
            deleted_blobs += 1
        with transaction(sessions) as session:
            row = session.get_one(Asset, asset.id)
            row.deleted_at = clock()
            # Keep hashes and fingerprints (reuse detection outlives the deal); drop content.
            row.value_text = None
            row.value_encrypted = None
    if pending:
        with transaction(sessions) as session:
            session.add(
                system_note(
                    rift_id, "assets_deleted", f"{len(pending)} assets deleted after close", clock()
                )
            )
    return {"rift_id": rift_id, "assets_deleted": len(pending), "blobs_deleted": deleted_blobs}
