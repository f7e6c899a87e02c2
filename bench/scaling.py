"""6. Scaling: drain rate of no-op jobs with 1, 2 (or N) worker processes of the project stack.

The same measurement as 1 (job records through `new_job` + `dispatch_jobs`, the full worker
wiring, a drain timed from the first ack to an empty queue), repeated per process count in
rotating order; each count's rate is reported against one process in the same round. On a
machine with fewer cores than processes the ratio flattens at the core count: the job
system itself (records in PostgreSQL, Redis) is what is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.harness import BenchRun, Figure, Spread, ratios, wipe_redis_keys
from bench.job_overhead import Config as DrainConfig
from bench.job_overhead import _enqueue_project as enqueue_project_jobs
from bench.job_overhead import drain

PROJECT_STACK = "bench.stacks:project"


@dataclass(frozen=True)
class Config:
    processes: Sequence[int] = field(default=(1, 2))
    jobs: int = 1500
    rounds: int = 3
    threads: int = 4


def run(bench: BenchRun, cfg: Config) -> list[Figure]:
    counts = list(cfg.processes)
    base = counts[0]
    print(
        f"\n[6] scaling: {cfg.jobs} no-op jobs x {cfg.rounds} rounds with "
        f"{', '.join(map(str, counts))} worker process(es) x {cfg.threads} threads"
    )
    rates: dict[int, list[float]] = {n: [] for n in counts}
    with bench.postgres() as database_url:
        data_dir = bench.path("data-scaling")
        settings = bench.settings(database_url, data_dir)
        env = bench.env(database_url, data_dir)
        for round_no in range(cfg.rounds):
            order = counts[round_no % len(counts) :] + counts[: round_no % len(counts)]
            for n in order:
                wipe_redis_keys(bench.redis)
                enqueue_project_jobs(settings, cfg.jobs)
                workers = DrainConfig(jobs=cfg.jobs, processes=n, threads=cfg.threads)
                rates[n].append(drain(bench, f"scaling-{n}p", PROJECT_STACK, env, workers).rate)
            bench.log(
                f"round {round_no + 1}: "
                + ", ".join(f"{n} proc {rates[n][-1]:.0f}/s" for n in counts)
            )
    figures = []
    for n in counts:
        spread = Spread.of(rates[n])
        print(f"    {n} process(es)  {spread.fmt(' jobs/s', 0)}")
        if n == base:
            continue
        ratio = ratios(rates[n], rates[base])
        print(f"    ratio {n}/{base} processes  {ratio.fmt('', 2)}   ideal {n / base:.0f}")
        figures.append(
            Figure(
                f"6 scaling {n} vs {base} proc",
                f"{spread.median:.0f} jobs/s",
                f"{Spread.of(rates[base]).median:.0f} jobs/s",
                ratio.fmt("", 2),
                f"reported (ideal {n / base:.0f})",
                None,
            )
        )
    return figures
