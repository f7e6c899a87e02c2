"""1. Job-system overhead: drain rate of no-op jobs, project stack vs raw Dramatiq.

Each round fills the `bench` queue with N messages while no worker runs, then starts a
worker and times the drain from its first ack to an empty queue, watching Dramatiq's
message hash (`dramatiq:bench.msgs`, emptied on ack). The project's jobs are created the
real way: job records through `new_job`, handed over by `dispatch_jobs`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from sqlalchemy import func, select

from actors.dispatch import DramatiqDispatcher
from actors.transport import build_broker
from bench.cpu_accounts import Account, descendants
from bench.harness import BenchRun, Figure, Spread, ratios, wipe_redis_keys
from bench.stacks import NOOP, declare_noop, raw_broker
from service.db import create_db_engine, create_session_factory, transaction
from service.domain.clock import new_id, utcnow
from service.domain.jobs import dispatch_jobs, new_job
from service.models import Job, JobState
from service.settings import Settings

BATCH = 500
POLL_S = 0.01
DRAIN_TIMEOUT_S = 120.0
MSGS_KEY = f"dramatiq:{NOOP.queue_name}.msgs"


@dataclass(frozen=True)
class Config:
    jobs: int = 2000
    rounds: int = 3
    processes: int = 1
    threads: int = 4


def _enqueue_project(settings: Settings, n: int) -> float:
    sessions = create_session_factory(create_db_engine(settings.database_url))
    dispatcher = DramatiqDispatcher(build_broker(settings))
    started = time.perf_counter()
    for offset in range(0, n, BATCH):
        with transaction(sessions) as session:
            jobs = [
                new_job(session, NOOP, subject_id=new_id(), now=utcnow(), ids=new_id)
                for _ in range(min(BATCH, n - offset))
            ]
        dispatch_jobs(sessions, dispatcher, jobs, utcnow)
    elapsed = time.perf_counter() - started
    sessions.kw["bind"].dispose()
    return n / elapsed


def _enqueue_raw(settings: Settings, n: int) -> float:
    broker = raw_broker(settings)
    actor = declare_noop(broker)
    started = time.perf_counter()
    for _ in range(n):
        actor.send(new_id())
    elapsed = time.perf_counter() - started
    broker.close()
    return n / elapsed


@dataclass(frozen=True)
class Drain:
    rate: float  # messages acked per second
    cpu_us: float  # CPU of the worker's processes per message, microseconds


def drain(run: BenchRun, name: str, setup: str, env: dict[str, str], cfg: Config) -> Drain:
    """Start a worker on a full queue and time it until the queue is empty."""
    client: redis.Redis = run.redis
    full = client.hlen(MSGS_KEY)
    assert full == cfg.jobs, f"expected {cfg.jobs} queued messages, found {full}"
    worker = run.worker(
        name, setup, [NOOP.queue_name], env, processes=cfg.processes, threads=cfg.threads
    )
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while (left := client.hlen(MSGS_KEY)) == full:
            if time.monotonic() > deadline or not worker.alive():
                raise RuntimeError(f"{name} took no message:\n{worker.output()[-2000:]}")
            time.sleep(POLL_S / 5)
        first_at, first_left = time.perf_counter(), left
        cpu = Account(name, lambda: descendants([worker.pid]))
        cpu.start()
        while (left := client.hlen(MSGS_KEY)) > 0:
            if time.monotonic() > deadline or not worker.alive():
                raise RuntimeError(f"{name} stalled with {left} left:\n{worker.output()[-2000:]}")
            time.sleep(POLL_S)
        elapsed = time.perf_counter() - first_at
        cpu.stop()
        return Drain(first_left / elapsed, cpu.cpu_s / first_left * 1e6)
    finally:
        run.stop(worker)


STACKS = {
    "raw": "bench.stacks:raw",
    "project": "bench.stacks:project",
    "untracked": "bench.stacks:project_untracked",
}


def run(bench: BenchRun, cfg: Config) -> list[Figure]:
    print(
        f"\n[1] job-system overhead: {cfg.jobs} no-op jobs x {cfg.rounds} rounds, "
        f"{cfg.processes} process(es) x {cfg.threads} threads, PostgreSQL job records"
    )
    rates: dict[str, list[float]] = {name: [] for name in STACKS}
    cpu_us: dict[str, list[float]] = {name: [] for name in STACKS}
    enqueue: dict[str, list[float]] = {"raw": [], "project": []}
    with bench.postgres() as database_url:
        data_dir = bench.path("data-overhead")
        settings = bench.settings(database_url, data_dir)
        env = bench.env(database_url, data_dir)
        names = list(STACKS)
        for round_no in range(cfg.rounds):
            # Rotate the order so drift on a shared machine hits every stack alike.
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for stack in order:
                wipe_redis_keys(bench.redis)
                if stack == "raw":
                    enqueue["raw"].append(_enqueue_raw(settings, cfg.jobs))
                else:
                    rate = _enqueue_project(settings, cfg.jobs)
                    if stack == "project":
                        enqueue["project"].append(rate)
                drained = drain(bench, f"worker-{stack}", STACKS[stack], env, cfg)
                rates[stack].append(drained.rate)
                cpu_us[stack].append(drained.cpu_us)
            bench.log(
                f"round {round_no + 1}: "
                + ", ".join(f"{name} {rates[name][-1]:.0f}/s" for name in names)
            )
        engine = create_db_engine(database_url)
        with engine.connect() as conn:
            states = dict(conn.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        engine.dispose()
    succeeded = states.get(JobState.SUCCEEDED, 0)
    expected = cfg.jobs * cfg.rounds  # only the project stack writes records
    raw, project, untracked = (Spread.of(rates[n]) for n in names)
    untracked_ratio = ratios(rates["untracked"], rates["raw"])
    ratio = ratios(rates["project"], rates["raw"])
    enqueue_ratio = ratios(enqueue["project"], enqueue["raw"])
    print(f"    raw Dramatiq drain      {raw.fmt(' jobs/s', 0)}")
    print(f"    project stack drain     {project.fmt(' jobs/s', 0)}")
    print(f"    ratio project/raw       {ratio.fmt('', 2)}   target >= 0.9")
    print(
        f"    project stack without JobTracking (heartbeat, Prometheus, retries...): "
        f"{untracked.fmt(' jobs/s', 0)}, ratio to raw {untracked_ratio.fmt('', 2)}"
    )
    print(
        f"    enqueue: raw send {Spread.of(enqueue['raw']).fmt('/s', 0)}, project "
        f"new_job+dispatch {Spread.of(enqueue['project']).fmt('/s', 0)}, "
        f"ratio {enqueue_ratio.fmt('', 2)}"
    )
    print(
        "    worker CPU per message: "
        + ", ".join(f"{name} {Spread.of(cpu_us[name]).fmt(' us', 0)}" for name in names)
    )
    print(f"    job records SUCCEEDED: {succeeded}/{expected}")
    return [
        Figure(
            "1 job overhead",
            f"project {project.median:.0f} jobs/s",
            f"raw {raw.median:.0f} jobs/s",
            ratio.fmt("", 2),
            ">= 0.9",
            ratio.median >= 0.9 and succeeded == expected,
        ),
        Figure(
            "1 no JobTracking (info)",
            f"{untracked.median:.0f} jobs/s",
            f"raw {raw.median:.0f} jobs/s",
            untracked_ratio.fmt("", 2),
            "-",
            None,
        ),
        Figure(
            "1 enqueue (info)",
            f"new_job+dispatch {Spread.of(enqueue['project']).median:.0f}/s",
            f"send {Spread.of(enqueue['raw']).median:.0f}/s",
            enqueue_ratio.fmt("", 2),
            "-",
            None,
        ),
    ]
