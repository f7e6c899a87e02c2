"""What actors are given to work with: plain services, never a request or a global."""

from __future__ import annotations

from dataclasses import dataclass

from service.blobs import BlobStore
from service.db import SessionFactory
from service.domain.clock import Clock, IdFactory
from service.domain.inspector import AssetInspector
from service.domain.verdicts import VerdictRules
from service.observability.worker_metrics import WorkerMetrics
from service.scanning.verdict import VirusScanner
from service.settings import Settings


@dataclass(frozen=True)
class WorkerServices:
    settings: Settings
    sessions: SessionFactory
    blobs: BlobStore
    scanner: VirusScanner
    inspect: AssetInspector
    rules: VerdictRules
    metrics: WorkerMetrics
    clock: Clock
    ids: IdFactory
