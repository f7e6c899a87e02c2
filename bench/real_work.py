"""8. The job system's cost on real work: sustained verdicts per second for a stream of proofs.

Each round gets its own proofs (1 PDF + 1 PNG + a tracking number, every file distinct, so
the reuse checks look up real indexes and find nothing). The system round sends them
through everything a proof goes through: gunicorn (2 workers x 4 threads), the outbox and
its dispatch to Redis, the verification and scan pools as in supervisord.conf, clamd, the
verdict, with `concurrency` clients submitting as fast as the API accepts; it is timed from
the first submission to the last verdict (read from the proofs table). The baseline round,
right after it on the same files, is what the rules cost without a job system: one process
calling in a loop, in as many threads as the verification pool has, what the verification
job calls per asset (the inspector's `examine`, which checks each file in a child of its
fork server, and `cross_check`, the reuse lookups on the same database) and a clamd
INSTREAM scan of each file.

CPU per verdict is read per process group from /proc before and after each system round
(bench/cpu_accounts.py): the API, each worker pool (with its fork servers and, sampled,
their short-lived children), clamd, the PostgreSQL backends of the run's database, and
Redis (the server is shared: its figure includes whatever else uses it meanwhile).
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.client import SELLER, Api, bearer, funded_rifts, small_proof
from bench.cpu_accounts import Account, Meter, ShortLivedChildren, descendants, is_fork_server
from bench.harness import BenchRun, Figure, Proc, Spread
from service.blobs import BlobStore, blob_store_from_settings
from service.domain.clock import as_utc
from service.domain.inspector import AssetContent, ToCrossCheck
from service.inspection import RuleInspector
from service.models import AssetType, Proof
from service.scanning.address import ClamdAddress
from service.scanning.clamd import ClamdScanner
from service.verification.license_keys import LicenseKeyVault

VERDICT_TIMEOUT_S = 120.0
POLL_S = 0.02
TARGET = 0.8


@dataclass(frozen=True)
class Config:
    rounds: int = 3
    # Proofs per round: as many as the warm-up's rate gets through in round_s, within
    # bounds (a round long enough that filling and draining the pipeline is a small part).
    round_s: float = 8.0
    min_proofs: int = 12
    max_proofs: int = 400
    concurrency: int = 4  # submitting clients
    warmup: int = 6
    verification_pool: tuple[int, int] = (1, 4)  # processes, threads (supervisord.conf)
    scan_pool: tuple[int, int] = (1, 2)


@dataclass
class Round:
    system_per_s: float
    baseline_per_s: float
    system_cpu_s: dict[str, float]
    baseline_cpu_s: dict[str, float]
    proofs: int


@dataclass
class Stack:
    """What the system rounds run on, and what they are measured with."""

    api: Proc
    port: int
    pools: dict[str, Proc]
    clamd_pid: int
    redis_pid: int
    database: str
    engine: sa.Engine
    rifts: Iterable[str]


def _backends(engine: sa.Engine, database: str) -> Callable[[], list[int]]:
    """The PostgreSQL backends serving the run's database (not the one asking)."""

    def pids() -> list[int]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = :d "
                        "AND pid <> pg_backend_pid()"
                    ),
                    {"d": database},
                ).scalars()
            )

    return pids


def _pool_pids(pool: Proc) -> Callable[[], list[int]]:
    # Down to the fork servers, not into their children: those are sampled on their own.
    return lambda: descendants([pool.pid], into=lambda pid: not is_fork_server(pid))


def _fork_servers(roots: Callable[[], Sequence[int]]) -> Callable[[], list[int]]:
    return lambda: [pid for pid in descendants(roots()) if is_fork_server(pid)]


def _submit_all(stack: Stack, bodies: list[tuple[bytes, str]], concurrency: int) -> list[str]:
    """Submit every body to its own rift with `concurrency` clients; the proof ids."""
    # Bodies first: zip stops at the last body without taking one rift too many.
    jobs = iter([(rift_id, body) for body, rift_id in zip(bodies, stack.rifts, strict=False)])
    lock = threading.Lock()
    proof_ids: list[str] = []
    errors: list[str] = []
    headers = bearer(SELLER)

    def client() -> None:
        api = Api(stack.port)
        try:
            while True:
                with lock:
                    job = next(jobs, None)
                if job is None:
                    return
                rift_id, (body, content_type) = job
                status, receipt = api.json(
                    "POST",
                    f"/api/rifts/{rift_id}/proofs",
                    body,
                    {**headers, "Content-Type": content_type},
                )
                with lock:
                    if status == 202:
                        proof_ids.append(receipt["proof_id"])
                    else:
                        errors.append(f"{status}: {receipt}")
        finally:
            api.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors or len(proof_ids) != len(bodies):
        raise RuntimeError(f"{len(bodies) - len(proof_ids)} submissions failed: {errors[:1]}")
    return proof_ids


def _wait_for_verdicts(engine: sa.Engine, proof_ids: list[str]) -> None:
    deadline = time.monotonic() + VERDICT_TIMEOUT_S
    query = sa.select(sa.func.count()).where(Proof.id.in_(proof_ids), Proof.verdict_at.is_not(None))
    with engine.connect() as conn:
        while conn.execute(query).scalar_one() < len(proof_ids):
            if time.monotonic() > deadline:
                raise RuntimeError("no verdict for every proof in time")
            time.sleep(POLL_S)
            conn.rollback()


def _system_round(
    stack: Stack, n: int, concurrency: int
) -> tuple[float, dict[str, float], list[str]]:
    bodies = [small_proof() for _ in range(n)]  # built before the clock starts
    accounts = [
        Account("API (gunicorn)", lambda: descendants([stack.api.pid])),
        *(Account(f"{name} pool", _pool_pids(pool)) for name, pool in stack.pools.items()),
        Account("clamd", lambda: [stack.clamd_pid]),
        Account("PostgreSQL backends", _backends(stack.engine, stack.database)),
        Account("Redis (shared server)", lambda: [stack.redis_pid]),
    ]
    verification = stack.pools["verification"]
    samplers = [
        ShortLivedChildren(
            "verification pool: file-check children", _fork_servers(lambda: [verification.pid])
        )
    ]
    meters: list[Meter] = [*accounts, *samplers]
    for meter in meters:
        meter.start()
    started = time.perf_counter()
    proof_ids = _submit_all(stack, bodies, concurrency)
    _wait_for_verdicts(stack.engine, proof_ids)
    elapsed = time.perf_counter() - started
    for meter in meters:
        meter.stop()
    cpu = {meter.name: meter.cpu_s for meter in meters}
    return n / elapsed, cpu, proof_ids


@dataclass
class Checks:
    """The rules the verification job applies, and a clamd scan, in this one process."""

    inspector: RuleInspector
    scanner: ClamdScanner
    blobs: BlobStore
    engine: sa.Engine
    threads: int


def _baseline_round(
    checks: Checks, stack: Stack, proof_ids: list[str]
) -> tuple[float, dict[str, float]]:
    """Check the same proofs' assets in a loop: examine, the reuse lookups, a clamd scan.

    As many threads as the verification pool has: the file checks run in fork-server
    children, so a single thread would leave a core idle that the system's pool uses.
    """
    with Session(checks.engine) as session:
        proofs = [session.get_one(Proof, pid) for pid in proof_ids]
        work = [(as_utc(p.submitted_at), list(p.assets)) for p in proofs]
        session.expunge_all()
    server = checks.inspector.files.server_pid
    accounts = [
        Account("clamd", lambda: [stack.clamd_pid]),
        Account("PostgreSQL backends", _backends(stack.engine, stack.database)),
        Account("fork server", lambda: [server] if server else []),
    ]
    children = ShortLivedChildren("file-check children", lambda: [server] if server else [])
    meters: list[Meter] = [*accounts, children]
    for meter in meters:
        meter.start()
    pending = iter(work)
    lock = threading.Lock()

    def loop() -> None:
        while True:
            with lock:
                item = next(pending, None)
            if item is None:
                return
            uploaded_at, assets = item
            with Session(checks.engine) as session:
                examined = [
                    checks.inspector.examine(AssetContent.of(asset, uploaded_at))
                    for asset in assets
                ]
                checks.inspector.cross_check(
                    session,
                    assets[0].rift_id,
                    [
                        ToCrossCheck(
                            type=asset.type,
                            sha256=asset.sha256,
                            key_fingerprint=asset.key_fingerprint,
                            quarantined=asset.quarantined_at is not None,
                            found=found,
                        )
                        for asset, found in zip(assets, examined, strict=True)
                    ],
                )
                for asset in assets:
                    if asset.type is AssetType.FILE and asset.storage_key:
                        with checks.blobs.open(asset.storage_key) as stream:
                            checks.scanner.scan_stream(stream)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(checks.threads)]
    own_before = _own_cpu_s()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    # The sampling thread runs in this process too: its time is the bench's, not the rules'.
    own = _own_cpu_s() - own_before - children.own_cpu_s
    for meter in meters:
        meter.stop()
    cpu = {"this process": own, **{m.name: m.cpu_s for m in accounts}}
    cpu[children.name] = children.cpu_s
    return len(work) / elapsed, cpu


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _redis_pid(bench: BenchRun) -> int:
    return int(bench.redis.info("server")["process_id"])


def run(bench: BenchRun, cfg: Config) -> list[Figure]:
    print(
        f"\n[8] real work: {cfg.rounds} rounds of about {cfg.round_s:.0f} s of distinct proofs "
        f"(1 PDF + 1 PNG + tracking number), {cfg.concurrency} submitting clients; the whole "
        "system against the same checks in a loop in one process; PostgreSQL, clamd"
    )
    clamd_address = bench.clamd()
    clamd_pid = int((bench.path("clamd") / "clamd.pid").read_text().strip())
    rounds: list[Round] = []
    with bench.postgres() as database_url:
        data_dir = bench.path("data-realwork")
        env = bench.env(database_url, data_dir, CLAMD_ADDRESS=clamd_address)
        api, port = bench.gunicorn("api-realwork", "service.api.wsgi:app", env)
        pools = {
            "verification": bench.worker(
                "verification-realwork",
                "actors.broker:setup",
                ["verification"],
                env,
                processes=cfg.verification_pool[0],
                threads=cfg.verification_pool[1],
            ),
            "scan": bench.worker(
                "scan-realwork",
                "actors.broker:setup",
                ["scan"],
                env,
                processes=cfg.scan_pool[0],
                threads=cfg.scan_pool[1],
            ),
        }
        engine = sa.create_engine(database_url)
        stack = Stack(
            api=api,
            port=port,
            pools=pools,
            clamd_pid=clamd_pid,
            redis_pid=_redis_pid(bench),
            database=sa.make_url(database_url).database or "",
            engine=engine,
            rifts=iter(funded_rifts(database_url, cfg.warmup)),
        )
        settings = bench.settings(database_url, data_dir, clamd_address=clamd_address)
        blobs = blob_store_from_settings(settings)
        checks = Checks(
            inspector=RuleInspector(
                blobs, LicenseKeyVault(settings.license_key_secret.encode()), settings.thresholds()
            ),
            scanner=ClamdScanner(
                ClamdAddress.parse(clamd_address), timeout_s=settings.scan_timeout_s
            ),
            blobs=blobs,
            engine=engine,
            threads=cfg.verification_pool[1],
        )
        try:
            # Warm both: the pools' fork servers and connections, and this process's own.
            warm_per_s, _, warm_ids = _system_round(stack, cfg.warmup, cfg.concurrency)
            _baseline_round(checks, stack, warm_ids)
            proofs = max(cfg.min_proofs, min(cfg.max_proofs, round(warm_per_s * cfg.round_s)))
            bench.log(f"warm-up {warm_per_s:.1f} verdicts/s: {proofs} proofs per round")
            stack.rifts = iter(funded_rifts(database_url, cfg.rounds * proofs))
            for round_no in range(cfg.rounds):
                per_s, system_cpu, proof_ids = _system_round(stack, proofs, cfg.concurrency)
                base_per_s, base_cpu = _baseline_round(checks, stack, proof_ids)
                rounds.append(Round(per_s, base_per_s, system_cpu, base_cpu, proofs))
                bench.log(
                    f"round {round_no + 1}: system {per_s:.1f} verdicts/s, "
                    f"checks in a loop {base_per_s:.1f} proofs/s ({per_s / base_per_s:.2f})"
                )
        finally:
            checks.inspector.files.close()
            engine.dispose()
    return _report(rounds)


def _report(rounds: list[Round]) -> list[Figure]:
    system = Spread.of([r.system_per_s for r in rounds])
    baseline = Spread.of([r.baseline_per_s for r in rounds])
    ratio = Spread.of([r.system_per_s / r.baseline_per_s for r in rounds])
    print(
        f"    whole system     {system.fmt(' verdicts/s', 1)}\n"
        f"    checks in a loop {baseline.fmt(' proofs/s', 1)}\n"
        f"    ratio            {ratio.fmt('', 2)}  target >= {TARGET}"
    )
    figures = [
        Figure(
            "8 real work (system / checks in a loop)",
            f"{system.median:.1f} verdicts/s",
            f"checks in one process {baseline.median:.1f} proofs/s",
            ratio.fmt("", 2),
            f">= {TARGET}",
            ratio.median >= TARGET,
        )
    ]
    totals = {}
    for label, attr in (("system", "system_cpu_s"), ("checks in a loop", "baseline_cpu_s")):
        print(f"    CPU ms per verdict, {label} (median over rounds):")
        for name in getattr(rounds[0], attr):
            per = Spread.of([getattr(r, attr)[name] * 1000 / r.proofs for r in rounds])
            print(f"      {name:<42} {per.fmt(' ms', 1)}")
            if label == "system":
                figure = f"{per.median:.1f} ms"
                figures.append(Figure(f"8 CPU/verdict {name} (info)", figure, "", "", "-", None))
        totals[label] = [sum(getattr(r, attr).values()) * 1000 / r.proofs for r in rounds]
        print(f"      {'all of the above':<42} {Spread.of(totals[label]).fmt(' ms', 1)}")
    cpu_ratio = Spread.of(
        [a / b for a, b in zip(totals["system"], totals["checks in a loop"], strict=True)]
    )
    figures.append(
        Figure(
            "8 CPU per verdict, all measured (info)",
            f"{Spread.of(totals['system']).median:.1f} ms",
            f"checks in one process {Spread.of(totals['checks in a loop']).median:.1f} ms",
            f"x{cpu_ratio.fmt('', 2)}",
            "(reported)",
            None,
        )
    )
    return figures
