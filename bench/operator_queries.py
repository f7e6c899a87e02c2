"""4b. Operator queries at 10^3 and 10^6 job records: the job listing and the queue figures.

Runs on measurement 4's two databases and APIs (bench/status_scaling.py seeds them with a
realistic mix: 30 days of history, three actors, about 0.6 % FAILED or DEAD). Over HTTP,
as an operator's admin token: `GET /api/admin/jobs` with each filter the console and
`rift jobs list` offer (the default FAILED+DEAD list and its next page, state + actor,
rift, age either way, and a SUCCEEDED listing whose matches are most of the table), and
`GET /api/admin/queues`. In the bench process, the job-record reads behind queue figures:
the backlog RabbitMQ's queue stats read (retries waiting, oldest queued), and what the
metrics collector reads of the job records on each scrape: the `rift_jobs` counts of
unfinished jobs alone, and every job-record gauge of a scrape (actors/collector.py's
JobRecordGauges, with the overdue counts under the scheduler's limits).

Each listing's statements are the ones `search_jobs` runs, and each in-process read's the
ones it runs; at 10^6 they are run once more with EXPLAIN (ANALYZE, BUFFERS) in front and
the plans printed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from actors.collector import JobRecordGauges
from bench.client import Api, bearer
from bench.harness import Figure, Spread, percentile
from service.api.resources.job_filters import job_filter
from service.db import SessionFactory, create_session_factory
from service.domain.clock import utcnow
from service.domain.job_queries import backlog_by_queue, count_jobs_in_flight
from service.domain.job_search import RETRYABLE_STATES, search_jobs
from service.domain.reconciler import ReconcileLimits, count_overdue_jobs
from service.domain.users import Role

OPERATOR = "bench-operator"
PAGE = 50
# The rift of the first FAILED job the seeding writes (g = 331, six jobs per rift).
FAILED_RIFT_SQL = "SELECT md5('r' || (331 / 6))::uuid::text"


@dataclass(frozen=True)
class Listing:
    """One operator listing: its query string (as the console or the CLI sends it)."""

    name: str
    params: Mapping[str, str]
    next_page: bool = False  # follow next_cursor once and time the second page


def listings(failed_rift: str) -> tuple[Listing, ...]:
    return (
        Listing("failed+dead", {}),
        Listing("failed+dead page 2", {}, next_page=True),
        Listing("DEAD scan_asset", {"state": "DEAD", "actor": "scan_asset"}),
        Listing("rift", {"rift_id": failed_rift}),
        Listing("older than 7 days", {"min_age_s": str(7 * 86_400)}),
        Listing("last hour", {"max_age_s": "3600"}),
        Listing("SUCCEEDED verify_proof", {"state": "SUCCEEDED", "actor": "verify_proof"}),
    )


@dataclass
class Site:
    """One database and its API, with what was measured on it (p50 ms per round)."""

    label: str
    rows: int
    port: int
    database_url: str
    #: The reconciler's limits, as the scheduler reads them (the collector's overdue counts).
    limits: ReconcileLimits
    failed_rift: str = ""
    p50_ms: dict[str, list[float]] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)


def prepare(label: str, rows: int, port: int, database_url: str, limits: ReconcileLimits) -> Site:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        failed_rift = conn.execute(sa.text(FAILED_RIFT_SQL)).scalar_one()
    engine.dispose()
    return Site(label, rows, port, database_url, limits, failed_rift)


def _query(params: Mapping[str, str], limit: int = PAGE, cursor: str | None = None) -> str:
    query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
    return "/api/admin/jobs?" + urlencode(query)


def _timed(api: Api, path: str, headers: Mapping[str, str]) -> tuple[float, Any]:
    started = time.perf_counter()
    status, body = api.json("GET", path, None, headers)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body}")
    return elapsed, body


def _in_process(sessions: SessionFactory, read: Callable[[SessionFactory], object]) -> float:
    started = time.perf_counter()
    read(sessions)
    return time.perf_counter() - started


def _in_one_session(read: Callable[[Session], object]) -> Callable[[SessionFactory], object]:
    def in_session(sessions: SessionFactory) -> object:
        with sessions() as session:
            return read(session)

    return in_session


def in_process_reads(site: Site) -> dict[str, Callable[[SessionFactory], object]]:
    """The job-record reads behind queue figures and metrics, each a read of one database."""

    def scrape(sessions: SessionFactory) -> object:
        def overdue() -> dict[tuple[str, str], int]:
            return count_overdue_jobs(sessions, site.limits, utcnow())

        # The seeded in-flight jobs are old: a real scrape warns about each, every time.
        stuck_warnings = logging.getLogger("service.domain.retention")
        level = stuck_warnings.level
        stuck_warnings.setLevel(logging.ERROR)
        try:
            return list(JobRecordGauges(sessions, utcnow, overdue).collect())
        finally:
            stuck_warnings.setLevel(level)

    return {
        "RabbitMQ queue stats backlog": _in_one_session(backlog_by_queue),
        "collector rift_jobs (in flight)": _in_one_session(count_jobs_in_flight),
        "collector scrape, job records": scrape,
    }


def run_round(site: Site, requests: int) -> None:
    """`requests` sequential calls of each query; records each query's p50."""
    api = Api(site.port)
    headers = bearer(OPERATOR, Role.ADMIN)
    times: dict[str, list[float]] = {}
    cursors: dict[str, str] = {}
    engine = sa.create_engine(site.database_url)
    sessions = create_session_factory(engine)
    reads = in_process_reads(site)
    try:
        for _ in range(requests):
            for listing in listings(site.failed_rift):
                cursor = None
                if listing.next_page:
                    if listing.name not in cursors:
                        _, first = _timed(api, _query(listing.params), headers)
                        cursors[listing.name] = first["next_cursor"]
                    cursor = cursors[listing.name]
                elapsed, body = _timed(api, _query(listing.params, cursor=cursor), headers)
                times.setdefault(listing.name, []).append(elapsed)
                site.totals[listing.name] = body.get("total")
            elapsed, _ = _timed(api, "/api/admin/queues", headers)
            times.setdefault("GET /api/admin/queues", []).append(elapsed)
            for name, read in reads.items():
                times.setdefault(name, []).append(_in_process(sessions, read))
    finally:
        api.close()
        engine.dispose()
    for name, values in times.items():
        site.p50_ms.setdefault(name, []).append(percentile(values, 50) * 1000)


def reset(site: Site) -> None:
    site.p50_ms.clear()


@contextlib.contextmanager
def _explained(engine: sa.Engine, plans: list[str]) -> Iterator[None]:
    """Run every SELECT once more as EXPLAIN (ANALYZE, BUFFERS) first; keep the plans."""

    def explain(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

    event.listen(engine, "before_cursor_execute", explain)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", explain)


def plans(site: Site) -> list[str]:
    """Each listing's statements, as search_jobs runs them, with their plans at site."""
    engine = sa.create_engine(site.database_url)
    printed: list[str] = []
    try:
        for listing in listings(site.failed_rift):
            params: dict[str, Any] = dict(listing.params)
            params.setdefault("state", [s.value for s in RETRYABLE_STATES])
            flt = job_filter(params)
            cursor = None
            with Session(engine) as session:
                if listing.next_page:
                    cursor = search_jobs(session, flt, utcnow(), limit=PAGE).next_cursor
                found: list[str] = []
                with _explained(engine, found):
                    search_jobs(session, flt, utcnow(), limit=PAGE, cursor=cursor)
            printed.append(f"{listing.name} ({urlencode(listing.params) or 'no filter'}):")
            printed += ["      " + line for plan in found for line in plan.splitlines()]
        for name, read in in_process_reads(site).items():
            found = []
            with _explained(engine, found):
                read(create_session_factory(engine))
            printed.append(f"{name}:")
            printed += ["      " + line for plan in found for line in plan.splitlines()]
    finally:
        engine.dispose()
    return printed


def figures(small: Site, large: Site) -> list[Figure]:
    found: list[Figure] = []
    print("    operator queries (p50 per round; sequential; admin token):")
    for name, small_ms in small.p50_ms.items():
        large_ms = large.p50_ms[name]
        ratio = Spread.of([b / a for a, b in zip(small_ms, large_ms, strict=True)])
        total = large.totals.get(name)
        print(
            f"    {name:<32} {Spread.of(small_ms).fmt(' ms', 2)} at {small.rows:,} -> "
            f"{Spread.of(large_ms).fmt(' ms', 2)} at {large.rows:,}; ratio {ratio.fmt('', 2)}"
            + ("" if total is None else f"; total at {large.rows:,}: {total}")
        )
        kind = "GET /api/admin/jobs " if name in {x.name for x in listings("")} else ""
        found.append(
            Figure(
                f"4 {kind}{name}",
                f"{Spread.of(large_ms).median:.2f} ms @{large.rows:,} jobs",
                f"{Spread.of(small_ms).median:.2f} ms @{small.rows:,}",
                ratio.fmt("", 2),
                "<= 1.5",
                ratio.median <= 1.5,
            )
        )
    return found
