"""The running system for monitoring tests: gunicorn, worker pools, scheduler, Prometheus.

Every process is started in its own process group and stopped by its PID; each service
is started without waiting so several can boot at once, then `wait_ready` waits for them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from actors.queue_stats import HEARTBEAT_KEY
from service.auth import mint_token
from service.domain.users import Role
from service.settings import Settings
from tests.conftest import settings_env
from tests.support.processes import (
    REPO_ROOT,
    STOP_TIMEOUT_S,
    VENV_BIN,
    ManagedProcess,
    free_port,
    worker_argv,
)

READY_TIMEOUT_S = 30.0
# Long enough for any request of the stack's API on a loaded machine; a hang past it fails.
REQUEST_TIMEOUT_S = 10.0
GUNICORN_CONFIG = REPO_ROOT / "deploy" / "gunicorn.conf.py"


def http(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> tuple[int, bytes]:
    """Send one request; return its status and body, 4xx and 5xx included."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def answers(url: str) -> bool:
    try:
        return http("GET", url, timeout_s=2.0)[0] == 200
    except OSError:
        return False


def metric_sum(exposition: str, sample_name: str, **labels: str) -> float:
    """Sum the samples called sample_name whose labels include the given ones."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == sample_name and labels.items() <= sample.labels.items()
    )


def per_process_values(
    multiproc_dir: Path, kind: str, sample_name: str, **labels: str
) -> dict[int, float]:
    """Read one sample's value from each process's file in a multiprocess directory."""
    totals: dict[int, float] = {}
    for path in sorted(multiproc_dir.glob(f"{kind}_*.db")):
        pid = int(path.stem.rsplit("_", 1)[1])
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, key_labels, _help = json.loads(key)
            if name == sample_name and labels.items() <= key_labels.items():
                totals[pid] = totals.get(pid, 0.0) + value
    return totals


def child_pids(pid: int) -> list[int]:
    """Return the PIDs of a process's children (gunicorn's workers, Dramatiq's processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


@dataclass
class HttpResult:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    @property
    def json(self) -> Any:
        return json.loads(self.content)


class HttpClient:
    """The part of falcon.testing.TestClient that tests.support.flows uses, over real HTTP."""

    def __init__(self, base_url: str, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s

    def simulate_request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        all_headers = dict(headers or {})
        if json is not None:
            body = _json_bytes(json)
            all_headers.setdefault("Content-Type", "application/json")
        status, content = http(
            method, self.base_url + path, body=body, headers=all_headers, timeout_s=self.timeout_s
        )
        return HttpResult(status, content)

    def simulate_get(self, path: str, **kwargs: Any) -> HttpResult:
        return self.simulate_request("GET", path, **kwargs)

    def simulate_post(self, path: str, **kwargs: Any) -> HttpResult:
        return self.simulate_request("POST", path, **kwargs)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def bearer_headers(settings: Settings) -> Callable[..., dict[str, str]]:
    """auth("alice") -> headers with a bearer token, like the root `auth` fixture."""

    def headers(user_id: str, role: Role = Role.USER, ttl_s: float = 600) -> dict[str, str]:
        token = mint_token(user_id, role, settings.jwt_secret, ttl=timedelta(seconds=ttl_s))
        return {"Authorization": f"Bearer {token}"}

    return headers


@dataclass
class ProcessIn(ManagedProcess):
    """A ManagedProcess started from a chosen working directory."""

    cwd: Path = REPO_ROOT

    def start(self) -> ProcessIn:
        # The child has its own copy of the descriptor; ours is closed at once.
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=dict(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self


@dataclass
class Service:
    name: str
    process: ManagedProcess
    url: str
    ready: Callable[[], bool]
    metrics_dir: Path | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def metrics_url(self) -> str:
        return self.url + "/metrics"

    def scrape(self) -> str:
        status, body = http("GET", self.metrics_url)
        assert status == 200, f"{self.name} /metrics answered {status}"
        return body.decode()


@dataclass
class Stack:
    """Start Rift's processes against one set of settings; stop them all at the end."""

    settings: Settings
    workdir: Path
    redis: redis.Redis
    services: list[Service] = field(default_factory=list)
    #: Run after the processes are stopped (helpers such as a proxy in front of clamd).
    cleanups: list[Callable[[], object]] = field(default_factory=list)

    def _start(
        self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path = REPO_ROOT
    ) -> ManagedProcess:
        log = self.workdir / f"{name}.log"
        return ProcessIn(argv, env, log, cwd=cwd).start()

    def _add(self, service: Service) -> Service:
        self.services.append(service)
        return service

    def api(
        self,
        *,
        workers: int = 2,
        threads: int = 4,
        metrics_dir: Path | None = None,
        cwd: Path = REPO_ROOT,
        settings: Settings | None = None,
        **env: str,
    ) -> Service:
        """gunicorn with deploy/gunicorn.conf.py; without metrics_dir, the config's default."""
        port = free_port()
        extra = {
            "API_BIND": f"127.0.0.1:{port}",
            "API_WORKERS": str(workers),
            "API_THREADS": str(threads),
            "PYTHONPATH": str(REPO_ROOT),
            **env,
        }
        if metrics_dir is not None:
            extra["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        argv = [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONFIG), "service.api.wsgi:app"]
        process = self._start(
            f"api-{port}", argv, settings_env(settings or self.settings, **extra), cwd
        )
        url = f"http://127.0.0.1:{port}"
        return self._add(
            Service(
                "api",
                process,
                url,
                lambda: answers(url + "/healthz"),
                metrics_dir or cwd / "var" / "prometheus" / "api",
            )
        )

    def pool(
        self,
        queues: list[str],
        *,
        processes: int = 1,
        threads: int = 2,
        port: int | None = None,
        settings: Settings | None = None,
        **env: str,
    ) -> Service:
        """A Dramatiq pool as supervisord runs it: its own metrics directory and port."""
        port = port or free_port()
        name = f"pool-{queues[0]}-{port}"
        metrics_dir = self.workdir / name
        metrics_dir.mkdir()
        process_env = settings_env(
            settings or self.settings,
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            dramatiq_prom_db=str(metrics_dir),
            dramatiq_prom_host="127.0.0.1",
            dramatiq_prom_port=str(port),
            **env,
        )
        argv = worker_argv(queues, processes=processes, threads=threads)
        process = self._start(name, argv, process_env)
        url = f"http://127.0.0.1:{port}"
        key = HEARTBEAT_KEY.format(queue=queues[0])

        def ready() -> bool:
            return int(self.redis.zcard(key)) >= processes and answers(url + "/metrics")

        return self._add(Service(name, process, url, ready, metrics_dir))

    def scheduler(self) -> Service:
        """`python -m actors.scheduler`: outbox relay and the metrics collector."""
        port = free_port()
        env = settings_env(self.settings, COLLECTOR_HOST="127.0.0.1", COLLECTOR_PORT=str(port))
        process = self._start(
            "scheduler", [str(VENV_BIN / "python"), "-m", "actors.scheduler"], env
        )
        url = f"http://127.0.0.1:{port}"
        return self._add(Service("collector", process, url, lambda: answers(url + "/metrics")))

    def prometheus(self, config: str) -> Service:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is not on PATH; install Debian's prometheus package")
        port = free_port()
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(config)
        argv = [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        process = self._start("prometheus", argv, {"PATH": "/usr/bin:/bin"})
        url = f"http://127.0.0.1:{port}"
        return self._add(Service("prometheus", process, url, lambda: answers(url + "/-/ready")))

    def wait_ready(self, *services: Service, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until every service answers; a process that exits fails with its log."""
        pending = list(services)
        deadline = time.monotonic() + timeout_s
        while pending:
            for service in list(pending):
                if not service.process.alive():
                    pytest.fail(
                        f"{service.name} exited while starting:\n{service.process.output()[-4000:]}"
                    )
                if service.ready():
                    pending.remove(service)
            if pending and time.monotonic() > deadline:
                logs = "\n".join(f"--- {s.name}:\n{s.process.output()[-3000:]}" for s in pending)
                pytest.fail(f"not ready after {timeout_s}s: {[s.name for s in pending]}\n{logs}")
            time.sleep(0.1)

    def stop_all(self) -> None:
        # Signal every process group first, then wait: shutdowns overlap instead of adding up.
        running = [s.process for s in reversed(self.services) if s.process.alive()]
        for process in running:
            os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            assert process.proc is not None
            try:  # not ManagedProcess.stop: a second SIGTERM makes Dramatiq kill its workers
                process.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.proc.wait(timeout=STOP_TIMEOUT_S)
        for cleanup in reversed(self.cleanups):
            cleanup()
