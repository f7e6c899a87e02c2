"""Compensate a job that will never succeed, as its kind declares (`JobKind.on_final_failure`)."""

from __future__ import annotations

from dataclasses import dataclass

from service.db import SessionFactory
from service.domain.clock import Clock, IdFactory
from service.domain.queues import JobKind, OnFinalFailure
from service.domain.verification import FinalVerdict, VerdictRules, record_scan, scan_note
from service.models import ScanStatus


@dataclass(frozen=True)
class CompensationServices:
    """What a compensation may use: the database and the verdict rules, nothing of a worker."""

    sessions: SessionFactory
    rules: VerdictRules
    clock: Clock
    ids: IdFactory


@dataclass(frozen=True)
class Compensated:
    """What a compensation changed, for the caller's metrics."""

    verdict: FinalVerdict | None = None
    #: The scan status a compensation recorded for a file, if it recorded one.
    scan_status: ScanStatus | None = None


def compensate_final_failure(
    kind: JobKind, services: CompensationServices, subject_id: str, error: str | None
) -> Compensated:
    """Run the compensation kind declares for its job on subject_id, which finally failed."""
    if kind.on_final_failure is OnFinalFailure.MARK_FILE_UNSCANNABLE:
        return give_up_scan(services, subject_id, error)
    return Compensated()


def give_up_scan(services: CompensationServices, asset_id: str, error: str | None) -> Compensated:
    """Retries ran out: the file is unscannable, which sends its proof to review."""
    _, verdict = record_scan(
        services.sessions,
        asset_id,
        ScanStatus.ERROR,
        scan_note(f"scan failed: {error}"),
        services.rules,
        on_infected=lambda _asset: None,
        clock=services.clock,
        ids=services.ids,
    )
    return Compensated(verdict=verdict, scan_status=ScanStatus.ERROR)
