"""A real S3 API server for tests: moto's server as its own process, buckets made per test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import botocore.exceptions
from mypy_boto3_s3 import S3Client

from service.blobs_s3 import s3_client
from service.settings import Settings
from tests.support.processes import VENV_BIN, ManagedProcess, free_port, wait_for

S3_READY_TIMEOUT_S = 30.0
# moto accepts any key pair; fixed ones keep child processes' environments simple.
S3_TEST_ACCESS_KEY = "rift-test-access-key"
S3_TEST_SECRET_KEY = "rift-test-secret-key"
S3_TEST_REGION = "us-east-1"


@dataclass
class RunningS3:
    endpoint_url: str
    process: ManagedProcess

    def client(self) -> S3Client:
        return s3_client(
            endpoint_url=self.endpoint_url,
            region=S3_TEST_REGION,
            access_key_id=S3_TEST_ACCESS_KEY,
            secret_access_key=S3_TEST_SECRET_KEY,
            timeout_s=10.0,
        )

    def new_bucket(self) -> str:
        name = f"rift-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings_for(self, settings: Settings, bucket: str | None = None) -> Settings:
        """These settings, storing blobs in a fresh bucket of this server."""
        return replace(
            settings,
            blob_store=f"s3://{bucket or self.new_bucket()}/rift",
            s3_endpoint_url=self.endpoint_url,
            s3_region=S3_TEST_REGION,
            s3_access_key_id=S3_TEST_ACCESS_KEY,
            s3_secret_access_key=S3_TEST_SECRET_KEY,
        )


def start_s3_server(log_dir: Path) -> RunningS3:
    """Start `moto_server` on a free loopback port; a server that never answers fails the run."""
    port = free_port()
    process = ManagedProcess(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        {"PATH": str(VENV_BIN) + ":/usr/bin:/bin"},
        log_dir / "moto-server.log",
    ).start()
    running = RunningS3(endpoint_url=f"http://127.0.0.1:{port}", process=process)
    probe = boto3.client(
        "s3",
        endpoint_url=running.endpoint_url,
        region_name=S3_TEST_REGION,
        aws_access_key_id=S3_TEST_ACCESS_KEY,
        aws_secret_access_key=S3_TEST_SECRET_KEY,
    )

    def answers() -> bool:
        assert process.alive(), f"moto_server exited:\n{process.output()}"
        try:
            probe.list_buckets()
        except botocore.exceptions.EndpointConnectionError:
            return False
        return True

    wait_for(answers, S3_READY_TIMEOUT_S, f"moto_server on port {port}", interval_s=0.1)
    return running
