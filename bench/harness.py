"""Start and stop what a measurement needs on loopback, and summarise what it measured.

Every child runs in its own process group and is stopped by its PID; every database,
Redis DB and directory a run creates is removed when the run ends.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from service.settings import Settings
from tests.support.processes import ManagedProcess, free_port, wait_for, worker_argv

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 60.0
POSTGRES_ADMIN_URL = os.environ.get(
    "RIFT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_BASE_URL = os.environ.get("RIFT_BENCH_REDIS", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("RIFT_BENCH_REDIS_DB", "13"))
# The claim a test session takes on its Redis DB (tests/conftest.py): the run takes the same
# one, so a bench beside a test run (or another bench) never flushes a DB in use.
REDIS_CLAIM_KEY = "rift:test-db-claim:{db}"
REDIS_CLAIM_TTL_S = 3600
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789"
LICENSE_KEY_SECRET = "bench-license-key-secret-0123456789abcdef"
WORKER_READY_LINE = b"is ready for action"


# ---------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0-100) of values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Spread:
    """The median of repeated runs with their min and max."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def fmt(self, unit: str = "", digits: int = 1) -> str:
        return (
            f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f}"
            f", n={self.n})"
        )


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """Pairwise ratios of runs made back to back (round i against round i)."""
    return Spread.of([a / b for a, b in zip(numerators, denominators, strict=True)])


@dataclass
class Figure:
    """One line of the summary table."""

    measurement: str
    figure: str
    baseline: str
    ratio: str
    target: str
    met: bool | None  # None: informational, no target


# ---------------------------------------------------------------------------- processes


@dataclass
class Proc(ManagedProcess):
    """A product process the bench started (the tests' ManagedProcess, plus a name)."""

    name: str = ""

    def children(self) -> list[int]:
        """PIDs of this process's direct children (gunicorn workers, dramatiq workers)."""
        found: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(p) for p in (task / "children").read_text().split()]
        return found


def rss_peak_kib(pid: int) -> int:
    """VmHWM of pid: the most resident memory it has had since start or the last reset."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


def reset_rss_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# ---------------------------------------------------------------------------- the bench run


class BenchRun:
    """A temporary directory, a private Redis DB, and everything started, for one run."""

    def __init__(self, *, verbose: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rift-bench-"))
        self.redis_url = f"{REDIS_BASE_URL}/{REDIS_DB}"
        self.redis = redis.Redis.from_url(self.redis_url)
        self.verbose = verbose
        self._stack = contextlib.ExitStack()
        self._procs: list[Proc] = []
        self._clamd_address: str | None = None

    # -- lifecycle
    def __enter__(self) -> BenchRun:
        self.redis.ping()
        claims = redis.Redis.from_url(f"{REDIS_BASE_URL}/0")
        claim = REDIS_CLAIM_KEY.format(db=REDIS_DB)
        if not claims.set(claim, f"bench {os.getpid()}", nx=True, ex=REDIS_CLAIM_TTL_S):
            raise RuntimeError(
                f"Redis DB {REDIS_DB} is in use ({claims.get(claim)!r} claimed it); "
                "set RIFT_BENCH_REDIS_DB to another"
            )
        self._stack.callback(claims.delete, claim)
        self.redis.flushdb()
        self._stack.callback(self.redis.flushdb)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self._procs):
            proc.stop()
        self._stack.close()
        if not self.verbose:
            subprocess.run(["rm", "-rf", str(self.root)], check=False)

    def log(self, text: str) -> None:
        print(f"  .. {text}", flush=True)

    def path(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- databases
    @contextlib.contextmanager
    def postgres(self) -> Iterator[str]:
        """A fresh, migrated PostgreSQL database, dropped afterwards."""
        name = f"rift_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = (
                sa.make_url(POSTGRES_ADMIN_URL)
                .set(database=name)
                .render_as_string(hide_password=False)
            )
            self.migrate(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def sqlite(self, name: str) -> str:
        url = f"sqlite:///{self.path('sqlite') / (name + '.sqlite3')}"
        self.migrate(url)
        return url

    def migrate(self, database_url: str) -> None:
        # The product's own secrets check applies to migrate too: give it the run's.
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "JWT_SECRET": JWT_SECRET,
            "LICENSE_KEY_SECRET": LICENSE_KEY_SECRET,
        }
        subprocess.run(
            [sys.executable, "-m", "service.cli", "migrate"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            capture_output=True,
        )

    # -- environment for the product's processes
    def settings(self, database_url: str, data_dir: Path, **fields: Any) -> Settings:
        """The settings a product process would read from `env` (the same database, Redis)."""
        return Settings(
            database_url=database_url,
            redis_url=self.redis_url,
            data_dir=data_dir,
            jwt_secret=JWT_SECRET,
            license_key_secret=LICENSE_KEY_SECRET,
            **fields,
        )

    def env(self, database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
        """The environment a product process reads (see Settings.from_env)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PROMETHEUS", "prometheus", "dramatiq", "REDIS_", "API_"))
        }
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=self.redis_url,
            RIFT_DATA_DIR=str(data_dir),
            JWT_SECRET=JWT_SECRET,
            LICENSE_KEY_SECRET=LICENSE_KEY_SECRET,
            LOG_FORMAT="console",
            RIFT_ENV="development",
        )
        env.update(extra)
        return env

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> Proc:
        proc = Proc(argv, env, self.root / f"{name}.log", name=name)
        self._procs.append(proc)
        proc.start()
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self._procs:
            self._procs.remove(proc)

    # -- servers
    def gunicorn(
        self, name: str, app: str, env: Mapping[str, str], *, workers: int = 2, threads: int = 4
    ) -> tuple[Proc, int]:
        """Start gunicorn with the project's config on a free port; wait for /healthz."""
        port = free_port()
        metrics_dir = self.path(f"prom-{name}")
        env = {
            **env,
            "API_BIND": f"127.0.0.1:{port}",
            "API_WORKERS": str(workers),
            "API_THREADS": str(threads),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        proc = self.spawn(
            name,
            [str(VENV_BIN / "gunicorn"), "-c", str(REPO_ROOT / "deploy/gunicorn.conf.py"), app],
            env,
        )

        def ready() -> bool:
            if not proc.alive():
                raise RuntimeError(f"{name} exited:\n{proc.output()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                ok = conn.getresponse().status == 200
                conn.close()
                return ok and len(proc.children()) >= workers
            except OSError:
                return False

        wait_for(ready, READY_TIMEOUT_S, f"{name} on port {port}", 0.1)
        return proc, port

    def worker(
        self,
        name: str,
        setup: str,
        queues: Sequence[str],
        env: Mapping[str, str],
        *,
        processes: int,
        threads: int,
    ) -> Proc:
        """Start `dramatiq SETUP` and wait until every worker process says it is ready."""
        metrics_dir = self.path(f"prom-{name}")
        env = {
            **env,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "dramatiq_prom_db": str(metrics_dir),
            "dramatiq_prom_host": "127.0.0.1",
            "dramatiq_prom_port": str(free_port()),
        }
        argv = worker_argv(queues, processes=processes, threads=threads, setup=setup)
        proc = self.spawn(name, argv, env)

        def ready() -> bool:
            if not proc.alive():
                raise RuntimeError(f"{name} exited:\n{proc.output()[-3000:]}")
            return proc.log_path.read_bytes().count(WORKER_READY_LINE) >= processes

        wait_for(ready, READY_TIMEOUT_S, f"{name} ready", 0.05)
        return proc

    def clamd(self) -> str:
        """The run's clamd (the project's offline signatures), started on first use."""
        if self._clamd_address is not None:
            return self._clamd_address  # stateless: measurements share one
        port = free_port()
        runtime = self.path("clamd")
        # Without its cache of clean files' hashes: the real-work baseline scans the files
        # the system scanned just before, and clamd would answer those from the cache (0.35
        # against 1.8 ms of its CPU per small file), a cost no stream of new proofs gets.
        subprocess.run(
            [
                str(REPO_ROOT / "deploy/clamav/start-clamd.sh"),
                "--no-cache",
                str(runtime),
                str(port),
            ],
            check=True,
            capture_output=True,
        )
        pid_file = runtime / "clamd.pid"

        def stop() -> None:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)

        self._stack.callback(stop)
        self._clamd_address = f"tcp://127.0.0.1:{port}"
        return self._clamd_address


def wipe_redis_keys(client: redis.Redis, pattern: str = "dramatiq:*") -> None:
    keys = list(client.scan_iter(pattern, count=1000))
    if keys:
        client.delete(*keys)


# ---------------------------------------------------------------------------- idle cost


@dataclass(frozen=True)
class IdleLoad:
    """What idle workers cost: Redis commands from our DB, Redis CPU, worker CPU."""

    client_cmds_per_s: float
    script_cmds_per_s: float
    redis_cpu_pct: float
    worker_cpu_pct: float


def group_cpu_s(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def idle_load(run: BenchRun, workers: Sequence[Proc], seconds: float) -> IdleLoad:
    """Watch REDIS_DB with MONITOR for `seconds` while nothing is submitted.

    MONITOR tags each command with its DB, so other users of the same Redis server are
    left out; commands run inside Dramatiq's Lua scripts are tagged `lua`. Redis CPU is
    estimated as commands x the server's mean microseconds per call of each command.
    """
    pids = [pid for proc in workers for pid in (proc.pid, *proc.children())]
    url = redis.Redis.from_url(run.redis_url).connection_pool.connection_kwargs
    cpu_before = group_cpu_s(pids)
    monitor = subprocess.run(
        [
            "timeout",
            str(seconds),
            "redis-cli",
            "-h",
            str(url.get("host", "127.0.0.1")),
            "-p",
            str(url.get("port", 6379)),
            "monitor",
        ],
        capture_output=True,
        check=False,
    )
    worker_cpu = group_cpu_s(pids) - cpu_before
    prefix = f"[{REDIS_DB} ".encode()
    client_calls: dict[str, int] = {}
    script_cmds = 0
    for line in monitor.stdout.splitlines():
        _, _, rest = line.partition(b" ")
        if not rest.startswith(prefix):
            continue
        where, _, command = rest.partition(b"] ")
        name = command.split(b" ", 1)[0].strip(b'"').decode(errors="replace").lower()
        if where.endswith(b"lua"):
            script_cmds += 1
        else:
            client_calls[name] = client_calls.get(name, 0) + 1
    stats = run.redis.info("commandstats")
    usec = sum(
        n * float(stats.get(f"cmdstat_{name}", {}).get("usec_per_call", 0.0))
        for name, n in client_calls.items()
    )
    return IdleLoad(
        client_cmds_per_s=sum(client_calls.values()) / seconds,
        script_cmds_per_s=script_cmds / seconds,
        redis_cpu_pct=usec / 1e6 / seconds * 100,
        worker_cpu_pct=worker_cpu / seconds * 100,
    )
