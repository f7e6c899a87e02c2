"""The scan actor: stream a file to clamd, quarantine what it flags."""

from __future__ import annotations

from typing import Any

import dramatiq
from sqlalchemy import bindparam, select

from actors.declare import declare_actor
from actors.services import WorkerServices
from service.db import autocommit_reads
from service.domain.jobs import PermanentJobError
from service.domain.queues import SCAN_ASSET
from service.domain.verification import StoredAsset, record_scan, scan_note
from service.models import Asset, ScanStatus

_SCAN_SUBJECT = select(
    Asset.scan_status, Asset.deleted_at, Asset.storage_key, Asset.proof_id
).where(Asset.id == bindparam("asset_id"))


def register(
    broker: dramatiq.Broker, services: WorkerServices
) -> dramatiq.Actor[[str], dict[str, Any]]:
    """Declare scan_asset on broker, bound to services."""

    def quarantine(asset: StoredAsset) -> None:
        if asset.storage_key:
            services.blobs.quarantine(asset.storage_key)

    def scan_asset(asset_id: str) -> dict[str, Any]:
        # One statement, no transaction around it (the lock is record_scan's).
        with autocommit_reads(services.sessions) as conn:
            asset = conn.execute(_SCAN_SUBJECT, {"asset_id": asset_id}).one_or_none()
            if asset is None:
                raise PermanentJobError(f"no asset {asset_id}")
            if asset.scan_status is not ScanStatus.PENDING or asset.deleted_at is not None:
                return {
                    "asset_id": asset_id,
                    "scan_status": asset.scan_status.value,
                    "skipped": True,
                }
            storage_key, proof_id = asset.storage_key, asset.proof_id
        if storage_key is None:
            raise PermanentJobError(f"asset {asset_id} has no stored file")
        # ScannerUnavailable propagates: Retries backs off and tries again. A vanished blob
        # will not come back: fail at once; SCAN_ASSET's final-failure compensation then
        # marks the file ERROR, which sends the proof to review.
        try:
            stream = services.blobs.open(storage_key)
        except FileNotFoundError:
            raise PermanentJobError(f"asset {asset_id}: its stored file is gone") from None
        with stream:
            scan = services.scanner.scan_stream(stream)
        status = ScanStatus(scan.status.value)
        services.metrics.scan_verdicts.labels(status.value).inc()
        result, verdict = record_scan(
            services.sessions,
            asset_id,
            status,
            scan_note(scan.signature or scan.detail),
            services.rules,
            on_infected=quarantine,
            clock=services.clock,
            ids=services.ids,
            proof_id=proof_id,
        )
        services.metrics.observe_verdict(verdict)
        return result

    return declare_actor(broker, SCAN_ASSET, scan_asset, services)
