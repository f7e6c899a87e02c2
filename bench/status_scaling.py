"""4. Status endpoint and operator queries: the same lookups with 10^3 and 10^6 job records.

Two PostgreSQL databases, each with one real submission made over HTTP, padded with
generated job records (generate_series: 30 days of history, three actors, every state, a
few thousand FAILED or DEAD at 10^6) to 10^3 and 10^6 rows, then ANALYZEd. Each has its
own gunicorn API; rounds alternate between them so machine noise hits both alike. The
operator queries (bench/operator_queries.py) run on the same two. Also prints the plans
PostgreSQL picks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from actors.reconcile import reconcile_limits
from bench import operator_queries
from bench.client import BUYER, SELLER, Api, bearer, funded_rifts, small_proof
from bench.harness import BenchRun, Figure, Spread, percentile

# Job records as a long-running system accumulates them: spread over 30 days of history
# (the same span at every size, so age filters select the same share), three actors in a
# proof's proportions (one verification, two scans per proof, some clean-ups), mostly
# SUCCEEDED with 2 in 331 FAILED or DEAD (about 6,000 at 10^6), a dozen of the newest
# still in flight, three jobs per proof and six per rift. A small table gets failures
# more often (2 in 6 at 10^3), so that every operator listing returns as full a page at
# both sizes: the comparison is then of the table growing, not of the page.
HISTORY_S = 30 * 86_400
FAILED_EVERY = 331
FAILURES_AT_LEAST = 320
IN_FLIGHT = 12
PAD_JOBS_SQL = """
INSERT INTO jobs (id, actor_name, queue_name, subject_id, rift_id, proof_id, requested_by,
                  state, attempts, progress, last_error, result, created_at, updated_at,
                  dispatched_at, started_at, finished_at)
SELECT md5('job' || g)::uuid::text,
       (ARRAY['verify_proof','verify_proof','verify_proof','scan_asset','scan_asset',
              'scan_asset','scan_asset','scan_asset','scan_asset','clean_up_rift'])[1 + g % 10],
       (ARRAY['verification','verification','verification','scan','scan','scan','scan',
              'scan','scan','cleanup'])[1 + g % 10],
       md5('s' || g)::uuid::text, md5('r' || (g / 6))::uuid::text,
       md5('p' || (g / 3))::uuid::text, 'seller-' || (g % 500),
       state, CASE WHEN state IN ('FAILED', 'DEAD') THEN 3 ELSE 1 END, 100,
       CASE WHEN state IN ('FAILED', 'DEAD') THEN 'ScanUnavailable: clamd did not answer'
       END,
       CASE WHEN state = 'SUCCEEDED' THEN '{"verdict": {"passed": true}}'::json END,
       created, created + interval '1 second', created + interval '5 milliseconds',
       CASE WHEN state <> 'QUEUED' THEN created + interval '10 milliseconds' END,
       CASE WHEN state IN ('SUCCEEDED', 'FAILED', 'DEAD') THEN created + interval '1 second'
       END
FROM (
    SELECT g,
           now() - make_interval(
               secs => g * CAST(:history_s AS float) / CAST(:rows AS integer)
           ) AS created,
           CASE WHEN g <= CAST(:in_flight AS integer)
                THEN (ARRAY['QUEUED','RUNNING','RETRYING'])[1 + g % 3]
                WHEN g % CAST(:every AS integer) = 0 THEN 'FAILED'
                WHEN g % CAST(:every AS integer) = 1 THEN 'DEAD'
                ELSE 'SUCCEEDED' END AS state
    FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g
) AS padded
"""


@dataclass(frozen=True)
class Config:
    small: int = 1_000
    large: int = 1_000_000
    rounds: int = 3
    requests: int = 200
    operator_requests: int = 40


@dataclass
class Target:
    label: str
    rows: int
    port: int
    rift_id: str
    job_id: str
    status_ms: list[float]
    job_ms: list[float]


def _prepare(bench: BenchRun, label: str, database_url: str, rows: int) -> Target:
    rift_id = funded_rifts(database_url, 1)[0]
    env = bench.env(database_url, bench.path(f"data-status-{label}"))
    _, port = bench.gunicorn(f"api-status-{label}", "service.api.wsgi:app", env)
    api = Api(port)
    body, content_type = small_proof()
    status, receipt = api.json(
        "POST",
        f"/api/rifts/{rift_id}/proofs",
        body,
        {**bearer(SELLER), "Content-Type": content_type},
    )
    api.close()
    if status != 202:
        raise RuntimeError(f"submission answered {status}: {receipt}")
    engine = sa.create_engine(database_url)
    started = time.perf_counter()
    with engine.begin() as conn:
        existing = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one()
        conn.execute(
            sa.text(PAD_JOBS_SQL),
            {
                "first": 1,
                "last": rows - existing,
                "rows": rows,
                "history_s": HISTORY_S,
                "in_flight": IN_FLIGHT,
                "every": min(FAILED_EVERY, rows * 2 // FAILURES_AT_LEAST),
            },
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE jobs"))
        total = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one()
    engine.dispose()
    bench.log(f"{label}: {total} job records ({time.perf_counter() - started:.1f} s to insert)")
    return Target(label, total, port, rift_id, receipt["verification_job_id"], [], [])


def _plans(database_url: str, target: Target) -> list[str]:
    engine = sa.create_engine(database_url)
    plans = []
    with engine.connect() as conn:
        for sql in (
            "SELECT * FROM jobs WHERE id = :v",
            "SELECT * FROM proofs WHERE rift_id = :r ORDER BY submitted_at DESC LIMIT 1",
        ):
            rows = (
                conn.execute(sa.text("EXPLAIN " + sql), {"v": target.job_id, "r": target.rift_id})
                .scalars()
                .all()
            )
            plans.append(f"{sql.split(' WHERE')[0][14:]}: {rows[0].strip()}")
    engine.dispose()
    return plans


def _round(target: Target, requests: int) -> None:
    api = Api(target.port)
    headers = bearer(BUYER)
    status_path = f"/api/rifts/{target.rift_id}/verification-status"
    job_path = f"/api/jobs/{target.job_id}"
    status_times: list[float] = []
    job_times: list[float] = []
    for _ in range(requests):
        for path, times in ((status_path, status_times), (job_path, job_times)):
            started = time.perf_counter()
            status, _ = api.call("GET", path, None, headers)
            times.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
    api.close()
    target.status_ms.append(percentile(status_times, 50) * 1000)
    target.job_ms.append(percentile(job_times, 50) * 1000)


def run(bench: BenchRun, cfg: Config) -> list[Figure]:
    print(
        f"\n[4] status endpoint scaling: {cfg.small:,} vs {cfg.large:,} job records, "
        f"{cfg.rounds} rounds x {cfg.requests} sequential GETs per endpoint, PostgreSQL"
    )
    with bench.postgres() as small_url, bench.postgres() as large_url:
        small = _prepare(bench, "small", small_url, cfg.small)
        large = _prepare(bench, "large", large_url, cfg.large)
        sites = {
            target.label: operator_queries.prepare(
                target.label,
                target.rows,
                target.port,
                url,
                reconcile_limits(bench.settings(url, bench.path(f"data-status-{target.label}"))),
            )
            for target, url in ((small, small_url), (large, large_url))
        }
        for target in (small, large):
            _round(target, cfg.requests // 4)  # warm caches and connections
            target.status_ms.clear()
            target.job_ms.clear()
            operator_queries.run_round(sites[target.label], max(1, cfg.operator_requests // 4))
            operator_queries.reset(sites[target.label])
        for round_no in range(cfg.rounds):
            for target in (small, large) if round_no % 2 == 0 else (large, small):
                _round(target, cfg.requests)
                operator_queries.run_round(sites[target.label], cfg.operator_requests)
        plans = _plans(large_url, large)
        operator_plans = operator_queries.plans(sites["large"])
    figures = []
    for name, attr in (("verification-status", "status_ms"), ("jobs/{id}", "job_ms")):
        small_ms, large_ms = getattr(small, attr), getattr(large, attr)
        ratio = Spread.of([b / a for a, b in zip(small_ms, large_ms, strict=True)])
        print(
            f"    GET {name:<20} p50 {Spread.of(small_ms).fmt(' ms', 2)} at {small.rows:,}"
            f" -> {Spread.of(large_ms).fmt(' ms', 2)} at {large.rows:,}; "
            f"ratio {ratio.fmt('', 2)}  target <= 1.5"
        )
        figures.append(
            Figure(
                f"4 GET {name}",
                f"{Spread.of(large_ms).median:.2f} ms @{large.rows:,} jobs",
                f"{Spread.of(small_ms).median:.2f} ms @{small.rows:,}",
                ratio.fmt("", 2),
                "<= 1.5",
                ratio.median <= 1.5,
            )
        )
    for plan in plans:
        print(f"    plan at {large.rows:,} rows: {plan}")
    figures += operator_queries.figures(sites["small"], sites["large"])
    print(f"    operator query plans at {large.rows:,} rows (EXPLAIN (ANALYZE, BUFFERS)):")
    for line in operator_plans:
        print(f"    {line}")
    return figures
