"""7. Brokers: Redis vs RabbitMQ, drain rate of no-op jobs and time to verdict, same run.

Both brokers run the project's full worker wiring (`actors.broker:setup`, selected by
BROKER_URL) in alternating rounds. The drain is timed the same way on both, from the job
records (the first to the last SUCCEEDED), since the two brokers keep their queues in
different shapes. Time to verdict is the measurement of 2 (a small proof over HTTP to
gunicorn, verification and scan pools, clamd), at Dramatiq's default worker timeout. RabbitMQ
runs in a virtual host of the run's own (made with rabbitmqctl), deleted afterwards.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import func, select

from bench.client import SELLER, Api, bearer, funded_rifts
from bench.harness import BenchRun, Figure, Proc, Spread, percentile, ratios, wipe_redis_keys
from bench.job_overhead import _enqueue_project as enqueue_project_jobs
from bench.stacks import NOOP
from bench.time_to_verdict import _submit_and_wait as submit_and_wait
from service.models import Job, JobState

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672"
PROJECT_STACK = "bench.stacks:project"
POLL_S = 0.01
DRAIN_TIMEOUT_S = 120.0
WARMUP_SUBMISSIONS = 3


@dataclass(frozen=True)
class Config:
    jobs: int = 1500
    rounds: int = 3
    per_round: int = 10
    interval_s: float = 0.25
    processes: int = 1
    threads: int = 4


@contextlib.contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A vhost of this run's own on the local RabbitMQ; yields its URL."""
    vhost = f"rift-bench-{uuid.uuid4().hex[:8]}"

    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    ctl("add_vhost", vhost)
    try:
        ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{RABBITMQ}/{quote(vhost, safe='')}"
    finally:
        ctl("delete_vhost", vhost)


def _noops_succeeded(engine: sa.Engine) -> int:
    query = select(func.count()).where(
        Job.actor_name == NOOP.actor_name, Job.state == JobState.SUCCEEDED
    )
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def _drain(
    bench: BenchRun, name: str, env: dict[str, str], engine: sa.Engine, cfg: Config
) -> float:
    """Start a worker on cfg.jobs queued jobs; return jobs finished per second."""
    worker = bench.worker(
        name, PROJECT_STACK, [NOOP.queue_name], env, processes=cfg.processes, threads=cfg.threads
    )
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while (done := _noops_succeeded(engine)) == 0:
            if time.monotonic() > deadline or not worker.alive():
                raise RuntimeError(f"{name} finished no job:\n{worker.output()[-2000:]}")
            time.sleep(POLL_S / 5)
        first_at, first_done = time.perf_counter(), done
        while (done := _noops_succeeded(engine)) < cfg.jobs:
            if time.monotonic() > deadline or not worker.alive():
                raise RuntimeError(f"{name} stalled at {done}:\n{worker.output()[-2000:]}")
            time.sleep(POLL_S)
        return (cfg.jobs - first_done) / (time.perf_counter() - first_at)
    finally:
        bench.stop(worker)


@dataclass
class VerdictStack:
    """A gunicorn API with a verification and a scan pool, on one broker."""

    api: Api
    procs: list[Proc]


def _start_stack(bench: BenchRun, name: str, env: dict[str, str]) -> VerdictStack:
    server, port = bench.gunicorn(f"api-{name}", "service.api.wsgi:app", env)
    pools = [
        bench.worker(
            f"verification-{name}",
            "actors.broker:setup",
            ["verification"],
            env,
            processes=1,
            threads=4,
        ),
        bench.worker(f"scan-{name}", "actors.broker:setup", ["scan"], env, processes=1, threads=2),
    ]
    return VerdictStack(Api(port), [*pools, server])


def _verdicts(stack: VerdictStack, rifts: Iterator[str], cfg: Config) -> list[float]:
    """Seconds from POST to a completed status, for cfg.per_round steady submissions."""
    headers = bearer(SELLER)
    samples: list[float] = []
    next_at = time.perf_counter()
    for _ in range(cfg.per_round):
        time.sleep(max(0.0, next_at - time.perf_counter()))
        next_at += cfg.interval_s
        sample, _ = submit_and_wait(stack.api, next(rifts), headers)
        samples.append(sample.verdict_s)
    return samples


def run(bench: BenchRun, cfg: Config) -> list[Figure]:
    print(
        f"\n[7] brokers: Redis vs RabbitMQ, {cfg.jobs} no-op jobs and {cfg.per_round} proofs "
        f"x {cfg.rounds} rounds each, {cfg.processes} worker process(es) x {cfg.threads} threads"
    )
    names = ("redis", "rabbitmq")
    drain: dict[str, list[float]] = {n: [] for n in names}
    p50: dict[str, list[float]] = {n: [] for n in names}
    pooled: dict[str, list[float]] = {n: [] for n in names}
    clamd_address = bench.clamd()
    with rabbitmq_vhost() as rabbitmq_url, bench.postgres() as database_url:
        urls = {"redis": bench.redis_url, "rabbitmq": rabbitmq_url}
        data_dir = bench.path("data-brokers")
        envs = {
            n: bench.env(database_url, data_dir, BROKER_URL=urls[n], CLAMD_ADDRESS=clamd_address)
            for n in names
        }
        settings = {n: bench.settings(database_url, data_dir, broker_url=urls[n]) for n in names}
        engine = sa.create_engine(database_url)
        rifts = iter(
            funded_rifts(
                database_url, len(names) * (cfg.rounds * cfg.per_round + WARMUP_SUBMISSIONS)
            )
        )
        # Drains first, one worker at a time; then both verdict stacks side by side, idle
        # but for the one being measured (RabbitMQ pushes; Redis consumers block on a token).
        for round_no in range(cfg.rounds):
            for n in names if round_no % 2 == 0 else tuple(reversed(names)):
                wipe_redis_keys(bench.redis)
                with engine.begin() as conn:
                    conn.execute(sa.delete(Job).where(Job.actor_name == NOOP.actor_name))
                enqueue_project_jobs(settings[n], cfg.jobs)
                drain[n].append(_drain(bench, f"drain-{n}", envs[n], engine, cfg))
            bench.log(
                f"drain round {round_no + 1}: "
                + ", ".join(f"{n} {drain[n][-1]:.0f}/s" for n in names)
            )
        stacks = {n: _start_stack(bench, n, envs[n]) for n in names}
        try:
            for n in names:
                for _ in range(WARMUP_SUBMISSIONS):
                    submit_and_wait(stacks[n].api, next(rifts), bearer(SELLER))
            for round_no in range(cfg.rounds):
                for n in names if round_no % 2 == 0 else tuple(reversed(names)):
                    samples = _verdicts(stacks[n], rifts, cfg)
                    p50[n].append(percentile(samples, 50))
                    pooled[n] += samples
                bench.log(
                    f"verdict round {round_no + 1}: "
                    + ", ".join(f"{n} p50 {p50[n][-1] * 1000:.0f} ms" for n in names)
                )
        finally:
            for stack in stacks.values():
                stack.api.close()
                for proc in stack.procs:
                    bench.stop(proc)
        engine.dispose()
    drain_ratio = ratios(drain["rabbitmq"], drain["redis"])
    verdict_ratio = ratios(p50["rabbitmq"], p50["redis"])
    p99 = {n: percentile(pooled[n], 99) * 1000 for n in names}
    for n in names:
        print(
            f"    {n:<8} drain {Spread.of(drain[n]).fmt(' jobs/s', 0)}, verdict p50 "
            f"{Spread.of([v * 1000 for v in p50[n]]).fmt(' ms', 0)}, p99 {p99[n]:.0f} ms"
        )
    print(
        f"    RabbitMQ/Redis drain {drain_ratio.fmt('', 2)}, verdict p50 {verdict_ratio.fmt('', 2)}"
    )
    return [
        Figure(
            "7 broker drain",
            f"RabbitMQ {Spread.of(drain['rabbitmq']).median:.0f} jobs/s",
            f"Redis {Spread.of(drain['redis']).median:.0f} jobs/s",
            drain_ratio.fmt("", 2),
            "(reported)",
            None,
        ),
        Figure(
            "7 broker time to verdict",
            f"RabbitMQ p50 {Spread.of(p50['rabbitmq']).median * 1000:.0f} ms, "
            f"p99 {p99['rabbitmq']:.0f} ms",
            f"Redis p50 {Spread.of(p50['redis']).median * 1000:.0f} ms, p99 {p99['redis']:.0f} ms",
            f"p50 x{verdict_ratio.fmt('', 2)}",
            "(reported)",
            None,
        ),
    ]
