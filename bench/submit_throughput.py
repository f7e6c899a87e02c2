"""3. Submission throughput: the proof endpoint vs a bare enqueue-only Falcon endpoint.

Both run under gunicorn with the project's config and the same workers and threads, and
receive the same multipart body (1 PDF, 1 PNG, a tracking number) from the same load
generator. No Dramatiq workers run: this is the API's side only. Rounds alternate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from bench.client import SELLER, bearer, funded_rifts, small_proof
from bench.harness import BenchRun, Figure, Spread, group_cpu_s, percentile, ratios
from bench.loadgen import LoadResult, Request, run_load


@dataclass(frozen=True)
class Config:
    rounds: int = 3
    duration_s: float = 6.0
    concurrency: int = 8
    api_workers: int = 2
    api_threads: int = 4
    rifts: int = 8000


def _requests(paths: Iterator[str], body: bytes, headers: dict[str, str]) -> Request | None:
    path = next(paths, None)
    return None if path is None else ("POST", path, body, headers)


def run(bench: BenchRun, cfg: Config) -> list[Figure]:
    print(
        f"\n[3] submission throughput: {cfg.rounds} rounds x {cfg.duration_s:.0f} s, "
        f"{cfg.concurrency} client threads, gunicorn {cfg.api_workers} workers x "
        f"{cfg.api_threads} threads, PostgreSQL"
    )
    body, content_type = small_proof()
    headers = {**bearer(SELLER), "Content-Type": content_type}
    proof_runs: list[LoadResult] = []
    bare_runs: list[LoadResult] = []
    cpu_ms: dict[str, list[float]] = {"bare": [], "proof": []}
    with bench.postgres() as database_url:
        rift_ids = funded_rifts(database_url, cfg.rifts)
        env = bench.env(database_url, bench.path("data-throughput"))
        api_server, api_port = bench.gunicorn(
            "api-throughput",
            "service.api.wsgi:app",
            env,
            workers=cfg.api_workers,
            threads=cfg.api_threads,
        )
        bare_server, bare_port = bench.gunicorn(
            "bare-throughput",
            "bench.bare_app:app",
            env,
            workers=cfg.api_workers,
            threads=cfg.api_threads,
        )
        rifts = iter(rift_ids)
        warm = iter(f"/enqueue/warm-{i}" for i in range(50))
        # Warm both: connections, lazy imports, prepared statements.
        run_load(
            api_port,
            lambda: _requests((f"/api/rifts/{r}/proofs" for r in rifts), body, headers),
            concurrency=cfg.concurrency,
            duration_s=0.5,
            expect_status=202,
        )
        run_load(
            bare_port,
            lambda: _requests(warm, body, headers),
            concurrency=cfg.concurrency,
            duration_s=0.5,
            expect_status=202,
        )
        bare_paths = (f"/enqueue/{n}" for n in range(10**9))
        proof_paths = (f"/api/rifts/{r}/proofs" for r in rifts)
        sides = {
            "bare": (bare_server, bare_port, bare_paths, bare_runs),
            "proof": (api_server, api_port, proof_paths, proof_runs),
        }
        for round_no in range(cfg.rounds):
            order = ("bare", "proof") if round_no % 2 == 0 else ("proof", "bare")
            for side in order:
                server, port, paths, runs = sides[side]
                pids = [server.pid, *server.children()]
                cpu_before = group_cpu_s(pids)
                result = run_load(
                    port,
                    partial(_requests, paths, body, headers),
                    concurrency=cfg.concurrency,
                    duration_s=cfg.duration_s,
                    expect_status=202,
                )
                runs.append(result)
                cpu_ms[side].append((group_cpu_s(pids) - cpu_before) * 1000 / max(result.ok, 1))
            bench.log(
                f"round {round_no + 1}: bare {bare_runs[-1].rps:.0f} req/s, "
                f"proof {proof_runs[-1].rps:.0f} req/s"
            )
        bench.redis.delete("dramatiq:bench_bare", "dramatiq:bench_bare.msgs")
    exhausted = any(r.exhausted for r in proof_runs)
    errors = sum(r.errors for r in proof_runs) + sum(r.errors for r in bare_runs)
    bare = Spread.of([r.rps for r in bare_runs])
    proof = Spread.of([r.rps for r in proof_runs])
    ratio = ratios([r.rps for r in proof_runs], [r.rps for r in bare_runs])
    proof_lat = [x for r in proof_runs for x in r.latencies_s]
    bare_lat = [x for r in bare_runs for x in r.latencies_s]
    print(
        f"    bare enqueue endpoint   {bare.fmt(' req/s', 0)}  p50 "
        f"{percentile(bare_lat, 50) * 1000:.1f} ms, p99 {percentile(bare_lat, 99) * 1000:.1f} ms"
    )
    print(
        f"    proof endpoint          {proof.fmt(' req/s', 0)}  p50 "
        f"{percentile(proof_lat, 50) * 1000:.1f} ms, p99 {percentile(proof_lat, 99) * 1000:.1f}"
        " ms"
    )
    print(
        f"    server CPU per request: bare {Spread.of(cpu_ms['bare']).fmt(' ms', 2)}, proof "
        f"{Spread.of(cpu_ms['proof']).fmt(' ms', 2)} (gunicorn master + workers)"
    )
    print(
        f"    ratio proof/bare        {ratio.fmt('', 2)}   target >= 0.33, errors: {errors}"
        + ("  (ran out of funded rifts: raise rifts)" if exhausted else "")
    )
    for sample in [s for r in proof_runs + bare_runs for s in r.error_samples][:3]:
        print(f"    error sample: {sample}")
    return [
        Figure(
            "3 submit throughput",
            f"proof {proof.median:.0f} req/s",
            f"bare {bare.median:.0f} req/s",
            ratio.fmt("", 2),
            ">= 0.33, 0 errors",
            ratio.median >= 1 / 3 and errors == 0 and not exhausted,
        )
    ]
