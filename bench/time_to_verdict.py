"""2. Time to verdict: submit a small proof over HTTP, poll until the status says completed.

A real gunicorn API, a verification pool and a scan pool (as in supervisord.conf), clamd
and PostgreSQL. Submissions come one at a time at a steady modest rate, so the workers are
idle in between: exactly where Dramatiq's Redis consumer backs off (it sleeps up to
`dramatiq_worker_timeout` ms between empty fetches). Each worker setting is measured in
alternating rounds, and its idle cost is read from Redis while nothing is submitted.

Each verdict is split by the proof's job records and its verdict time (one host, so the
client's and the servers' wall clocks agree): the 202; the queue wait (dispatch to start,
the longest of the proof's jobs); the checks (the verification job's run); the scan (the
longest scan job's run); the decision (from the verdict's decided_at to the end of the job
that decided it: storing the verdict, the commit, the job's record); and the poll (from
that job's end until a status poll says completed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import select

from bench.client import SELLER, Api, bearer, funded_rifts, small_proof
from bench.harness import BenchRun, Figure, IdleLoad, Proc, Spread, idle_load, percentile
from service.domain.queues import VERIFY_PROOF
from service.models import Job

POLL_INTERVAL_S = 0.005
VERDICT_TIMEOUT_S = 30.0
WARMUP_SUBMISSIONS = 3
DEFAULT_TIMEOUT_MS = 1000  # Dramatiq's own default for dramatiq_worker_timeout
# Issue 14's targets, at the default worker timeout.
TARGET_P50_MS = 30.0
TARGET_P99_MS = 100.0
TARGET_IDLE_CMDS_PER_S = 15.0


@dataclass(frozen=True)
class Config:
    timeouts_ms: tuple[int, ...] = (DEFAULT_TIMEOUT_MS, 10)
    rounds: int = 3
    per_round: int = 30
    interval_s: float = 0.25
    idle_s: float = 10.0
    verification_pool: tuple[int, int] = (1, 4)  # processes, threads (supervisord.conf)
    scan_pool: tuple[int, int] = (1, 2)


@dataclass
class Sample:
    submit_s: float  # POST until 202
    verdict_s: float  # POST until a poll says completed
    server_s: float  # verification job created until verdict decided (server clocks)
    decided_at: datetime  # the verdict's time (server clock)
    seen_at: datetime  # when a poll first said completed (client's wall clock)
    wait_s: float = 0.0  # longest wait of the proof's jobs between dispatch and start
    verify_s: float = 0.0  # verification job run time
    scan_s: float = 0.0  # longest scan job run time
    decision_s: float = 0.0  # decided_at until the deciding job's end
    poll_s: float = 0.0  # the deciding job's end until a poll saw the verdict
    decided_by_scan: bool = False  # a scan finished last (else the verification job)


@dataclass
class Outcome:
    timeout_ms: int
    rounds: list[list[Sample]] = field(default_factory=list)
    idle: IdleLoad | None = None

    def all(self) -> list[Sample]:
        return [s for r in self.rounds for s in r]


def _submit_and_wait(api: Api, rift_id: str, headers: dict[str, str]) -> tuple[Sample, str]:
    body, content_type = small_proof()
    started = time.perf_counter()
    status, receipt = api.json(
        "POST", f"/api/rifts/{rift_id}/proofs", body, {**headers, "Content-Type": content_type}
    )
    submitted = time.perf_counter()
    if status != 202:
        raise RuntimeError(f"submission answered {status}: {receipt}")
    deadline = started + VERDICT_TIMEOUT_S
    while True:
        status, view = api.json("GET", receipt["status_url"], None, headers)
        if status == 200 and view["status"] == "completed":
            done = time.perf_counter()
            seen_at = datetime.now(UTC)
            break
        if status != 200 or view["status"] == "failed" or time.perf_counter() > deadline:
            raise RuntimeError(f"no verdict: {status} {view}")
        time.sleep(POLL_INTERVAL_S)
    decided = datetime.fromisoformat(view["result"]["decided_at"])
    created = datetime.fromisoformat(view["job"]["created_at"])
    sample = Sample(
        submitted - started,
        done - started,
        (decided - created).total_seconds(),
        decided_at=decided,
        seen_at=seen_at,
    )
    return sample, receipt["proof_id"]


def _add_job_times(engine: sa.Engine, proof_id: str, sample: Sample) -> None:
    """Split the server's part by the proof's job records (read after the verdict)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Job.actor_name, Job.dispatched_at, Job.started_at, Job.finished_at).where(
                Job.proof_id == proof_id
            )
        ).all()
    waits, verify, scans = [], 0.0, [0.0]
    # The job that decided: the one running at decided_at (its clock is read under the
    # proof's lock, in the transaction that stores the verdict).
    deciding: tuple[str, datetime] | None = None
    for actor, dispatched, started, finished in rows:
        if dispatched and started:
            waits.append(max(0.0, (started - dispatched).total_seconds()))
        if started and finished:
            run_s = (finished - started).total_seconds()
            if actor == VERIFY_PROOF.actor_name:
                verify = run_s
            else:
                scans.append(run_s)
            if started <= sample.decided_at <= finished:
                deciding = (actor, finished)
    sample.wait_s, sample.verify_s, sample.scan_s = max(waits, default=0.0), verify, max(scans)
    if deciding is not None:
        actor, finished = deciding
        sample.decision_s = (finished - sample.decided_at).total_seconds()
        sample.poll_s = max(0.0, (sample.seen_at - finished).total_seconds())
        sample.decided_by_scan = actor != VERIFY_PROOF.actor_name


def _start_pools(bench: BenchRun, env: dict[str, str], timeout_ms: int, cfg: Config) -> list[Proc]:
    env = {**env, "dramatiq_worker_timeout": str(timeout_ms)}
    return [
        bench.worker(
            f"verification-{timeout_ms}",
            "actors.broker:setup",
            ["verification"],
            env,
            processes=cfg.verification_pool[0],
            threads=cfg.verification_pool[1],
        ),
        bench.worker(
            f"scan-{timeout_ms}",
            "actors.broker:setup",
            ["scan"],
            env,
            processes=cfg.scan_pool[0],
            threads=cfg.scan_pool[1],
        ),
    ]


def run(bench: BenchRun, cfg: Config) -> list[Figure]:
    print(
        f"\n[2] time to verdict: 1 PDF + 1 PNG + tracking number, one submission every "
        f"{cfg.interval_s * 1000:.0f} ms, {cfg.rounds} rounds x {cfg.per_round} per worker "
        f"timeout {list(cfg.timeouts_ms)} ms; PostgreSQL, clamd, idle cost over "
        f"{cfg.idle_s:.0f} s"
    )
    clamd_address = bench.clamd()
    outcomes = {t: Outcome(t) for t in cfg.timeouts_ms}
    needed = len(cfg.timeouts_ms) * cfg.rounds * (cfg.per_round + WARMUP_SUBMISSIONS)
    with bench.postgres() as database_url:
        rifts = iter(funded_rifts(database_url, needed))
        env = bench.env(database_url, bench.path("data-verdict"), CLAMD_ADDRESS=clamd_address)
        _, port = bench.gunicorn("api-verdict", "service.api.wsgi:app", env)
        api = Api(port)
        headers = bearer(SELLER)
        engine = sa.create_engine(database_url)
        for round_no in range(cfg.rounds):
            order = cfg.timeouts_ms if round_no % 2 == 0 else tuple(reversed(cfg.timeouts_ms))
            for timeout_ms in order:
                pools = _start_pools(bench, env, timeout_ms, cfg)
                try:
                    for _ in range(WARMUP_SUBMISSIONS):
                        _submit_and_wait(api, next(rifts), headers)
                    outcome = outcomes[timeout_ms]
                    if outcome.idle is None:
                        outcome.idle = idle_load(bench, pools, cfg.idle_s)
                    samples: list[Sample] = []
                    next_at = time.perf_counter()
                    for _ in range(cfg.per_round):
                        time.sleep(max(0.0, next_at - time.perf_counter()))
                        next_at += cfg.interval_s
                        sample, proof_id = _submit_and_wait(api, next(rifts), headers)
                        _add_job_times(engine, proof_id, sample)
                        samples.append(sample)
                    outcome.rounds.append(samples)
                finally:
                    for pool in pools:
                        bench.stop(pool)
                p50 = percentile([s.verdict_s for s in samples], 50) * 1000
                bench.log(f"round {round_no + 1}, worker timeout {timeout_ms} ms: p50 {p50:.0f} ms")
        api.close()
        engine.dispose()
    return _report(outcomes, cfg)


def _report(outcomes: dict[int, Outcome], cfg: Config) -> list[Figure]:
    baseline = outcomes[cfg.timeouts_ms[0]]
    base_p50s = [percentile([s.verdict_s for s in r], 50) for r in baseline.rounds]
    figures: list[Figure] = []
    breakdown: list[str] = []
    print(
        "    worker timeout | verdict p50 (rounds)     | p99 (pooled) | submit p50 | "
        "server p50 | idle Redis cmds/s (+in scripts) | Redis CPU | workers CPU"
    )
    for timeout_ms, outcome in outcomes.items():
        everything = outcome.all()
        p50s = Spread.of([percentile([s.verdict_s for s in r], 50) * 1000 for r in outcome.rounds])
        p99 = percentile([s.verdict_s for s in everything], 99) * 1000
        submit = percentile([s.submit_s for s in everything], 50) * 1000
        server = percentile([s.server_s for s in everything], 50) * 1000
        idle = outcome.idle
        assert idle is not None
        breakdown.append(f"    {timeout_ms:>11} ms | {_breakdown(everything)}")
        print(
            f"    {timeout_ms:>11} ms | {p50s.fmt(' ms', 0):<24} | {p99:>9.0f} ms | "
            f"{submit:>7.1f} ms | {server:>7.1f} ms | {idle.client_cmds_per_s:>8.1f} "
            f"(+{idle.script_cmds_per_s:.0f}){'':>14} | {idle.redis_cpu_pct:>6.2f} % | "
            f"{idle.worker_cpu_pct:>6.1f} %"
        )
        ratio = Spread.of(
            [
                percentile([s.verdict_s for s in r], 50) / b
                for r, b in zip(outcome.rounds, base_p50s, strict=True)
            ]
        )
        is_baseline = outcome is baseline
        is_default = timeout_ms == DEFAULT_TIMEOUT_MS
        figures.append(
            Figure(
                "2 time to verdict",
                f"timeout {timeout_ms} ms: p50 {p50s.median:.0f} ms, p99 {p99:.0f} ms",
                "default 1000 ms" if not is_baseline else "(baseline)",
                "1.00" if is_baseline else f"p50 x{ratio.fmt('', 2)}",
                f"p50 <= {TARGET_P50_MS:.0f} ms, p99 <= {TARGET_P99_MS:.0f} ms"
                if is_default
                else "(reported)",
                p50s.median <= TARGET_P50_MS and p99 <= TARGET_P99_MS if is_default else None,
            )
        )
        figures.append(
            Figure(
                "2 idle cost",
                f"timeout {timeout_ms} ms: {idle.client_cmds_per_s:.0f} Redis cmds/s",
                f"default: {baseline.idle.client_cmds_per_s:.0f} cmds/s" if baseline.idle else "",
                f"x{idle.client_cmds_per_s / max(baseline.idle.client_cmds_per_s, 0.1):.1f}"
                if baseline.idle and not is_baseline
                else "1.00",
                f"<= {TARGET_IDLE_CMDS_PER_S:.0f} cmds/s" if is_default else "(reported)",
                idle.client_cmds_per_s <= TARGET_IDLE_CMDS_PER_S if is_default else None,
            )
        )
    print(
        "    where the time goes (p50 of each part, ms; parts overlap: the checks and the "
        "scans run at once, and the last to finish decides)"
    )
    print("\n".join(breakdown))
    return figures


def _breakdown(samples: list[Sample]) -> str:
    def p50_ms(values: list[float]) -> float:
        return percentile(values, 50) * 1000

    by_scan = sum(s.decided_by_scan for s in samples)
    return (
        f"202 {p50_ms([s.submit_s for s in samples]):.1f}, "
        f"queue wait {p50_ms([s.wait_s for s in samples]):.1f} (longest of the proof's jobs), "
        f"checks {p50_ms([s.verify_s for s in samples]):.1f}, "
        f"scan {p50_ms([s.scan_s for s in samples]):.1f} (longest), "
        f"decision {p50_ms([s.decision_s for s in samples]):.1f}, "
        f"poll {p50_ms([s.poll_s for s in samples]):.1f}; "
        f"decided by the checks {len(samples) - by_scan}, by a scan {by_scan}"
    )
