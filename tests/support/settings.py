"""Settings for tests: small limits and fast retries, real services on loopback."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from service.settings import Settings


def test_settings(
    database_url: str, redis_url: str, data_dir: Path, clamd_port: int, **overrides: Any
) -> Settings:
    """Settings whose retries, relay and dead-worker redelivery run in test time."""
    base = Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=data_dir,
        jwt_secret="test-jwt-secret-0123456789abcdef0123456789",
        license_key_secret="test-license-key-secret-0123456789abcdef",
        clamd_address=f"tcp://127.0.0.1:{clamd_port}",
        scan_timeout_s=10.0,
        max_file_bytes=2 * 1024 * 1024,
        max_request_bytes=8 * 1024 * 1024,
        relay_grace_s=0.0,
        relay_interval_s=0.2,
        max_retries=3,
        min_backoff_ms=100,
        max_backoff_ms=500,
        broker_heartbeat_timeout_ms=2_000,
        broker_maintenance_chance=1_000_000,
    )
    return replace(base, **overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, despite the name
