"""3. Submission throughput: the proof endpoint vs a bare enqueue-only Falcon endpoint.

Both run under gunicorn with the project's config and the same workers and threads, and
receive the same multipart body (1 PDF, 1 PNG, a tracking number) from the same load
generator. No Dramatiq workers run: this is the API's side only. The proof endpoint runs
twice, on PostgreSQL (the target) and on SQLite (the embedded default); rounds alternate.
Before the load, one process counts what a submission costs the database (statements
and round trips, bench/round_trips.py) through the same WSGI app.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import falcon.testing

from bench.client import SELLER, bearer, funded_rifts, small_proof
from bench.harness import BenchRun, Figure, Proc, Spread, group_cpu_s, percentile, ratios
from bench.loadgen import LoadResult, Request, run_load
from bench.round_trips import DatabaseCost, counting
from service.api.bootstrap import build_api

COUNTED_SUBMISSIONS = 20


@dataclass(frozen=True)
class Config:
    rounds: int = 3
    duration_s: float = 6.0
    concurrency: int = 8
    api_workers: int = 2
    api_threads: int = 4
    rifts: int = 8000


@dataclass
class Side:
    server: Proc
    port: int
    paths: Iterator[str]
    runs: list[LoadResult]
    cpu_ms: list[float]


def _requests(paths: Iterator[str], body: bytes, headers: dict[str, str]) -> Request | None:
    path = next(paths, None)
    return None if path is None else ("POST", path, body, headers)


def database_cost(bench: BenchRun, database_url: str, rift_ids: Iterator[str]) -> DatabaseCost:
    """Statements and round trips of one submission, averaged over COUNTED_SUBMISSIONS."""
    body, content_type = small_proof()
    headers = {**bearer(SELLER), "Content-Type": content_type}
    with counting() as counter:
        client = falcon.testing.TestClient(
            build_api(bench.settings(database_url, bench.path("data-counted")))
        )

        def submit() -> None:
            result = client.simulate_post(
                f"/api/rifts/{next(rift_ids)}/proofs", body=body, headers=headers
            )
            if result.status_code != 202:
                raise RuntimeError(f"submission answered {result.status_code}: {result.text}")

        counter.measure(submit, 3)  # connections, statement caches
        return counter.measure(submit, COUNTED_SUBMISSIONS)


def run(bench: BenchRun, cfg: Config) -> list[Figure]:
    print(
        f"\n[3] submission throughput: {cfg.rounds} rounds x {cfg.duration_s:.0f} s, "
        f"{cfg.concurrency} client threads, gunicorn {cfg.api_workers} workers x "
        f"{cfg.api_threads} threads; proof endpoint on PostgreSQL and on SQLite"
    )
    body, content_type = small_proof()
    headers = {**bearer(SELLER), "Content-Type": content_type}
    with bench.postgres() as postgres_url:
        sqlite_url = bench.sqlite("throughput")
        urls = {"postgresql": postgres_url, "sqlite": sqlite_url}
        rifts = {name: iter(funded_rifts(url, cfg.rifts)) for name, url in urls.items()}
        costs = {name: database_cost(bench, url, rifts[name]) for name, url in urls.items()}
        sides: dict[str, Side] = {}
        for name, url in urls.items():
            server, port = bench.gunicorn(
                f"api-throughput-{name}",
                "service.api.wsgi:app",
                bench.env(url, bench.path(f"data-throughput-{name}")),
                workers=cfg.api_workers,
                threads=cfg.api_threads,
            )
            paths = (f"/api/rifts/{r}/proofs" for r in rifts[name])
            sides[name] = Side(server, port, paths, [], [])
        server, port = bench.gunicorn(
            "bare-throughput",
            "bench.bare_app:app",
            bench.env(postgres_url, bench.path("data-throughput-bare")),
            workers=cfg.api_workers,
            threads=cfg.api_threads,
        )
        sides["bare"] = Side(server, port, (f"/enqueue/{n}" for n in range(10**9)), [], [])
        for side in sides.values():  # warm: connections, lazy imports, prepared statements
            run_load(
                side.port,
                partial(_requests, side.paths, body, headers),
                concurrency=cfg.concurrency,
                duration_s=0.5,
                expect_status=202,
            )
        order = ["bare", "postgresql", "sqlite"]
        for round_no in range(cfg.rounds):
            for name in order if round_no % 2 == 0 else order[::-1]:
                side = sides[name]
                pids = [side.server.pid, *side.server.children()]
                cpu_before = group_cpu_s(pids)
                result = run_load(
                    side.port,
                    partial(_requests, side.paths, body, headers),
                    concurrency=cfg.concurrency,
                    duration_s=cfg.duration_s,
                    expect_status=202,
                )
                side.runs.append(result)
                side.cpu_ms.append((group_cpu_s(pids) - cpu_before) * 1000 / max(result.ok, 1))
            bench.log(
                f"round {round_no + 1}: "
                + ", ".join(f"{n} {sides[n].runs[-1].rps:.0f} req/s" for n in order)
            )
        bench.redis.delete("dramatiq:bench_bare", "dramatiq:bench_bare.msgs")
    return _report(cfg, sides, costs)


def _report(cfg: Config, sides: dict[str, Side], costs: dict[str, DatabaseCost]) -> list[Figure]:
    bare = sides["bare"]
    errors = {name: sum(r.errors for r in side.runs) for name, side in sides.items()}
    for name, side in sides.items():
        latencies = [x for r in side.runs for x in r.latencies_s]
        rps = Spread.of([r.rps for r in side.runs])
        print(
            f"    {name:<11} {rps.fmt(' req/s', 0)}  p50 {percentile(latencies, 50) * 1000:.1f} ms,"
            f" p99 {percentile(latencies, 99) * 1000:.1f} ms, server CPU "
            f"{Spread.of(side.cpu_ms).fmt(' ms', 2)} per request, errors {errors[name]}"
        )
        for sample in [s for r in side.runs for s in r.error_samples][:2]:
            print(f"      error sample: {sample}")
    pg, lite = costs["postgresql"], costs["sqlite"]
    print(
        f"    database per submission: PostgreSQL {pg.statements} statements and "
        f"{pg.round_trips} round trips (BEGIN and COMMIT not counted as statements, counted "
        f"as round trips); SQLite {lite.statements} statements (its explicit BEGINs "
        "included), in-process"
    )
    figures = []
    for name in ("postgresql", "sqlite"):
        side = sides[name]
        ratio = ratios([r.rps for r in side.runs], [r.rps for r in bare.runs])
        clean = errors[name] == 0 and errors["bare"] == 0
        exhausted = any(r.exhausted for r in side.runs)
        print(
            f"    ratio {name}/bare {ratio.fmt('', 2)}"
            + ("  (ran out of funded rifts: raise rifts)" if exhausted else "")
        )
        proof = Spread.of([r.rps for r in side.runs])
        figures.append(
            Figure(
                f"3 submit throughput, {name}",
                f"proof {proof.median:.0f} req/s, {Spread.of(side.cpu_ms).median:.1f} ms CPU",
                f"bare {Spread.of([r.rps for r in bare.runs]).median:.0f} req/s, "
                f"{Spread.of(bare.cpu_ms).median:.1f} ms CPU",
                ratio.fmt("", 2),
                ">= 0.33, 0 errors" if name == "postgresql" else "(reported), 0 errors",
                (ratio.median >= 1 / 3 and clean and not exhausted)
                if name == "postgresql"
                else None,
            )
        )
    figures.append(
        Figure(
            "3 database per submission (info)",
            f"PostgreSQL {pg.statements} statements, {pg.round_trips} round trips; "
            f"SQLite {lite.statements} statements",
            "-",
            "-",
            "(reported)",
            None,
        )
    )
    return figures
