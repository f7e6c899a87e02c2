"""The background work the domain asks for, by actor and queue name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobKind:
    actor_name: str
    queue_name: str


VERIFY_PROOF = JobKind("verify_proof", "verification")
SCAN_ASSET = JobKind("scan_asset", "scan")
CLEAN_UP_RIFT = JobKind("clean_up_rift", "cleanup")

ALL_JOB_KINDS = (VERIFY_PROOF, SCAN_ASSET, CLEAN_UP_RIFT)
QUEUE_NAMES = tuple(kind.queue_name for kind in ALL_JOB_KINDS)
