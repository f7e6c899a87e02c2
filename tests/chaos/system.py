"""The whole system under load for the chaos suite: processes, submissions, and the count.

Each scenario starts its own Redis (and, where it stops one, its own PostgreSQL), the API
under gunicorn, one worker pool per queue, the scheduler, and a proxy in front of clamd;
submits at least MIN_SUBMISSIONS proofs with a file over HTTP while a fault happens; then
counts what the promise is about: every accepted proof has a verdict (none lost), decided
once (no duplicate), no file CLEAN without a scan that succeeded.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from actors.queue_stats import HEARTBEAT_KEY
from service.commit_outcome import SETTLE_WITHIN_S
from service.db import SessionFactory
from service.domain.queues import SCAN_ASSET
from service.models import Asset, Job, JobState, Proof, RiftEvent, RiftStatus, ScanStatus
from service.settings import Settings
from tests.chaos.clamd_proxy import ClamdProxy
from tests.chaos.servers import RedisServer
from tests.conftest import settings_env
from tests.monitoring.stack import HttpClient, Service, Stack, bearer_headers, child_pids
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit
from tests.support.processes import ManagedProcess, free_port, worker_argv

MIN_SUBMISSIONS = 100
TRACKING = {"tracking_number": "1Z999AA10123456784"}
VERDICT_TIMEOUT_S = 90.0
# A submission whose COMMIT answer an outage cut waits for the database to say what became
# of it, up to SETTLE_WITHIN_S, before the API answers (service/commit_outcome.py); a
# client that gave up sooner would resend a proof that may be stored. The margin is the
# request's own work on a loaded machine.
ANSWER_WITHIN_S = SETTLE_WITHIN_S + 15.0
POOLS = ("verification", "scan")


def note(i: int) -> tuple[str, bytes, str]:
    # A distinct file per submission: the same sha256 on another rift would be an issue.
    return (f"delivery-{i}.txt", (DELIVERY_NOTE + f"Order {i}.\n").encode(), "text/plain")


@dataclass
class Figures:
    """What one scenario measured; printed by the suite's summary."""

    scenario: str
    submitted: int = 0
    accepted: int = 0
    unavailable_503: int = 0
    verdicts: int = 0
    lost: int = 0
    duplicates: int = 0
    recovery_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        recovery = "-" if self.recovery_s is None else f"{self.recovery_s:.1f}"
        extra = " ".join(f"{k}={v}" for k, v in self.notes.items())
        return (
            f"{self.scenario}: submitted={self.submitted} accepted={self.accepted} "
            f"503={self.unavailable_503} verdicts={self.verdicts} lost={self.lost} "
            f"duplicates={self.duplicates} recovery_s={recovery} {extra}"
        ).rstrip()


@dataclass
class ChaosSystem:
    settings: Settings
    stack: Stack
    sessions: SessionFactory
    redis_server: RedisServer
    redis: redis.Redis
    clamd_proxy: ClamdProxy
    api: Service | None = None
    pools: dict[str, Service] = field(default_factory=dict)
    scheduler: Service | None = None
    accepted: list[str] = field(default_factory=list)
    rifts: list[str] = field(default_factory=list)
    #: Rifts whose submission was refused with 503 (a client sends it again later).
    refused: list[str] = field(default_factory=list)

    # Processes.
    def start(self, *, pools: tuple[str, ...] = POOLS) -> ChaosSystem:
        self.api = self.stack.api(workers=2, threads=4)
        self.scheduler = self.stack.scheduler()
        for queue in pools:
            self.pools[queue] = self.stack.pool([queue], threads=2)
        self.stack.wait_ready(self.api, self.scheduler, *self.pools.values())
        return self

    def start_pool(self, queue: str, *, setup: str | None = None) -> Service:
        """Start a pool for queue (with another broker setup callable, if given)."""
        pool = self.stack.pool([queue], threads=2) if setup is None else self._pool(queue, setup)
        self.stack.wait_ready(pool)
        self.pools[queue] = pool
        return pool

    def _pool(self, queue: str, setup: str) -> Service:
        # What Stack.pool does, with a different `dramatiq <setup>` entry point.
        port = free_port()
        name = f"pool-{queue}-{port}"
        metrics_dir = self.stack.workdir / name
        metrics_dir.mkdir()
        env = settings_env(
            self.settings,
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            dramatiq_prom_db=str(metrics_dir),
            dramatiq_prom_host="127.0.0.1",
            dramatiq_prom_port=str(port),
        )
        log = self.stack.workdir / f"{name}.log"
        process = ManagedProcess(worker_argv([queue], threads=2, setup=setup), env, log).start()
        key = HEARTBEAT_KEY.format(queue=queue)
        url = f"http://127.0.0.1:{port}"
        service = Service(name, process, url, lambda: bool(self.redis.zcard(key)))
        self.stack.services.append(service)
        return service

    def kill_pool(self, queue: str) -> None:
        """SIGKILL the whole pool: what an OOM kill or a pulled plug looks like."""
        self.pools.pop(queue).process.kill_hard()

    def stop_pool(self, queue: str, timeout_s: float = 60.0) -> int:
        """One SIGTERM to the pool's main process, as supervisord sends it; its exit status."""
        process = self.pools.pop(queue).process
        assert process.proc is not None
        os.kill(process.pid, signal.SIGTERM)
        return process.proc.wait(timeout=timeout_s)

    # Load.
    @property
    def client(self) -> HttpClient:
        assert self.api is not None
        return HttpClient(self.api.url, timeout_s=ANSWER_WITHIN_S)

    def fund_rifts(self, count: int) -> None:
        auth = bearer_headers(self.settings)
        self.rifts += [funded_rift(self.client, auth)["id"] for _ in range(count)]

    def submit_all(
        self,
        figures: Figures,
        *,
        pace_s: float = 0.0,
        during: Callable[[int], None] | None = None,
        rifts: list[str] | None = None,
        file_for: Callable[[int], tuple[str, bytes, str]] = note,
    ) -> None:
        """Submit a proof with a file to every funded rift; `during(i)` runs before each.

        `file_for(i)` is the i-th submission's file: the hostile-file scenario passes its
        corpus here (and checks `peak_rss_mib` of the pools against the memory budget).
        """
        auth = bearer_headers(self.settings)
        for i, rift_id in enumerate(rifts if rifts is not None else self.rifts):
            if during is not None:
                during(i)
            figures.submitted += 1
            sent_at = time.monotonic()
            result = submit(self.client, auth, rift_id, fields=TRACKING, files=[file_for(i)])
            answered_in_s = round(time.monotonic() - sent_at, 1)
            figures.notes["slowest_answer_s"] = max(
                answered_in_s, figures.notes.get("slowest_answer_s", 0.0)
            )
            if result.status_code == 202:
                figures.accepted += 1
                self.accepted.append(result.json["proof_id"])
            elif result.status_code == 503:
                body = result.json
                assert body["error"] and body["message"], body
                figures.unavailable_503 += 1
                self.refused.append(rift_id)
            else:
                raise AssertionError(f"submission {i}: {result.status_code} {result.text}")
            if pace_s:
                time.sleep(pace_s)

    # The count.
    def decided(self) -> int:
        with self.sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(Proof)
                    .where(Proof.id.in_(self.accepted), Proof.verdict_at.is_not(None))
                )
                or 0
            )

    def wait_for_verdicts(self, timeout_s: float = VERDICT_TIMEOUT_S) -> float:
        """Wait until every accepted proof has a verdict; return how long that took."""
        started = time.monotonic()
        while self.decided() < len(self.accepted):
            if time.monotonic() - started > timeout_s:
                break
            time.sleep(0.25)
        return time.monotonic() - started

    def count(self, figures: Figures) -> Figures:
        figures.verdicts = self.decided()
        figures.lost = len(self.accepted) - figures.verdicts
        figures.duplicates = self.duplicated_verdicts()
        return figures

    def duplicated_verdicts(self) -> int:
        """Rifts whose proof was decided more than once (moved to review, or verified)."""
        decided = (RiftEvent.kind == "proof_verified") | (
            (RiftEvent.from_status == RiftStatus.PROOF_SUBMITTED)
            & (RiftEvent.to_status == RiftStatus.UNDER_REVIEW)
        )
        with self.sessions() as session:
            per_rift = session.execute(
                select(RiftEvent.rift_id, func.count())
                .where(RiftEvent.rift_id.in_(self.rifts), decided)
                .group_by(RiftEvent.rift_id)
            ).all()
        return sum(1 for _, n in per_rift if n > 1)

    def clean_without_a_scan(self) -> int:
        """Files CLEAN whose scan job did not succeed: must always be 0."""
        with self.sessions() as session:
            clean = session.scalars(
                select(Asset.id).where(
                    Asset.rift_id.in_(self.rifts), Asset.scan_status == ScanStatus.CLEAN
                )
            ).all()
            scanned = set(
                session.scalars(
                    select(Job.subject_id).where(
                        Job.actor_name == SCAN_ASSET.actor_name,
                        Job.subject_id.in_(clean),
                        Job.state == JobState.SUCCEEDED,
                    )
                )
            )
        return len(set(clean) - scanned)

    def jobs(self, *states: JobState) -> list[Job]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Job).where(Job.rift_id.in_(self.rifts), Job.state.in_(states))
                )
            )

    def waiting_messages(self, queue: str) -> int:
        return int(self.redis.llen(f"dramatiq:{queue}"))

    def peak_rss_mib(self, queue: str) -> float:
        """The highest peak resident memory (VmHWM) of the pool's worker processes."""
        main = self.pools[queue].process.pid
        peaks = [0.0]
        for pid in [main, *child_pids(main)]:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return max(peaks)

    def logs(self) -> str:
        return "\n".join(
            f"--- {s.name}:\n{s.process.output()[-3000:]}" for s in self.stack.services
        )
