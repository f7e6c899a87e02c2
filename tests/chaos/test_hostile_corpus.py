"""A corpus of hostile files through the whole system: every proof gets a verdict, in budget.

Budget (CI): CORPUS_SIZE submissions (tests/chaos/hostile_corpus.py, seeded), sent
back to back to gunicorn with the real verification and scan pools and clamd; about 40 s
on a 2-core machine, cut at RUN_BUDGET_S. The 49-megapixel PNGs are the slow files (about
2 s each to check); the others take milliseconds.

The memory promise is the inspection budget's (service/verification/budget.py): each
file is checked in a child of the worker's fork server under RLIMIT_AS = what the child
maps + `file_inspection_memory_bytes`; the worker process itself never parses a file. So
no process of a pool (the worker processes and their fork servers) may peak above its
baseline (measured before any file, once the pool is ready) plus that budget; and none may
have died (a pool whose worker was OOM-killed and restarted would hide its peak).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from service.models import JobState, Proof
from service.verification.thresholds import VerificationThresholds
from tests.chaos.hostile_corpus import ALWAYS_FLAGGED, REFUSED_AT_THE_DOOR, HostileFile, corpus
from tests.chaos.system import MIN_SUBMISSIONS, POOLS, TRACKING, ChaosSystem, Figures
from tests.monitoring.stack import bearer_headers, child_pids
from tests.support.flows import submit

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(240)]

CORPUS_SIZE = 110
RUN_BUDGET_S = 90.0
VERDICTS_AFTER_S = 90.0
MIB = 1024 * 1024
INSPECTION_BUDGET_MIB = VerificationThresholds().file_inspection_memory_bytes / MIB


def descendants(pid: int) -> list[int]:
    """The pool's main process and everything under it (worker processes, fork servers)."""
    found = [pid]
    for child in child_pids(pid):
        found += descendants(child)
    return found


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pool_peaks(system: ChaosSystem, queue: str) -> dict[int, float]:
    return {pid: peak_rss_mib(pid) for pid in descendants(system.pools[queue].process.pid)}


def submit_corpus(
    system: ChaosSystem, measured: Figures
) -> tuple[Counter[str], dict[str, HostileFile]]:
    """Submit one corpus file to each funded rift; refusals must be 4xx JSON, never 5xx."""
    auth = bearer_headers(system.settings)
    files = corpus(CORPUS_SIZE)
    refused: Counter[str] = Counter()
    by_proof: dict[str, HostileFile] = {}
    for i, (rift_id, hostile) in enumerate(zip(system.rifts, files, strict=True)):
        measured.submitted += 1
        result = submit(system.client, auth, rift_id, fields=TRACKING, files=[hostile.part()])
        if result.status_code == 202:
            measured.accepted += 1
            system.accepted.append(result.json["proof_id"])
            by_proof[result.json["proof_id"]] = hostile
            assert hostile.kind not in REFUSED_AT_THE_DOOR, (i, hostile.kind)
        else:
            assert 400 <= result.status_code < 500, (i, hostile.kind, result.status_code)
            body = result.json
            assert body["error"] and body["message"], (i, hostile.kind, body)
            # Only a file that is no longer what it says (a mutation can break its magic
            # bytes: 415) or one the door refuses by design; a bomb must reach the rules.
            may_be_refused = hostile.kind in REFUSED_AT_THE_DOOR or hostile.mutated
            assert may_be_refused, (i, hostile.kind, body)
            refused[f"{hostile.kind} {result.status_code}"] += 1
    return refused, by_proof


def test_a_hostile_corpus_gets_a_verdict_for_every_proof_within_the_memory_budget(
    chaos_system, figures
):
    started = time.monotonic()
    system = chaos_system()
    measured = figures(f"hostile corpus of {CORPUS_SIZE} files")
    baseline = {queue: max(pool_peaks(system, queue).values()) for queue in POOLS}
    workers_before = {queue: set(child_pids(system.pools[queue].process.pid)) for queue in POOLS}
    system.fund_rifts(CORPUS_SIZE)

    refused, by_proof = submit_corpus(system, measured)
    system.wait_for_verdicts(timeout_s=VERDICTS_AFTER_S)
    elapsed = time.monotonic() - started

    system.count(measured)
    with system.sessions() as session:
        decided = session.execute(
            select(Proof.id, Proof.route_to_review, Proof.auto_approved).where(
                Proof.id.in_(system.accepted)
            )
        ).all()
    review = sum(1 for _, to_review, _ in decided if to_review)
    # A file built to be hostile (not one a mutation may have left harmless) never passes.
    approved_hostile = [
        by_proof[proof_id].kind
        for proof_id, _, approved in decided
        if approved and by_proof[proof_id].kind in ALWAYS_FLAGGED
    ]
    peaks = {queue: pool_peaks(system, queue) for queue in POOLS}
    bounds = {queue: baseline[queue] + INSPECTION_BUDGET_MIB for queue in POOLS}
    measured.notes.update(
        {
            "4xx": sum(refused.values()),
            "review": review,
            **{f"peak_rss_{q}_mib": f"{max(peaks[q].values()):.0f}/{bounds[q]:.0f}" for q in POOLS},
            "run_s": round(elapsed, 1),
        }
    )
    measured.notes["pool_processes"] = sum(len(p) for p in peaks.values())
    print("refused at the door:", dict(refused))

    # Every accepted proof reached one verdict; nothing was refused with a 5xx.
    assert measured.submitted == CORPUS_SIZE >= MIN_SUBMISSIONS
    assert measured.accepted + sum(refused.values()) == measured.submitted
    assert measured.lost == 0, f"{measured.line()}\n{system.logs()}"
    assert measured.duplicates == 0, measured.line()
    assert system.clean_without_a_scan() == 0
    # A hostile file is an issue on the file, never a job that failed or died on it.
    failed = [
        (j.actor_name, j.state, j.last_error) for j in system.jobs(JobState.FAILED, JobState.DEAD)
    ]
    assert not failed, failed
    assert not approved_hostile, approved_hostile
    # No pool process above its baseline plus the inspection budget, and none died.
    for queue in POOLS:
        assert max(peaks[queue].values()) <= bounds[queue], (queue, peaks[queue], bounds[queue])
        assert workers_before[queue] <= set(peaks[queue]), (queue, "a worker process died")
    assert elapsed < RUN_BUDGET_S, measured.line()
