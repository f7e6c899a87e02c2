"""An API host and two worker hosts that share only PostgreSQL, the broker and the object store.

Each "host" is its own process group with its own RIFT_DATA_DIR (and its own clamd), on
loopback; the broker is Redis or RabbitMQ. Nothing passes between them on local disk: the
API streams uploads to S3, the workers read the objects back from S3.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from service.auth import mint_token
from service.blobs import blob_store_from_settings
from service.domain.users import Role
from service.models import Job, JobState
from service.multipart import encode_multipart
from service.settings import Settings
from tests.conftest import settings_env
from tests.scanning.clamd_process import RunningClamd
from tests.support.brokers import workers_alive
from tests.support.flows import BUYER, DELIVERY_NOTE, OPERATOR, SELLER
from tests.support.hanging_server import HangingServer
from tests.support.object_store import RunningS3
from tests.support.processes import (
    REPO_ROOT,
    VENV_BIN,
    ManagedProcess,
    free_port,
    wait_for,
    worker_argv,
)
from tests.support.settings import test_settings

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

READY_TIMEOUT_S = 30.0
RELAY_GRACE_S = 5.0
VERDICT_TIMEOUT_S = 45.0
CLEAN_FIELDS = {"tracking_number": "1Z999AA10123456784", "text": DELIVERY_NOTE}
NOTE = ("delivery-note.txt", DELIVERY_NOTE.encode(), "text/plain")


@dataclass
class Host:
    """One machine's worth of processes: its own data directory and process groups."""

    name: str
    settings: Settings
    workdir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    def run(self, argv: list[str], **env: str) -> ManagedProcess:
        log = self.workdir / f"{self.name}-{len(self.processes)}.log"
        process = ManagedProcess(argv, settings_env(self.settings, **env), log).start()
        self.processes.append(process)
        return process

    def power_off(self) -> None:
        """SIGKILL every process group of the host, as a pulled plug would."""
        for process in self.processes:
            process.kill_hard()

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def output(self) -> str:
        return "\n".join(p.output() for p in self.processes)

    def files_on_disk(self, folder: str) -> list[Path]:
        root = self.settings.data_dir / folder
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


class Api:
    """The API host seen from outside: JSON over real HTTP with bearer tokens."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings

    def token(self, user: str, role: Role = Role.USER) -> str:
        return mint_token(user, role, self.settings.jwt_secret, ttl=timedelta(minutes=10))

    def call(
        self,
        method: str,
        path: str,
        user: str,
        *,
        json_body: object | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        role: Role = Role.USER,
    ) -> dict[str, Any]:
        data = json.dumps(json_body).encode() if json_body is not None else body
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token(user, role)}"}
            | ({"Content-Type": content_type} if data is not None else {}),
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.load(response))

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def funded_rift(self) -> str:
        rift = self.call(
            "POST",
            "/api/rifts",
            BUYER,
            json_body={
                "title": "Logo design",
                "item_type": "SERVICES",
                "seller_id": SELLER,
                "subtotal": 25_000,
                "currency": "USD",
            },
        )
        self.call("POST", f"/api/rifts/{rift['id']}/transitions", BUYER, json_body={"to": "FUNDED"})
        return str(rift["id"])

    def submit(self, rift_id: str) -> dict[str, Any]:
        body, content_type = encode_multipart(CLEAN_FIELDS, [NOTE])
        return self.call(
            "POST", f"/api/rifts/{rift_id}/proofs", SELLER, body=body, content_type=content_type
        )

    def job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/jobs/{job_id}", OPERATOR, role=Role.ADMIN)

    def wait_for_verdict(self, rift_id: str) -> dict[str, Any]:
        path = f"/api/rifts/{rift_id}/verification-status"
        wait_for(
            lambda: self.call("GET", path, SELLER)["status"] in ("completed", "failed"),
            VERDICT_TIMEOUT_S,
            f"the verdict on rift {rift_id}",
            interval_s=0.1,
        )
        return self.call("GET", path, SELLER)


def scan_job_of(database_url: str, asset_ids: list[str]) -> str:
    """The one scan job of a submission (only its file asset has one)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            [job_id] = conn.scalars(
                sa.select(Job.id).where(
                    Job.actor_name == "scan_asset", Job.subject_id.in_(asset_ids)
                )
            )
            return str(job_id)
    finally:
        engine.dispose()


@pytest.fixture
def hosts_settings(
    shared_database: str,
    redis_url: str,
    redis_conn: redis.Redis,
    hosts_broker_url: str | None,
    clamd: RunningClamd,
    s3_server: RunningS3,
    tmp_path: Path,
) -> Settings:
    """What every host shares: the database, the broker and one bucket; data_dir is per host."""
    # The relay's production grace: with the tests' 0 s it may send a job the API is still
    # dispatching, and RabbitMQ (unlike Redis, which keys messages by id) delivers both.
    base = test_settings(
        shared_database,
        redis_url,
        tmp_path / "unused",
        clamd.port,
        broker_url=hosts_broker_url,
        relay_grace_s=RELAY_GRACE_S,
    )
    return s3_server.settings_for(base)


@pytest.fixture
def start_host(hosts_settings: Settings, tmp_path: Path) -> Iterator[Any]:
    started: list[Host] = []

    def start(name: str, **overrides: Any) -> Host:
        settings = replace(hosts_settings, data_dir=tmp_path / name / "data", **overrides)
        (tmp_path / name).mkdir()
        host = Host(name, settings, tmp_path / name)
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


def start_api_host(host: Host) -> Api:
    """gunicorn (deploy/gunicorn.conf.py) and the scheduler, as supervisord runs them."""
    port = free_port()
    host.run(
        [
            str(VENV_BIN / "gunicorn"),
            "-c",
            str(REPO_ROOT / "deploy" / "gunicorn.conf.py"),
            "service.api.wsgi:app",
        ],
        API_BIND=f"127.0.0.1:{port}",
        API_WORKERS="1",
        API_THREADS="4",
        PYTHONPATH=str(REPO_ROOT),
        PROMETHEUS_MULTIPROC_DIR=str(host.workdir / "prometheus-api"),
    )
    host.run(
        [str(VENV_BIN / "python"), "-m", "actors.scheduler"],
        COLLECTOR_HOST="127.0.0.1",
        COLLECTOR_PORT=str(free_port()),
    )
    api = Api(f"http://127.0.0.1:{port}", host.settings)
    wait_for(api.healthy, READY_TIMEOUT_S, f"the API host:\n{host.output()}", interval_s=0.1)
    return api


def start_worker_host(host: Host, live_workers: int) -> ManagedProcess:
    """Every queue's actors in one Dramatiq process group; ready once the broker sees it."""
    prom = host.workdir / "prometheus"
    prom.mkdir()
    worker = host.run(
        worker_argv(["verification", "scan", "cleanup"], processes=1, threads=2),
        PROMETHEUS_MULTIPROC_DIR=str(prom),
        dramatiq_prom_db=str(prom),
        dramatiq_prom_host="127.0.0.1",
        dramatiq_prom_port="0",
    )
    wait_for(
        lambda: not worker.alive() or workers_alive(host.settings, "scan") >= live_workers,
        READY_TIMEOUT_S,
        f"worker host {host.name}",
    )
    assert worker.alive(), f"worker host {host.name} exited:\n{host.output()}"
    return worker


def test_a_proof_crosses_hosts_and_a_dead_worker_hosts_job_finishes_on_the_other(
    start_host, hosts_settings: Settings
):
    # Given an API host and worker host A, whose clamd accepts scans and never answers
    api_host = start_host("api-host")
    api = start_api_host(api_host)
    with HangingServer() as hung_clamd:
        host_a = start_host(
            "worker-a", clamd_address=f"tcp://127.0.0.1:{hung_clamd.port}", scan_timeout_s=60.0
        )
        start_worker_host(host_a, live_workers=1)

        # When a seller submits proof to the API host
        rift_id = api.funded_rift()
        accepted = api.submit(rift_id)
        scan_job_id = scan_job_of(hosts_settings.database_url, accepted["asset_ids"])

        # Then host A verifies the content it read back from the object store, and its
        # scan is mid-job
        wait_for(
            lambda: api.job(accepted["verification_job_id"])["state"] == "SUCCEEDED",
            VERDICT_TIMEOUT_S,
            f"verification on host A:\n{host_a.output()}",
        )
        assert hung_clamd.accepted.wait(VERDICT_TIMEOUT_S), "host A never started the scan"
        assert api.job(scan_job_id)["state"] == "RUNNING"
        assert api.call("GET", f"/api/rifts/{rift_id}/verification-status", SELLER)["status"] in (
            "pending",
            "processing",
        )

        # When worker host B comes up and host A loses power mid-scan
        host_b = start_host("worker-b")
        start_worker_host(host_b, live_workers=2)
        host_a.power_off()

    # Then the scan is redelivered to host B, which decides the verdict
    verdict = api.wait_for_verdict(rift_id)
    assert verdict["status"] == "completed", verdict
    [file_asset] = [a for a in verdict["result"]["assets"] if a["type"] == "FILE"]
    assert file_asset["scan_status"] == "CLEAN"
    assert "file.missing" not in [i["code"] for i in file_asset["issues"]]
    wait_for(lambda: api.job(scan_job_id)["state"] == "SUCCEEDED", 10, "the scan job record")
    scan_job = api.job(scan_job_id)
    assert scan_job["attempts"] == 2, scan_job
    assert JobState(scan_job["state"]) is JobState.SUCCEEDED

    # And a second proof goes from submission to verdict on the surviving host alone
    second_rift = api.funded_rift()
    api.submit(second_rift)
    assert api.wait_for_verdict(second_rift)["status"] == "completed"

    # And no host kept a blob on its own disk: both files are objects in the shared bucket
    store = blob_store_from_settings(hosts_settings)
    assert len(list(store.list_blobs())) == 2
    for host in (api_host, host_a, host_b):
        assert host.files_on_disk("blobs") == [], host.name
        assert host.files_on_disk("scratch") == [], host.name
