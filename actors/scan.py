"""The scan actor: stream a file to clamd, quarantine what it flags."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors.services import WorkerServices
from service.domain.jobs import PermanentJobError
from service.domain.queues import SCAN_ASSET
from service.domain.verification import record_scan
from service.models import Asset, ScanStatus

SCAN_TIME_LIMIT_MS = 300_000
SCAN_MAX_AGE_MS = 24 * 3600 * 1000


def register(broker: dramatiq.Broker, services: WorkerServices) -> dramatiq.Actor[Any, Any]:
    """Declare scan_asset on broker, bound to services."""

    def quarantine(asset: Asset) -> None:
        if asset.storage_key:
            services.blobs.quarantine(asset.storage_key)

    def scan_asset(asset_id: str) -> dict[str, Any]:
        with services.sessions() as session:
            asset = session.get(Asset, asset_id)
            if asset is None:
                raise PermanentJobError(f"no asset {asset_id}")
            if asset.scan_status is not ScanStatus.PENDING or asset.deleted_at is not None:
                return {
                    "asset_id": asset_id,
                    "scan_status": asset.scan_status.value,
                    "skipped": True,
                }
            storage_key = asset.storage_key
        if storage_key is None:
            raise PermanentJobError(f"asset {asset_id} has no stored file")
        # ScannerUnavailable propagates: Retries backs off and tries again.
        with services.blobs.open(storage_key) as stream:
            scan = services.scanner.scan_stream(stream)
        status = ScanStatus(scan.status.value)
        services.metrics.scan_verdicts.labels(status.value).inc()
        result, verdict = record_scan(
            services.sessions,
            asset_id,
            status,
            scan.signature or scan.detail,
            services.rules,
            on_infected=quarantine,
            clock=services.clock,
            ids=services.ids,
        )
        services.metrics.observe_verdict(verdict)
        return result

    return dramatiq.actor(
        scan_asset,
        broker=broker,
        actor_name=SCAN_ASSET.actor_name,
        queue_name=SCAN_ASSET.queue_name,
        max_retries=services.settings.max_retries,
        min_backoff=services.settings.min_backoff_ms,
        max_backoff=services.settings.max_backoff_ms,
        time_limit=SCAN_TIME_LIMIT_MS,
        max_age=SCAN_MAX_AGE_MS,
        throws=(PermanentJobError,),
    )


def give_up_scan(services: WorkerServices, asset_id: str, reason: str) -> None:
    """Retries ran out: the file is unscannable, which sends its proof to review."""
    services.metrics.scan_verdicts.labels(ScanStatus.ERROR.value).inc()
    _, verdict = record_scan(
        services.sessions,
        asset_id,
        ScanStatus.ERROR,
        reason,
        services.rules,
        on_infected=lambda _asset: None,
        clock=services.clock,
        ids=services.ids,
    )
    services.metrics.observe_verdict(verdict)
